"""Distillation-only losses (pure functions): feature alignment and teacher-logit distillation.

The set-prediction losses shared with the teacher (dice, BCE, box, GIoU, class, presence, ...) live in
``core/losses.py``; these add what only a student needs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sam3_edge.core.losses import pairwise_dice_cost
from sam3_edge.core.matcher import match_instances


def feature_alignment_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """MSE between channel-normalised features, the student resized to the teacher's grid.

    student: [B, C, h_s, w_s] (already projected to the teacher's C by an adapter); teacher: [B, C, h_t, w_t]
    -> scalar. Layer-normalising each position over channels makes the loss independent of feature scale.
    """
    if student.shape[-2:] != teacher.shape[-2:]:
        student = F.interpolate(student, size=teacher.shape[-2:], mode="bilinear", align_corners=False)
    s = F.layer_norm(student.movedim(1, -1), (student.shape[1],))
    t = F.layer_norm(teacher.movedim(1, -1).to(s.dtype), (teacher.shape[1],))
    return F.mse_loss(s, t)


def embedding_alignment_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """MSE between layer-normalised embeddings (the phrase embedding of the text tower vs the teacher's).

    student: [B, C] (projected to the teacher's C by an adapter); teacher: [B, C] -> scalar.
    """
    s = F.layer_norm(student, (student.shape[-1],))
    t = F.layer_norm(teacher.to(s.dtype), (teacher.shape[-1],))
    return F.mse_loss(s, t)


def tokens_to_map(tokens: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """[B, L, D] tokens of a square grid -> [B, D, h, w] (h = w = sqrt(L) unless ``size`` is given)."""
    b, length, d = tokens.shape
    if size is None:
        side = int(round(length**0.5))
        if side * side != length:
            raise ValueError(f"{length} tokens are not a square grid; pass size=")
        size = (side, side)
    return tokens.transpose(1, 2).reshape(b, d, *size)


def soft_mask_distill_loss(student: torch.Tensor, teacher: torch.Tensor, *, temperature: float = 1.0) -> torch.Tensor:
    """BCE of student mask logits against the teacher's soft masks. student, teacher: [N, h, w] -> [N]."""
    target = (teacher.to(student.dtype) / temperature).sigmoid()
    loss = F.binary_cross_entropy_with_logits(student / temperature, target, reduction="none")
    return loss.flatten(1).mean(-1)


def soft_logit_distill_loss(student: torch.Tensor, teacher: torch.Tensor, *, temperature: float = 1.0) -> torch.Tensor:
    """Elementwise BCE against sigmoid(teacher / T) (class and presence logits). [...] -> [...]."""
    target = (teacher.to(student.dtype) / temperature).sigmoid()
    return F.binary_cross_entropy_with_logits(student / temperature, target, reduction="none")


def output_distill_loss(
    *,
    mask_logits: torch.Tensor,
    boxes: torch.Tensor,
    class_logits: torch.Tensor,
    presence_logits: torch.Tensor,
    teacher_mask_logits: torch.Tensor,
    teacher_boxes: torch.Tensor,
    teacher_class_logits: torch.Tensor,
    teacher_presence_logits: torch.Tensor,
    score_threshold: float = 0.5,
    temperature: float = 1.0,
    matcher: str = "hungarian",
) -> dict[str, torch.Tensor]:
    """Logit distillation of a batch: student queries are matched to the teacher's confident queries.

    Student: mask_logits [B, Q, h, w], boxes [B, Q, 4], class_logits [B, Q], presence_logits [B].
    Teacher: mask_logits [B, T, h, w] (same h, w), boxes [B, T, 4], class_logits [B, T], presence [B].
    Teacher queries with sigmoid(class) x sigmoid(presence) >= ``score_threshold`` are targets; each is
    matched (dice cost on masks) to one student query which learns its soft mask, box and class logit; every
    other student query learns class 0. Presence is distilled for every sample. Returns unweighted means
    ``kd_mask``, ``kd_box``, ``kd_class``, ``kd_presence``.
    """
    bsz = mask_logits.shape[0]
    pm, tm, pb, tb = [], [], [], []
    cls_terms = []
    for b in range(bsz):
        t_score = teacher_class_logits[b].float().sigmoid() * teacher_presence_logits[b].float().sigmoid()
        keep = torch.nonzero(t_score >= score_threshold).flatten()
        if len(keep):
            with torch.no_grad():
                cost = pairwise_dice_cost(mask_logits[b].float(), (teacher_mask_logits[b, keep] > 0).float())
            p_idx, t_idx = match_instances(cost, method=matcher)
            t_idx = keep[t_idx]
            pm.append(mask_logits[b, p_idx])
            tm.append(teacher_mask_logits[b, t_idx])
            pb.append(boxes[b, p_idx])
            tb.append(teacher_boxes[b, t_idx])
            student_cls = class_logits[b]
            target_prob = torch.zeros_like(student_cls)
            target_prob[p_idx] = (teacher_class_logits[b, t_idx].float() / temperature).sigmoid()
            cls_terms.append(F.binary_cross_entropy_with_logits(student_cls / temperature, target_prob).reshape(1))
    zero = mask_logits.sum() * 0.0
    out = {
        "kd_mask": soft_mask_distill_loss(torch.cat(pm), torch.cat(tm), temperature=temperature).mean() if pm else zero,
        "kd_box": (torch.cat(pb) - torch.cat(tb).to(boxes.dtype)).abs().sum(-1).mean() if pb else zero,
        "kd_class": torch.cat(cls_terms).mean() if cls_terms else zero,
        "kd_presence": soft_logit_distill_loss(
            presence_logits, teacher_presence_logits, temperature=temperature
        ).mean(),
    }
    return out


def grouped_rank_loss(student: torch.Tensor, teacher: torch.Tensor, group: torch.Tensor, *, temperature: float):
    """Listwise contrast of the phrases of one image: KL(softmax(teacher / T) || softmax(student / T)) over each
    group's members, averaged over groups of >= 2 members. student, teacher, group: [N] -> scalar."""
    terms = []
    for g in torch.unique(group):
        members = group == g
        if int(members.sum()) < 2:
            continue
        t = F.log_softmax(teacher[members].to(student.dtype) / temperature, dim=0)
        s = F.log_softmax(student[members] / temperature, dim=0)
        terms.append((t.exp() * (t - s)).sum())
    return torch.stack(terms).mean() if terms else student.sum() * 0.0


def phrase_set_distill_loss(
    *,
    presence_logits: torch.Tensor,
    class_logits: torch.Tensor,
    boxes: torch.Tensor,
    group: torch.Tensor,
    teacher_presence_logits: torch.Tensor,
    teacher_class_logits: torch.Tensor,
    teacher_boxes: torch.Tensor,
    temperature: float = 2.0,
    score_threshold: float = 0.5,
    matcher: str = "hungarian",
) -> dict[str, torch.Tensor]:
    """Distil the teacher's view of many phrases per image (phrases grouped by image), negatives included.

    Student: presence_logits [N], class_logits [N, Q], boxes [N, Q, 4] xyxy normalised, for N (image, phrase)
    prompts; ``group`` [N] names each prompt's image. Teacher: presence [N], class [N, T], boxes [N, T, 4].
    Returns unweighted means:

    - ``ps_presence``: BCE of student presence / T against sigmoid(teacher presence / T), every phrase;
    - ``ps_rank``: :func:`grouped_rank_loss` of the presence logits (which phrases of an image are more present);
    - ``ps_class``: per prompt, the teacher queries with sigmoid(class) x sigmoid(presence) >= ``score_threshold``
      are matched to student queries by box L1 cost; a matched query learns sigmoid(teacher class / T), every
      other query 0 (so on an absent phrase every query learns "no object");
    - ``ps_box``: L1 of the matched boxes (0 when nothing is matched).
    """
    n = presence_logits.shape[0]
    presence = soft_logit_distill_loss(presence_logits, teacher_presence_logits, temperature=temperature).mean()
    rank = grouped_rank_loss(presence_logits, teacher_presence_logits, group, temperature=temperature)
    cls_terms, box_pred, box_tgt = [], [], []
    for i in range(n):
        t_cls = teacher_class_logits[i].float()
        t_score = t_cls.sigmoid() * teacher_presence_logits[i].float().sigmoid()
        keep = torch.nonzero(t_score >= score_threshold).flatten()
        target = torch.zeros_like(class_logits[i])
        if len(keep):
            with torch.no_grad():
                cost = torch.cdist(boxes[i].float(), teacher_boxes[i, keep].float(), p=1)  # [Q, K]
            p_idx, t_idx = match_instances(cost, method=matcher)
            target[p_idx] = (t_cls[keep[t_idx]] / temperature).sigmoid().to(target.dtype)
            box_pred.append(boxes[i, p_idx])
            box_tgt.append(teacher_boxes[i, keep[t_idx]].to(boxes.dtype))
        cls_terms.append(F.binary_cross_entropy_with_logits(class_logits[i] / temperature, target))
    zero = presence_logits.sum() * 0.0
    return {
        "ps_presence": presence,
        "ps_rank": rank,
        "ps_class": torch.stack(cls_terms).mean() if cls_terms else zero,
        "ps_box": (torch.cat(box_pred) - torch.cat(box_tgt)).abs().sum(-1).mean() if box_pred else zero,
    }


def phrase_contrast_loss(student: torch.Tensor, teacher: torch.Tensor, *, tau: float = 0.07) -> torch.Tensor:
    """Symmetric InfoNCE between the student's and the teacher's embeddings of the same N phrases.

    student [N, C] (already projected to the teacher's C), teacher [N, C] -> scalar: cross-entropy of picking row
    i of the other side among all N, on cosine similarities / ``tau``, averaged over both directions.
    """
    s = F.normalize(student, dim=-1)
    t = F.normalize(teacher.to(s.dtype), dim=-1)
    logits = s @ t.T / tau
    labels = torch.arange(len(s), device=s.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
