"""Pure loss functions shared by the bootstrap teacher and the student (SAM 3 / DETR-style set prediction).

Every function takes tensors and returns tensors: no module state, no config objects except the frozen
:class:`LossWeights`. Per-instance losses return one value per instance (``[N]``) so callers choose the
normalisation; :func:`set_prediction_loss` is the full criterion (matching + weighted sum) used by training.
Distillation-only terms (feature alignment, logit distillation) live in ``train/distill_losses.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torchvision

from sam3_edge.config import check
from sam3_edge.core.matcher import match_instances
from sam3_edge.utils import resize_logits


@dataclass(frozen=True)
class LossWeights:
    """Weights of the set-prediction criterion and of the matching cost (a ``loss`` block in params).

    The defaults are the bootstrap-teacher recipe that learns on synthetic data: matching on class + dice only
    (box terms in the matching cost made the tiny model collapse), no class loss on negative pairs (presence
    handles them), presence weight 5.
    """

    mask_bce: float = 5.0
    mask_dice: float = 5.0
    box_l1: float = 1.0
    giou: float = 1.0
    cls: float = 2.0
    presence: float = 5.0
    semantic: float = 1.0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    match_class: float = 2.0
    match_dice: float = 5.0
    match_box: float = 0.0
    matcher: str = "hungarian"  # or "greedy"
    class_loss_on_negatives: bool = False

    def __post_init__(self) -> None:
        for name in (
            "mask_bce",
            "mask_dice",
            "box_l1",
            "giou",
            "cls",
            "presence",
            "semantic",
            "match_class",
            "match_dice",
            "match_box",
            "focal_gamma",
        ):
            check(getattr(self, name) >= 0, name, "must be >= 0")
        check(
            self.focal_alpha == -1 or 0 <= self.focal_alpha <= 1,
            "focal_alpha",
            "must be in [0, 1], or -1 for no class balancing (with focal_gamma 0: plain BCE)",
        )
        check(self.matcher in ("hungarian", "greedy"), "matcher", "must be 'hungarian' or 'greedy'")


def dice_loss(logits: torch.Tensor, targets: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft dice loss per instance. logits, targets: [N, H, W] (targets in {0, 1}) -> [N]."""
    prob = logits.sigmoid().flatten(1)
    tgt = targets.to(prob.dtype).flatten(1)
    inter = (prob * tgt).sum(-1)
    return 1 - (2 * inter + eps) / (prob.sum(-1) + tgt.sum(-1) + eps)


def mask_bce_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean per-pixel BCE per instance. logits, targets: [N, H, W] -> [N]."""
    loss = F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), reduction="none")
    return loss.flatten(1).mean(-1)


def sigmoid_focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, *, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """Element-wise sigmoid focal loss (RetinaNet). logits, targets: [...] -> [...] (no reduction)."""
    return torchvision.ops.sigmoid_focal_loss(
        logits, targets.to(logits.dtype), alpha=alpha, gamma=gamma, reduction="none"
    )


def mask_focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, *, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """Mean per-pixel focal loss per instance. logits, targets: [N, H, W] -> [N]."""
    return sigmoid_focal_loss(logits, targets, alpha=alpha, gamma=gamma).flatten(1).mean(-1)


def box_l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 over the 4 coordinates per box. pred, target: [N, 4] xyxy normalised -> [N]."""
    return (pred - target).abs().sum(-1)


def giou_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - generalised IoU per box pair. pred, target: [N, 4] xyxy -> [N]."""
    return torchvision.ops.generalized_box_iou_loss(pred, target, reduction="none")


def class_loss(logits: torch.Tensor, targets: torch.Tensor, *, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Focal classification loss per query. logits, targets: [Q] (targets 1 for matched queries) -> [Q]."""
    return sigmoid_focal_loss(logits, targets, alpha=alpha, gamma=gamma)


def presence_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """BCE on the image-level presence logit. logits, targets: [B] -> [B]."""
    return F.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), reduction="none")


