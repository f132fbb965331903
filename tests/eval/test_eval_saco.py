from __future__ import annotations

import numpy as np
import pytest

from sam3_edge.eval.saco import IOU_THRESHOLDS, pair_counts, saco_metrics


def _box(x0, y0, x1, y1, size=12):
    m = np.zeros((size, size), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


G0, G1 = _box(0, 0, 4, 4), _box(6, 6, 10, 10)
EMPTY = np.zeros((0, 12, 12), bool)


def test_iou_thresholds_are_coco():
    np.testing.assert_allclose(IOU_THRESHOLDS, np.arange(10) * 0.05 + 0.5)


def test_saco_metrics_hand_computed():
    pairs = [
        # positive: exact match for G1, IoU 0.5 for G0, one extra false positive, one low-score query ignored
        pair_counts(np.stack([G1, _box(0, 0, 4, 2), _box(10, 0, 12, 2), G0]), [0.9, 0.8, 0.7, 0.3], np.stack([G0, G1])),
        pair_counts(np.stack([G0]), [0.2], np.stack([G0])),  # positive, nothing kept: FN
        pair_counts(np.stack([G0]), [0.9], EMPTY),  # negative with a kept prediction: IL_FP, not a pmFP
        pair_counts(np.stack([G0]), [0.1], EMPTY),  # true negative
        pair_counts(np.stack([G1]), [0.6], np.stack([G1])),  # positive, exact
    ]
    first = pairs[0]
    assert first.num_gt == 2 and first.num_pred == 3
    np.testing.assert_array_equal(first.tp, [2] + [1] * 9)
    np.testing.assert_array_equal(first.fp, [1] + [2] * 9)
    np.testing.assert_array_equal(first.fn, [0] + [1] * 9)
    m = saco_metrics(pairs)
    # @0.5: TP 3, pmFP 1, FN 1 -> 6/8; other thresholds: TP 2, pmFP 2, FN 2 -> 4/8
    assert m["pmF1_iou50"].value == pytest.approx(0.75)
    assert m["pmF1_iou75"].value == pytest.approx(0.5)
    assert m["pmF1"].value == pytest.approx((0.75 + 9 * 0.5) / 10)
    # image level: TP 2, FN 1, FP 1, TN 1
    assert m["IL_MCC"].value == pytest.approx((2 * 1 - 1 * 1) / np.sqrt(3 * 3 * 2 * 2))
    assert m["IL_precision"].value == pytest.approx(2 / 3) and m["IL_recall"].value == pytest.approx(2 / 3)
    assert m["cgF1"].value == pytest.approx(0.525 / 6)
    assert m["cgF1_iou50"].value == pytest.approx(0.75 / 6)


def test_saco_perfect_is_one_and_all_negative_is_undefined():
    perfect = [
        pair_counts(np.stack([G0, G1]), [0.9, 0.9], np.stack([G0, G1])),
        pair_counts(np.stack([G0]), [0.1], EMPTY),
    ]
    m = saco_metrics(perfect)
    for key in ("pmF1", "IL_MCC", "cgF1", "IL_F1"):
        assert m[key].value == pytest.approx(1.0), key
    negatives = [pair_counts(np.stack([G0]), [0.1], EMPTY), pair_counts(np.stack([G0]), [0.9], EMPTY)]
    m = saco_metrics(negatives)
    for key in ("pmF1", "IL_MCC", "cgF1", "IL_F1"):
        assert not m[key].defined and m[key].reason, key
    assert "no positive" in m["cgF1"].reason
    # positives only: pmF1 is defined, IL_MCC (hence cgF1) is not
    m = saco_metrics(perfect[:1])
    assert m["pmF1"].value == pytest.approx(1.0)
    assert not m["IL_MCC"].defined and not m["cgF1"].defined and "no negative" in m["cgF1"].reason
