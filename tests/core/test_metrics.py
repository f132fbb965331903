from __future__ import annotations

import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch

from sam3_edge.core import metrics


def _box_mask(h, w, x0, y0, x1, y1):
    m = np.zeros((h, w), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def test_mask_iou_matrix_agrees_with_pycocotools(rng):
    pred = rng.random((7, 33, 41)) < rng.random((7, 1, 1))
    gt = rng.random((5, 33, 41)) < rng.random((5, 1, 1))
    pred[0] = False  # empty masks follow the pycocotools convention (IoU 0)
    gt[1] = False
    ours = metrics.mask_iou_matrix(pred, gt)
    enc = lambda m: mask_utils.encode(np.asfortranarray(m.transpose(1, 2, 0).astype(np.uint8)))  # noqa: E731
    ref = mask_utils.iou(enc(pred), enc(gt), [0] * len(gt))
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    assert ours.shape == (7, 5)
    np.testing.assert_allclose(metrics.mask_iou_matrix(torch.from_numpy(pred), torch.from_numpy(gt)), ref, atol=1e-12)


def test_mask_iou_hand_computed():
    a = _box_mask(10, 10, 0, 0, 4, 4)  # 16 px
    b = _box_mask(10, 10, 2, 2, 6, 6)  # 16 px, overlap 4
    assert metrics.mask_iou(a, b) == pytest.approx(4 / 28)
    empty = np.zeros((10, 10), bool)
    assert metrics.mask_iou(empty, empty) == 0.0 and metrics.mask_iou(empty, empty, empty_value=1.0) == 1.0
    with pytest.raises(ValueError, match="sizes differ"):
        metrics.mask_iou_matrix(a[None], np.zeros((1, 5, 5), bool))


def test_matched_instance_ious_hungarian_and_threshold():
    g0 = _box_mask(10, 10, 0, 0, 4, 4)
    g1 = _box_mask(10, 10, 6, 6, 10, 10)
    p_exact1 = g1.copy()
    p_half0 = _box_mask(10, 10, 0, 0, 4, 2)  # IoU 8/16 with g0
    p_low = g0.copy()  # would be perfect for g0 but below the score threshold
    ious = metrics.matched_instance_ious(np.stack([p_exact1, p_half0, p_low]), [0.9, 0.6, 0.4], np.stack([g0, g1]))
    np.testing.assert_allclose(ious, [0.5, 1.0])
    # Hungarian, not greedy: one prediction overlaps both, the best total assignment wins
    ious = metrics.matched_instance_ious(np.stack([g0 | g1, g1]), [0.9, 0.9], np.stack([g0, g1]))
    np.testing.assert_allclose(ious, [0.5, 1.0])
    # no kept prediction -> every GT instance gets 0
    np.testing.assert_allclose(metrics.matched_instance_ious(np.stack([g0]), [0.1], np.stack([g0, g1])), [0, 0])
    np.testing.assert_allclose(metrics.matched_instance_ious(np.zeros((0, 10, 10), bool), [], np.stack([g0])), [0])


def test_semantic_mask_and_top_query():
    g0 = _box_mask(8, 8, 0, 0, 4, 4)
    g1 = _box_mask(8, 8, 4, 4, 8, 8)
    preds = np.stack([g0, g1])
    np.testing.assert_array_equal(metrics.semantic_mask(preds, [0.9, 0.2], shape=(8, 8)), g0)
    assert not metrics.semantic_mask(preds, [0.1, 0.2], shape=(8, 8)).any()
    assert metrics.top_query_iou(preds, [0.2, 0.8], g1) == 1.0
    assert metrics.top_query_iou(preds, [0.8, 0.2], g1) == 0.0


def test_presence_prf_hand_computed_and_undefined_without_negatives():
    pred = [True, True, False, True, False, False]
    gt = [True, False, True, True, False, False]
    c = metrics.BinaryCounts.from_labels(pred, gt)
    assert (c.tp, c.fp, c.fn, c.tn) == (2, 1, 1, 2)
    s = metrics.precision_recall_f1(c)
    assert s["precision"].value == pytest.approx(2 / 3)
    assert s["recall"].value == pytest.approx(2 / 3)
    assert s["f1"].value == pytest.approx(2 / 3)
    assert metrics.matthews_corrcoef(c).value == pytest.approx((2 * 2 - 1 * 1) / np.sqrt(3 * 3 * 3 * 3))
    only_pos = metrics.BinaryCounts.from_labels([True, True], [True, True])
    for score in [*metrics.precision_recall_f1(only_pos).values(), metrics.matthews_corrcoef(only_pos)]:
        assert not score.defined and "no negative" in score.reason
        assert score.to_json() == {"status": "undefined", "reason": score.reason}
    only_neg = metrics.BinaryCounts.from_labels([False, True], [False, False])
    assert all(not v.defined and "no positive" in v.reason for v in metrics.precision_recall_f1(only_neg).values())
    # both classes, nothing predicted present: precision undefined, F1 and MCC are 0, not undefined
    none_pred = metrics.precision_recall_f1(metrics.BinaryCounts.from_labels([False, False], [True, False]))
    assert not none_pred["precision"].defined and none_pred["f1"].value == 0.0
    assert metrics.matthews_corrcoef(metrics.BinaryCounts.from_labels([False, False], [True, False])).value == 0.0


def test_mean_score_and_to_json():
    assert metrics.mean_score([1.0, 0.0], what="pairs").to_json() == 0.5
    und = metrics.mean_score([], what="positive pairs")
    assert und.value is None and "no positive pairs" in und.reason
    assert metrics.Score(1).defined


def test_prompt_sensitivity_perfect_ignoring_and_wrong():
    a = _box_mask(12, 12, 0, 0, 6, 6)
    b = _box_mask(12, 12, 6, 6, 12, 12)
    neg = np.zeros((12, 12), bool)
    gts = {"red square": a, "blue circle": b, "green star": neg}
    perfect = metrics.prompt_sensitivity(*metrics.sensitivity_comparisons(dict(gts), gts))
    assert perfect.value == pytest.approx(1.0)
    ignoring = metrics.prompt_sensitivity(*metrics.sensitivity_comparisons({k: a | b for k in gts}, gts))
    assert ignoring.value == pytest.approx(0.0)
    swapped = metrics.prompt_sensitivity(
        *metrics.sensitivity_comparisons({"red square": b, "blue circle": a, "green star": neg}, gts)
    )
    assert swapped.value < 0
    # overlapping phrases ("red square" vs "large red square") are not compared against each other
    t, o = metrics.sensitivity_comparisons({"x": a, "big x": a}, {"x": a, "big x": a})
    assert t == [] and o == []
    assert not metrics.prompt_sensitivity(t, o).defined
