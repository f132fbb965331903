from __future__ import annotations

import json

import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from sam3_edge.eval.config import EvaluateParams
from sam3_edge.eval.driver import evaluate_samples, propagate_box
from sam3_edge.eval.samples import prompt_from_mask
from sam3_edge.types import Prompt
from tests.support.fakes import (
    EVAL_SCENES,
    ColourOracle,
    PromptIgnoring,
    RandomMasks,
    VideoOracle,
    concept_split,
    moving_square_video,
)

PARAMS = EvaluateParams(batch_size=3, latency_warmup=1, latency_runs=2)


def _numbers(tree, prefix=""):
    for k, v in tree.items():
        if isinstance(v, dict):
            yield from _numbers(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def test_perfect_predictions_score_one_everywhere(tmp_path):
    m = evaluate_samples(
        VideoOracle(EVAL_SCENES),
        concepts=concept_split(EVAL_SCENES),
        params=PARAMS,
        videos=[moving_square_video()],
        predictions_dir=tmp_path,
    )
    assert m["counts"]["pairs"] == 9 and m["counts"]["negative_pairs"] == 4
    for key in ("text", "text_semantic", "point", "box"):
        assert m["miou"][key] == pytest.approx(1.0), key
    for key in ("precision", "recall", "f1"):
        assert m["presence"][key] == pytest.approx(1.0), key
    for key in ("pmF1", "IL_MCC", "cgF1", "pmF1_iou75"):
        assert m["saco"][key] == pytest.approx(1.0), key
    assert m["prompt_sensitivity"]["value"] == pytest.approx(1.0) and m["prompt_sensitivity"]["comparisons"] > 0
    assert m["video"]["J_and_F"] == pytest.approx(1.0) and m["video"]["objects"] == 2
    # the baselines on the same objects and frames: the squares move, so neither copying the first GT mask nor
    # the image path without the first frame's prompt (a box prompt: later frames get nothing) is perfect
    copy, alone = m["video"]["baselines"]["copy_first_mask"], m["video"]["baselines"]["no_memory"]
    assert 0.0 < copy["J_and_F"] < 0.9 and 0.0 <= alone["J_and_F"] < 0.9
    assert m["video"]["video_path"] == "predict_video" and m["video"]["baselines"]["box_propagation"]["J_and_F"] > 0.9
    assert copy["J_and_F"] == pytest.approx((copy["J"] + copy["F"]) / 2)
    assert m["latency"]["image_ms_median"] > 0 and m["latency"]["runs"] == 2
    assert m["skips"] == {}
    text = json.loads((tmp_path / "text.json").read_text())
    assert {"image_id", "segmentation", "bbox", "score", "category_id"} <= set(text[0])
    assert sorted((tmp_path).glob("*.json")) == [tmp_path / f"{k}.json" for k in ("box", "point", "text")]
    json.dumps(m)  # serialisable
    assert all(isinstance(v, (int, float, str)) for _, v in _numbers(m))


def test_all_negative_split_reports_undefined_not_zero():
    m = evaluate_samples(
        ColourOracle(EVAL_SCENES), concepts=concept_split(EVAL_SCENES, positives=False), params=PARAMS, latency=False
    )
    assert m["counts"]["positive_pairs"] == 0 if "positive_pairs" in m["counts"] else True
    for section, key in [
        ("miou", "text"),
        ("presence", "f1"),
        ("presence", "recall"),
        ("saco", "cgF1"),
        ("saco", "IL_MCC"),
        ("saco", "pmF1"),
        ("miou", "point"),
    ]:
        value = m[section][key]
        assert isinstance(value, dict) and value["status"] == "undefined" and value["reason"], (section, key)
    assert m["video"]["status"] == "skipped"


def test_positive_only_split_has_no_presence_f1():
    m = evaluate_samples(
        ColourOracle(EVAL_SCENES), concepts=concept_split(EVAL_SCENES, negatives=False), params=PARAMS, latency=False
    )
    assert m["miou"]["text"] == pytest.approx(1.0)
    assert "no negative" in m["presence"]["f1"]["reason"] and "no negative" in m["saco"]["cgF1"]["reason"]


def test_prompt_ignoring_model_has_zero_sensitivity():
    m = evaluate_samples(PromptIgnoring(EVAL_SCENES), concepts=concept_split(EVAL_SCENES), params=PARAMS, latency=False)
    assert m["prompt_sensitivity"]["value"] == pytest.approx(0.0, abs=1e-12)
    assert m["prompt_sensitivity"]["comparisons"] > 0
    assert m["presence"]["precision"] < 1.0  # it claims every phrase is present


def test_random_masks_match_pycocotools_recomputation(tmp_path):
    samples = concept_split(EVAL_SCENES, kinds=())
    m = evaluate_samples(RandomMasks(), concepts=samples, params=PARAMS, predictions_dir=tmp_path, latency=False)
    results = json.loads((tmp_path / "text.json").read_text())
    ious = []
    for s in samples:
        if not len(s.gt_masks):
            continue
        dets = [r["segmentation"] for r in results if r["image_id"] == s.pair_id and r["score"] >= 0.5]
        gts = mask_utils.encode(np.asfortranarray(s.gt_masks.transpose(1, 2, 0).astype(np.uint8)))
        matched = np.zeros(len(s.gt_masks))
        if dets:
            iou = mask_utils.iou(dets, gts, [0] * len(s.gt_masks))
            r, c = linear_sum_assignment(-iou)
            matched[c] = iou[r, c]
        ious.extend(matched)
    assert 0 < m["miou"]["text"] < 1
    assert m["miou"]["text"] == pytest.approx(float(np.mean(ious)), abs=1e-9)


def test_predictor_without_video_path_is_tracked_by_box_propagation():
    m = evaluate_samples(
        ColourOracle(EVAL_SCENES),
        concepts=concept_split(EVAL_SCENES, kinds=()),
        params=PARAMS,
        videos=[moving_square_video()],
        latency=False,
    )
    video = m["video"]
    assert video["video_path"] == "box_propagation" and video["objects"] == 2
    assert video["J_and_F"] == pytest.approx(1.0)  # each frame's box comes from the oracle's own previous mask
    assert video["baselines"]["box_propagation"] == {k: video[k] for k in ("J", "F", "J_and_F")}
    assert video["baselines"]["copy_first_mask"]["J_and_F"] < 0.9  # the squares move
    assert "point" in m["miou"] and not isinstance(m["miou"]["point"], float)  # asked for, but no prompts given


class _BoxOnly(ColourOracle):
    """Sees no colour: every component, ordered by overlap with the box prompt; records the prompts it gets."""

    def __init__(self, scenes):
        super().__init__(scenes)
        self.prompts = []

    def _one(self, image, prompt):
        self.prompts.append(prompt)
        return super()._one(image, Prompt(kind=prompt.kind, text=" ", box=prompt.box, points=prompt.points))


def test_propagate_box_follows_the_object_with_its_own_masks():
    video = moving_square_video()
    frames = torch.from_numpy(video.frames).permute(0, 3, 1, 2).float() / 255
    red = video.objects[0].masks[0]
    oracle = _BoxOnly(EVAL_SCENES)
    first = prompt_from_mask(red, "box", image_size=EVAL_SCENES.size, text="red square")
    preds = propagate_box(oracle, frames, first, threshold=0.5)
    assert len(preds) == len(frames) and oracle.prompts[0] == first
    # the red square moves one pixel right per frame: the box of frame t is its mask on frame t - 1
    for t in range(1, len(frames)):
        x0, y0, x1, y1 = oracle.prompts[t].box
        assert (x0, x1) == (first.box[0] + t - 1, first.box[2] + t - 1) and oracle.prompts[t].text == "red square"
    last = (preds[-1].mask_logits[0, int(preds[-1].scores[0].argmax())] > 0).numpy()
    assert last.sum() and last[:, : int(first.box[0]) + len(frames) - 1].sum() == 0  # on the moved square
