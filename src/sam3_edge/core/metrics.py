"""Pure metric functions: mask IoU, instance / semantic / single-target mIoU, presence P/R/F1, prompt sensitivity.

All functions take numpy arrays (torch tensors are accepted and converted) and return plain floats, numpy
arrays or :class:`Score`. A metric that cannot be computed on a split (no negatives for presence F1, no positive
pair for mIoU, ...) is a :class:`Score` whose ``value`` is ``None`` and whose ``reason`` says why: it is never
reported as 0, which would read as "the model is bad" when the split simply cannot measure it.

Definitions (the README's "Evaluation" section repeats them):

* **Mask IoU** ``|p & g| / |p | g|``, 0 when both masks are empty: the pycocotools ``mask.iou`` convention
  (tested to agree with it on random masks).
* **Text-prompt instance mIoU** (concept segmentation): for every *positive* image-phrase pair, the predicted
  instances are the queries with ``score >= score_threshold``; they are matched one-to-one to the GT instances
  by the Hungarian algorithm on mask IoU (``scipy.optimize.linear_sum_assignment``, maximising total IoU). Each
  GT instance gets the IoU of its matched prediction, 0 if unmatched. mIoU = mean over all GT instances of all
  positive pairs (instance-weighted). Negative pairs do not enter it: presence P/R/F1 and IL_MCC score them.
* **Text-prompt semantic mIoU**: per positive pair, IoU of the union of predicted instances (score >= threshold)
  with the union of GT instances; mean over positive pairs.
* **Point / box mIoU**: per prompt, IoU of the mask of the top-scored query with the single target instance;
  mean over prompts (the model's choice among its queries is part of what is measured).
* **Presence P/R/F1** over image-phrase pairs: a pair is predicted present when ``Prediction.presence >=
  presence_threshold``; positives are pairs with >= 1 GT instance. Precision = TP/(TP+FP), recall = TP/(TP+FN),
  F1 = 2TP/(2TP+FP+FN). All three are undefined when the split has no negative or no positive pair.
* **Prompt sensitivity**: see :func:`prompt_sensitivity`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclass(frozen=True)
class Score:
    """A metric value, or ``value=None`` with the ``reason`` it is undefined on this split."""

    value: float | None
    reason: str = ""

    @classmethod
    def undefined(cls, reason: str) -> Score:
        return cls(None, reason)

    @property
    def defined(self) -> bool:
        return self.value is not None

    def to_json(self) -> float | dict[str, str]:
        """A number when defined, else ``{"status": "undefined", "reason": ...}`` (metrics JSON convention)."""
        if self.value is None:
            return {"status": "undefined", "reason": self.reason}
        return float(self.value)


def _as_bool_masks(masks: Any, name: str) -> np.ndarray:
    arr = np.asarray(masks.detach().cpu() if hasattr(masks, "detach") else masks)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"{name}: expected masks [N, H, W], got shape {arr.shape}")
    return arr.astype(bool, copy=False)


def mask_iou_matrix(pred: Any, gt: Any) -> np.ndarray:
    """IoU of every predicted mask with every GT mask.

    pred: [P, H, W] bool; gt: [G, H, W] bool (same H, W) -> [P, G] float64 in [0, 1].
    IoU is 0 where both masks are empty (pycocotools ``mask.iou`` convention, crowd flags off).
    """
    p = _as_bool_masks(pred, "pred")
    g = _as_bool_masks(gt, "gt")
    if p.shape[1:] != g.shape[1:]:
        raise ValueError(f"mask sizes differ: pred {p.shape[1:]} vs gt {g.shape[1:]}")
    pf = p.reshape(len(p), -1).astype(np.float64)
    gf = g.reshape(len(g), -1).astype(np.float64)
    inter = pf @ gf.T  # [P, G]
    union = pf.sum(1)[:, None] + gf.sum(1)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def mask_iou(pred: Any, gt: Any, *, empty_value: float = 0.0) -> float:
    """IoU of two masks [H, W]; ``empty_value`` when both are empty (0 as pycocotools, 1 as DAVIS J)."""
    p = np.asarray(pred, dtype=bool)
    g = np.asarray(gt, dtype=bool)
    if p.shape != g.shape:
        raise ValueError(f"mask sizes differ: {p.shape} vs {g.shape}")
    union = np.logical_or(p, g).sum()
    if union == 0:
        return float(empty_value)
    return float(np.logical_and(p, g).sum() / union)


def hungarian_match(iou: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching maximising total IoU. iou: [P, G] -> (pred indices [K], gt indices [K]), K = min(P, G)."""
    iou = np.asarray(iou, dtype=np.float64)
    if iou.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    rows, cols = linear_sum_assignment(-iou)
    return rows.astype(np.int64), cols.astype(np.int64)


