"""Video object segmentation J&F as DAVIS 2017 and SA-V define it.

Follows ``facebookresearch/sam2`` ``sav_dataset/utils/sav_benchmark.py`` (adapted there from
davisvideochallenge/davis2017-evaluation ``davis2017/metrics.py`` and hkchengrex/vos-benchmark):

* **J** (region similarity) of a frame = mask IoU, **1** when both prediction and GT are empty (``get_iou``).
* **F** (boundary F-measure) of a frame: 1-pixel boundary maps of prediction and GT (``_seg2bmap``), each
  dilated by a disk of radius ``ceil(0.008 * ||(H, W)||)`` pixels (the DAVIS boundary tolerance), precision =
  share of predicted boundary pixels within the GT's dilated boundary, recall = the converse; F = 2PR/(P+R).
  Empty boundaries: both empty -> P = R = 1; only prediction empty -> P = 1, R = 0; only GT empty -> P = 0, R = 1.
* Per object: J and F are the means over its evaluated frames; the SA-V val/test protocol skips the first and
  the last annotated frame (``skip_first_and_last``). Global J and F are means over objects (all videos
  pooled), J&F = (J + F) / 2. Values are in [0, 1] (SA-V prints x100).

The dilation uses ``scipy.ndimage.binary_dilation`` with the same disk footprint as ``skimage.morphology.disk``
(``x^2 + y^2 <= r^2``), which equals the reference ``cv2.dilate`` on binary maps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.ndimage import binary_dilation

from sam3_edge.core.metrics import Score, mask_iou

DAVIS_BOUNDARY_TOLERANCE = 0.008


def seg2bmap(seg: Any) -> np.ndarray:
    """1-pixel-wide boundary map of a binary mask [H, W] -> [H, W] bool (DAVIS ``_seg2bmap``, same size)."""
    seg = np.asarray(seg, dtype=bool)
    if seg.ndim != 2:
        raise ValueError(f"expected a mask [H, W], got shape {seg.shape}")
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = seg ^ e | seg ^ s | seg ^ se
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = False
    return b


def disk(radius: int) -> np.ndarray:
    """Disk footprint [2r+1, 2r+1] bool, ``x^2 + y^2 <= r^2`` (as ``skimage.morphology.disk``)."""
    r = int(radius)
    y, x = np.ogrid[-r : r + 1, -r : r + 1]
    return (x * x + y * y) <= r * r


def boundary_f(pred: Any, gt: Any, *, tolerance: float = DAVIS_BOUNDARY_TOLERANCE) -> float:
    """Boundary F-measure of one frame. pred, gt: [H, W] bool -> float in [0, 1]."""
    pred = np.asarray(pred, dtype=bool)
    gt = np.asarray(gt, dtype=bool)
    if pred.shape != gt.shape:
        raise ValueError(f"mask sizes differ: {pred.shape} vs {gt.shape}")
    bound_pix = tolerance if tolerance >= 1 else math.ceil(tolerance * float(np.linalg.norm(pred.shape)))
    footprint = disk(int(bound_pix))
    fg_boundary = seg2bmap(pred)
    gt_boundary = seg2bmap(gt)
    n_fg = int(fg_boundary.sum())
    n_gt = int(gt_boundary.sum())
    if n_fg == 0 and n_gt == 0:
        return 1.0
    if n_fg == 0 or n_gt == 0:
        return 0.0  # (P, R) = (1, 0) or (0, 1)
    fg_dil = binary_dilation(fg_boundary, structure=footprint)
    gt_dil = binary_dilation(gt_boundary, structure=footprint)
    precision = float((fg_boundary & gt_dil).sum()) / n_fg
    recall = float((gt_boundary & fg_dil).sum()) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def region_j(pred: Any, gt: Any) -> float:
    """Region similarity J of one frame: IoU, 1 when both masks are empty. pred, gt: [H, W] bool."""
    return mask_iou(pred, gt, empty_value=1.0)


def object_j_and_f(
    preds: Sequence[Any],
    gts: Sequence[Any],
    *,
    skip_first_and_last: bool = True,
    tolerance: float = DAVIS_BOUNDARY_TOLERANCE,
) -> tuple[float, float] | None:
    """Mean J and mean F of one object over its annotated frames (lists of [H, W] bool, aligned).

    Returns None when no frame is left to evaluate (e.g. <= 2 frames with ``skip_first_and_last``).
    """
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predicted frames for {len(gts)} annotated frames")
    pairs = list(zip(preds, gts, strict=True))
    if skip_first_and_last:
        pairs = pairs[1:-1]
    if not pairs:
        return None
    j = [region_j(p, g) for p, g in pairs]
    f = [boundary_f(p, g, tolerance=tolerance) for p, g in pairs]
    return float(np.mean(j)), float(np.mean(f))


def j_and_f(per_object: Sequence[tuple[float, float]]) -> dict[str, Score]:
    """Global ``J``, ``F`` and ``J_and_F``: means over objects of the per-object (J, F) pairs."""
    if not per_object:
        reason = "no object with an evaluable frame"
        return {"J": Score.undefined(reason), "F": Score.undefined(reason), "J_and_F": Score.undefined(reason)}
    arr = np.asarray(per_object, dtype=np.float64)
    j, f = float(arr[:, 0].mean()), float(arr[:, 1].mean())
    return {"J": Score(j), "F": Score(f), "J_and_F": Score((j + f) / 2)}
