"""Distillation losses against hand-computed values."""

from __future__ import annotations

import math

import torch

from sam3_edge.train.distill_losses import (
    embedding_alignment_loss,
    feature_alignment_loss,
    output_distill_loss,
    soft_logit_distill_loss,
    soft_mask_distill_loss,
    tokens_to_map,
)


def test_feature_alignment_zero_for_scaled_copy_and_positive_otherwise():
    t = torch.randn(2, 8, 4, 4)
    assert feature_alignment_loss(3.0 * t + 1.0, t).item() < 1e-8  # per-position channel norm removes scale/shift
    # a student map at another resolution is resized first: a constant-in-space map upsamples exactly
    small = torch.randn(2, 8, 1, 1).expand(2, 8, 2, 2)
    big = small[..., :1, :1].expand(2, 8, 4, 4)
    assert feature_alignment_loss(small, big).item() < 1e-8
    assert feature_alignment_loss(torch.randn(2, 8, 4, 4), t).item() > 0.5


def test_embedding_alignment_ignores_scale_and_shift_but_not_direction():
    t = torch.randn(4, 16)
    assert embedding_alignment_loss(2.0 * t - 0.5, t).item() < 1e-8
    assert embedding_alignment_loss(t.flip(0), t).item() > 0.5  # another phrase's embedding
    s = torch.randn(4, 16, requires_grad=True)
    embedding_alignment_loss(s, t).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0


def test_soft_losses_hand_values():
    # BCE(logit 0, target sigmoid(0)=0.5) = log 2
    assert math.isclose(
        soft_mask_distill_loss(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2)).item(), math.log(2), rel_tol=1e-6
    )
    v = soft_logit_distill_loss(torch.tensor([0.0]), torch.tensor([100.0])).item()
    assert math.isclose(v, math.log(2), rel_tol=1e-6)  # target 1, p = 0.5


def test_tokens_to_map_roundtrip():
    m = torch.randn(2, 5, 3, 3)
    assert torch.equal(tokens_to_map(m.flatten(2).transpose(1, 2)), m)


def test_output_distill_matches_confident_teacher_queries_only():
    t_masks = torch.full((1, 3, 4, 4), -10.0)
    t_masks[0, 1, :2, :2] = 10.0  # teacher query 1: an object in the top-left corner
    t_cls = torch.tensor([[-10.0, 10.0, -10.0]])
    t_pres = torch.tensor([10.0])
    s_masks = torch.full((1, 2, 4, 4), -10.0, requires_grad=True)
    with torch.no_grad():
        s_masks[0, 0, :2, :2] = 10.0  # student query 0 already equals it
    out = output_distill_loss(
        mask_logits=s_masks,
        boxes=torch.zeros(1, 2, 4),
        class_logits=torch.tensor([[10.0, -10.0]]),
        presence_logits=torch.tensor([10.0]),
        teacher_mask_logits=t_masks,
        teacher_boxes=torch.zeros(1, 3, 4),
        teacher_class_logits=t_cls,
        teacher_presence_logits=t_pres,
    )
    assert out["kd_mask"].item() < 1e-3 and out["kd_box"].item() == 0.0 and out["kd_class"].item() < 1e-3
    # no confident teacher query: only presence is distilled, the other terms are zero
    out = output_distill_loss(
        mask_logits=s_masks,
        boxes=torch.zeros(1, 2, 4),
        class_logits=torch.zeros(1, 2),
        presence_logits=torch.tensor([0.0]),
        teacher_mask_logits=t_masks,
        teacher_boxes=torch.zeros(1, 3, 4),
        teacher_class_logits=t_cls,
        teacher_presence_logits=torch.tensor([-10.0]),
    )
    assert out["kd_mask"].item() == 0.0 and out["kd_presence"].item() > 0.6