def matched_instance_ious(
    pred_masks: Any, pred_scores: Any, gt_masks: Any, *, score_threshold: float = 0.5
) -> np.ndarray:
    """Per-GT-instance IoU after Hungarian matching (the text-prompt instance mIoU of one pair).

    pred_masks: [Q, H, W] bool; pred_scores: [Q] in [0, 1]; gt_masks: [G, H, W] bool -> [G] float64,
    the IoU of each GT instance with its matched kept prediction (score >= threshold), 0 if unmatched.
    """
    gt = _as_bool_masks(gt_masks, "gt_masks")
    scores = np.asarray(pred_scores, dtype=np.float64).reshape(-1)
    pred = _as_bool_masks(pred_masks, "pred_masks") if len(scores) else np.zeros((0, *gt.shape[1:]), bool)
    if len(pred) != len(scores):
        raise ValueError(f"{len(pred)} masks but {len(scores)} scores")
    kept = pred[scores >= score_threshold]
    out = np.zeros(len(gt), dtype=np.float64)
    if len(kept) == 0 or len(gt) == 0:
        return out
    iou = mask_iou_matrix(kept, gt)
    rows, cols = hungarian_match(iou)
    out[cols] = iou[rows, cols]
    return out


def semantic_mask(
    pred_masks: Any, pred_scores: Any, *, score_threshold: float = 0.5, shape: tuple[int, int]
) -> np.ndarray:
    """Union of the kept predicted instances. pred_masks: [Q, H, W] bool; pred_scores: [Q] -> [H, W] bool."""
    scores = np.asarray(pred_scores, dtype=np.float64).reshape(-1)
    if len(scores) == 0:
        return np.zeros(shape, dtype=bool)
    pred = _as_bool_masks(pred_masks, "pred_masks")
    keep = scores >= score_threshold
    return pred[keep].any(axis=0) if keep.any() else np.zeros(pred.shape[1:], dtype=bool)


def top_query_iou(pred_masks: Any, pred_scores: Any, target: Any) -> float:
    """Point/box prompt IoU: mask of the top-scored query vs the single target.

    pred_masks: [Q, H, W] bool; pred_scores: [Q]; target: [H, W] bool -> float (0 if Q == 0).
    """
    scores = np.asarray(pred_scores, dtype=np.float64).reshape(-1)
    if len(scores) == 0:
        return 0.0
    pred = _as_bool_masks(pred_masks, "pred_masks")
    return mask_iou(pred[int(np.argmax(scores))], target)


def mean_score(values: Sequence[float], *, what: str) -> Score:
    """Mean of ``values``; undefined (naming ``what``) when there are none."""
    if len(values) == 0:
        return Score.undefined(f"no {what} in this split")
    return Score(float(np.mean(np.asarray(values, dtype=np.float64))))


@dataclass(frozen=True)
class BinaryCounts:
    tp: int
    fp: int
    fn: int
    tn: int

    @classmethod
    def from_labels(cls, predicted: Any, actual: Any) -> BinaryCounts:
        """predicted, actual: [N] bool."""
        p = np.asarray(predicted, dtype=bool).reshape(-1)
        a = np.asarray(actual, dtype=bool).reshape(-1)
        if p.shape != a.shape:
            raise ValueError(f"{len(p)} predictions for {len(a)} labels")
        return cls(tp=int((p & a).sum()), fp=int((p & ~a).sum()), fn=int((~p & a).sum()), tn=int((~p & ~a).sum()))

    @property
    def positives(self) -> int:
        return self.tp + self.fn

    @property
    def negatives(self) -> int:
        return self.tn + self.fp

    def split_reason(self) -> str:
        """Why a two-class metric is undefined on this split ('' when it has both classes)."""
        if self.positives == 0 and self.negatives == 0:
            return "empty split (no image-phrase pairs)"
        if self.negatives == 0:
            return f"split has no negative pairs ({self.positives} positives): precision/F1/MCC would be vacuous"
        if self.positives == 0:
            return f"split has no positive pairs ({self.negatives} negatives): recall/F1/MCC are undefined"
        return ""


