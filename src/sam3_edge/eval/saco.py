"""SA-Co concept-segmentation metrics as SAM 3 defines them: pmF1, IL_MCC and cgF1 = pmF1 x IL_MCC.

Transcribed from the definitions in facebookresearch/sam3 ``sam3/eval/cgf1_eval.py`` (``CGF1Eval.evaluateImg``
and ``CGF1Eval.accumulate``, commit 99d02f2); an "image" there is an image-noun-phrase pair:

* Predictions are kept when ``score >= 0.5`` (``CGF1Eval.threshold``).
* Per pair and IoU threshold ``t`` in 0.50:0.05:0.95 (COCO ``iouThrs``):
  - no GT, no kept prediction: image-level true negative (IL_TN), no instance counts;
  - GT, no prediction: IL_FN, ``FN += #GT``;
  - no GT, predictions: IL_FP, ``FP += #pred`` (these FPs do *not* enter the positive-micro precision);
  - GT and predictions: IL_TP; Hungarian matching on mask IoU (``linear_sum_assignment(-ious)``), ``TP`` = matched
    pairs with IoU >= t, ``FP = #pred - TP`` (also counted as positive-micro FP), ``FN = #GT - TP``.
* ``positive_micro_precision = TP / (TP + pmFP)``, ``recall = TP / (TP + FN)``, ``pmF1 = 2PR / (P + R)``
  = ``2TP / (2TP + pmFP + FN)``, summed over pairs per threshold; the reported pmF1 is the mean over thresholds.
* ``IL_MCC`` = Matthews correlation of (any kept prediction) vs (any GT) over pairs.
* ``cgF1 = positive_micro_F1 x IL_MCC`` per threshold, averaged over thresholds (= mean pmF1 x IL_MCC).

Differences, on purpose: SAM 3 adds epsilons (1e-4, 1e-6) to denominators and so reports 0 where a metric is
undefined; here undefined metrics are :class:`~sam3_edge.core.metrics.Score` with a reason (a split without
negatives has no IL_MCC, hence no cgF1). Values are in [0, 1] (the paper prints x100). SAM 3 also restricts the
evaluation to ``is_instance_exhaustive`` pairs; the driver evaluates every pair it is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sam3_edge.core.metrics import (
    BinaryCounts,
    Score,
    _as_bool_masks,
    hungarian_match,
    mask_iou_matrix,
    matthews_corrcoef,
)

# COCOeval.Params.iouThrs: np.linspace(.5, 0.95, 10)
IOU_THRESHOLDS: np.ndarray = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
# metric-name suffixes: mean over IoU 0.50:0.95, at IoU 0.5, at IoU 0.75 (no dots: metric keys stay dvc-friendly)
SUFFIXES = ("", "_iou50", "_iou75")


@dataclass(frozen=True)
class PairCounts:
    """Instance counts of one image-phrase pair, one entry per IoU threshold ([T] int64 each)."""

    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray
    num_gt: int
    num_pred: int


def pair_counts(
    pred_masks: Any,
    pred_scores: Any,
    gt_masks: Any,
    *,
    score_threshold: float = 0.5,
    iou_thresholds: np.ndarray = IOU_THRESHOLDS,
) -> PairCounts:
    """SA-Co counts of one pair. pred_masks: [Q, H, W] bool; pred_scores: [Q]; gt_masks: [G, H, W] bool (G may be 0)."""
    scores = np.asarray(pred_scores, dtype=np.float64).reshape(-1)
    keep = scores >= score_threshold
    num_pred = int(keep.sum())
    gt = _as_bool_masks(gt_masks, "gt_masks") if np.asarray(gt_masks).size else np.zeros((0, 1, 1), bool)
    num_gt = len(gt)
    t = len(iou_thresholds)
    tp = np.zeros(t, dtype=np.int64)
    if num_gt and num_pred:
        pred = _as_bool_masks(pred_masks, "pred_masks")[keep]
        iou = mask_iou_matrix(pred, gt)
        rows, cols = hungarian_match(iou)
        matched = iou[rows, cols]
        tp = np.array([(matched >= thr).sum() for thr in iou_thresholds], dtype=np.int64)
    return PairCounts(tp=tp, fp=num_pred - tp, fn=num_gt - tp, num_gt=num_gt, num_pred=num_pred)


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros(len(tp), dtype=np.float64), where=denom > 0)


def saco_metrics(pairs: Sequence[PairCounts], *, iou_thresholds: np.ndarray = IOU_THRESHOLDS) -> dict[str, Score]:
    """pmF1 (mean over thresholds, ``_iou50``, ``_iou75``), IL_precision/recall/F1/MCC, cgF1 (same suffixes)."""
    t = len(iou_thresholds)
    tp = np.zeros(t, dtype=np.int64)
    fn = np.zeros(t, dtype=np.int64)
    pm_fp = np.zeros(t, dtype=np.int64)
    for c in pairs:
        tp += c.tp
        fn += c.fn
        if c.num_gt and c.num_pred:
            pm_fp += c.fp
    il = BinaryCounts.from_labels([c.num_pred > 0 for c in pairs], [c.num_gt > 0 for c in pairs])
    out: dict[str, Score] = {}
    if il.positives == 0:
        reason = "no positive pair: positive-micro F1 is undefined"
        out.update({f"pmF1{suffix}": Score.undefined(reason) for suffix in SUFFIXES})
        per_thr = None
    else:
        per_thr = _f1(tp, pm_fp, fn)
        out["pmF1"] = Score(float(per_thr.mean()))
        for suffix, thr in (("_iou50", 0.5), ("_iou75", 0.75)):
            out[f"pmF1{suffix}"] = Score(float(per_thr[np.isclose(iou_thresholds, thr)].mean()))
    mcc = matthews_corrcoef(il)
    out["IL_MCC"] = mcc
    reason = il.split_reason()
    if reason:
        out.update({k: Score.undefined(reason) for k in ("IL_precision", "IL_recall", "IL_F1")})
    else:
        out["IL_precision"] = (
            Score(il.tp / (il.tp + il.fp)) if il.tp + il.fp else Score.undefined("no pair with a kept prediction")
        )
        out["IL_recall"] = Score(il.tp / (il.tp + il.fn))
        out["IL_F1"] = Score(2 * il.tp / (2 * il.tp + il.fp + il.fn))
    for suffix in SUFFIXES:
        pm = out[f"pmF1{suffix}"]
        if per_thr is None or not mcc.defined:
            out[f"cgF1{suffix}"] = Score.undefined("; ".join(s.reason for s in (pm, mcc) if not s.defined))
        else:
            out[f"cgF1{suffix}"] = Score(float(pm.value) * float(mcc.value))  # type: ignore[arg-type]
    return out