def iou_token_loss(pred_iou: torch.Tensor, mask_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """MSE between a predicted IoU and the actual IoU of the thresholded mask (SAM's IoU token).

    pred_iou: [N] in [0, 1]; mask_logits, targets: [N, H, W] -> [N]. The actual IoU carries no gradient.
    """
    with torch.no_grad():
        pred = mask_logits > 0
        tgt = targets.bool()
        inter = (pred & tgt).flatten(1).sum(-1).float()
        union = (pred | tgt).flatten(1).sum(-1).float()
        actual = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
    return (pred_iou - actual) ** 2


def semantic_seg_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """BCE + dice on the semantic (union of instances) mask. logits, targets: [B, H, W] -> [B]."""
    return mask_bce_loss(logits, targets) + dice_loss(logits, targets)


def pairwise_dice_cost(logits: torch.Tensor, targets: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Dice loss between every prediction and every target. logits: [Q, H, W], targets: [N, H, W] -> [Q, N]."""
    prob = logits.sigmoid().flatten(1)
    tgt = targets.to(prob.dtype).flatten(1)
    inter = prob @ tgt.T
    return 1 - (2 * inter + eps) / (prob.sum(-1)[:, None] + tgt.sum(-1)[None, :] + eps)


def matching_cost(
    *,
    class_logits: torch.Tensor,
    mask_logits: torch.Tensor,
    target_masks: torch.Tensor,
    boxes: torch.Tensor | None = None,
    target_boxes: torch.Tensor | None = None,
    weights: LossWeights,
) -> torch.Tensor:
    """Matching cost between Q predictions and N targets of one sample -> [Q, N] (lower is better).

    class_logits: [Q]; mask_logits: [Q, h, w]; target_masks: [N, h, w]; boxes/target_boxes: [Q, 4]/[N, 4].
    """
    cost = weights.match_class * -class_logits.sigmoid()[:, None] + weights.match_dice * pairwise_dice_cost(
        mask_logits, target_masks
    )
    if weights.match_box > 0 and boxes is not None and target_boxes is not None and len(target_boxes):
        cost = cost + weights.match_box * torch.cdist(boxes, target_boxes, p=1)
    return cost


def target_mask_size(target_masks: list[torch.Tensor], logits: torch.Tensor) -> tuple[int, int]:
    """The one [H, W] of ``target_masks``, checked to be at least the size of ``logits`` [..., h, w].

    Raises ValueError when the targets disagree on their size or are coarser than the predictions (that would
    need the predictions downsampled, which no caller intends).
    """
    sizes = {tuple(t.shape[-2:]) for t in target_masks}
    if len(sizes) != 1:
        raise ValueError(f"target masks have different sizes {sorted(sizes)}: resize them to one size")
    (size,) = sizes
    if size[0] < logits.shape[-2] or size[1] < logits.shape[-1]:
        raise ValueError(
            f"target masks ({size[0]}x{size[1]}) are coarser than the predicted masks "
            f"({logits.shape[-2]}x{logits.shape[-1]}): load them at the prediction size or finer"
        )
    return size


def set_prediction_loss(
    *,
    mask_logits: torch.Tensor,
    boxes: torch.Tensor,
    class_logits: torch.Tensor,
    presence_logits: torch.Tensor,
    target_masks: list[torch.Tensor],
    target_boxes: list[torch.Tensor],
    semantic_logits: torch.Tensor | None = None,
    weights: LossWeights,
) -> dict[str, torch.Tensor]:
    """SAM 3 detector criterion for a batch of B (image, prompt) samples with Q queries.

    mask_logits: [B, Q, h, w]; boxes: [B, Q, 4] xyxy normalised; class_logits: [B, Q]; presence_logits: [B];
    target_masks: B tensors [N_b, h, w] (N_b = 0 for a negative pair); target_boxes: B tensors [N_b, 4];
    semantic_logits: [B, h, w] or None. Returns the weighted ``total`` and each unweighted term (means over
    matched instances / samples), so training can log them.

    Targets may be finer than the predictions (``[N_b, H, W]``, H >= h, W >= w): the mask and semantic logits
    are then upsampled bilinearly to the target size, as inference upsamples them to the input size, so matching
    and the mask terms score where the mask boundary lands after upsampling, not only whole cells. Only the
    matched queries are upsampled with gradient; matching upsamples without it.
    """
    bsz = mask_logits.shape[0]
    size = target_mask_size(target_masks, mask_logits)
    matched_pred, matched_tgt_masks, matched_boxes, matched_tgt_boxes = [], [], [], []
    cls_terms = []
    for b in range(bsz):
        tgt = target_masks[b]
        cls_target = torch.zeros_like(class_logits[b])
        if len(tgt):
            with torch.no_grad():
                cost = matching_cost(
                    class_logits=class_logits[b].float(),
                    mask_logits=resize_logits(mask_logits[b].float(), size),
                    target_masks=tgt,
                    boxes=boxes[b],
                    target_boxes=target_boxes[b],
                    weights=weights,
                )
            pred_idx, tgt_idx = match_instances(cost, method=weights.matcher)
            cls_target[pred_idx] = 1.0
            matched_pred.append(mask_logits[b, pred_idx])
            matched_tgt_masks.append(tgt[tgt_idx])
            matched_boxes.append(boxes[b, pred_idx])
            matched_tgt_boxes.append(target_boxes[b][tgt_idx])
        if len(tgt) or weights.class_loss_on_negatives:
            cls_terms.append(
                class_loss(class_logits[b], cls_target, alpha=weights.focal_alpha, gamma=weights.focal_gamma).sum()
            )
    zero = mask_logits.sum() * 0.0
    terms: dict[str, torch.Tensor] = {}
    if matched_pred:
        pm, tm = resize_logits(torch.cat(matched_pred), size), torch.cat(matched_tgt_masks)
        pb, tb = torch.cat(matched_boxes), torch.cat(matched_tgt_boxes)
        terms["mask_bce"] = mask_bce_loss(pm, tm).mean()
        terms["mask_dice"] = dice_loss(pm, tm).mean()
        terms["box_l1"] = box_l1_loss(pb, tb).mean()
        terms["giou"] = giou_loss(pb, tb).mean()
        terms["cls"] = torch.stack(cls_terms).sum() / max(len(pm), 1)
    else:
        for name in ("mask_bce", "mask_dice", "box_l1", "giou", "cls"):
            terms[name] = zero
    presence_target = torch.tensor([float(len(t) > 0) for t in target_masks], device=presence_logits.device)
    terms["presence"] = presence_loss(presence_logits, presence_target).mean()
    if semantic_logits is not None:
        union = torch.stack(
            [
                t.any(0) if len(t) else torch.zeros(size, dtype=torch.bool, device=semantic_logits.device)
                for t in target_masks
            ]
        )
        terms["semantic"] = semantic_seg_loss(resize_logits(semantic_logits, size), union).mean()
    total = sum(getattr(weights, name) * value for name, value in terms.items())
    terms["total"] = total  # type: ignore[assignment]
    return terms