def precision_recall_f1(counts: BinaryCounts) -> dict[str, Score]:
    """Presence precision, recall, F1 = 2TP/(2TP+FP+FN); all undefined if the split lacks either class.

    Precision alone is also undefined when nothing was predicted present (0/0); F1 is then 0 (recall 0).
    """
    reason = counts.split_reason()
    if reason:
        return {k: Score.undefined(reason) for k in ("precision", "recall", "f1")}
    c = counts
    precision = Score(c.tp / (c.tp + c.fp)) if c.tp + c.fp else Score.undefined("no pair predicted present")
    return {
        "precision": precision,
        "recall": Score(c.tp / (c.tp + c.fn)),
        "f1": Score(2 * c.tp / (2 * c.tp + c.fp + c.fn)),
    }


def matthews_corrcoef(counts: BinaryCounts) -> Score:
    """MCC = (TP TN - FP FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)); undefined if the split lacks a class.

    When the split has both classes but the predictions are constant the denominator is 0 and MCC is 0 (no
    correlation), as in sklearn. SAM 3's evaluator adds 1e-6 to the denominator instead (same value to 1e-6).
    """
    reason = counts.split_reason()
    if reason:
        return Score.undefined(reason)
    c = counts
    denom = float(c.tp + c.fp) * float(c.tp + c.fn) * float(c.tn + c.fp) * float(c.tn + c.fn)
    if denom == 0:
        return Score(0.0)
    return Score((c.tp * c.tn - c.fp * c.fn) / denom**0.5)


def sensitivity_comparisons(
    pred_semantic: dict[str, Any], gt_semantic: dict[str, Any]
) -> tuple[list[float], list[float]]:
    """The prompt-sensitivity comparisons of one image (see :func:`prompt_sensitivity`).

    pred_semantic: phrase -> [H, W] bool semantic mask the model returned for that phrase on this image;
    gt_semantic: phrase -> [H, W] bool GT union (empty for a negative phrase); same phrases in both.
    Returns (IoU(M_p, G_p), IoU(M_q, G_p)) lists over every ordered pair (p positive, q != p, G_q & G_p empty).
    """
    if set(pred_semantic) != set(gt_semantic):
        raise ValueError(f"phrases differ: {sorted(pred_semantic)} vs {sorted(gt_semantic)}")
    gts = {k: np.asarray(v, dtype=bool) for k, v in gt_semantic.items()}
    true_iou: list[float] = []
    other_iou: list[float] = []
    for p, g_p in gts.items():
        if not g_p.any():
            continue
        for q, g_q in gts.items():
            if q == p or np.logical_and(g_p, g_q).any():
                continue
            true_iou.append(mask_iou(pred_semantic[p], g_p))
            other_iou.append(mask_iou(pred_semantic[q], g_p))
    return true_iou, other_iou


def prompt_sensitivity(true_prompt_iou: Any, other_prompt_iou: Any) -> Score:
    """How much the prediction follows the prompt.

    For an image with GT union ``G_p`` for a phrase ``p`` (positive pair) and another phrase ``q`` asked on the
    same image whose GT union does not overlap ``G_p`` (a different concept present there, or a negative phrase),
    a comparison is ``IoU(M_p, G_p) - IoU(M_q, G_p)`` where ``M_x`` is the model's semantic mask (union of kept
    instances) for phrase ``x``. Sensitivity is the mean over all comparisons of the split, in [-1, 1]: a model
    that returns the same mask whatever the phrase scores exactly 0, a perfect model 1, a model that segments
    the other concept negative.

    true_prompt_iou: [K] IoU(M_p, G_p); other_prompt_iou: [K] IoU(M_q, G_p) -> Score (undefined when K == 0).
    """
    t = np.asarray(true_prompt_iou, dtype=np.float64).reshape(-1)
    o = np.asarray(other_prompt_iou, dtype=np.float64).reshape(-1)
    if t.shape != o.shape:
        raise ValueError(f"{len(t)} true-prompt IoUs but {len(o)} other-prompt IoUs")
    if len(t) == 0:
        return Score.undefined("no image with a positive phrase and a non-overlapping other phrase")
    return Score(float(np.mean(t - o)))
