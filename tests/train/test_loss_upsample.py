"""The set-prediction criterion with targets finer than the predicted masks (logits upsampled as at inference)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sam3_edge.core.losses import LossWeights, set_prediction_loss
from sam3_edge.data.datasets import resize_masks
from sam3_edge.utils import resize_logits


def _disc(size: int, cx: float, cy: float, r: float) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    return (xs - cx) ** 2 + (ys - cy) ** 2 <= r**2


def _batch(q: int = 5, low: int = 8, high: int = 32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    targets = [
        torch.stack([_disc(high, 9.3, 10.1, 5.2), _disc(high, 22.6, 20.4, 6.7)]),
        torch.zeros(0, high, high, dtype=torch.bool),  # a negative pair
    ]
    boxes = [torch.tensor([[0.1, 0.15, 0.45, 0.5], [0.5, 0.45, 0.9, 0.85]]), torch.zeros(0, 4)]
    return dict(
        mask_logits=torch.randn(2, q, low, low, generator=g, requires_grad=True),
        boxes=torch.rand(2, q, 4, generator=g).sort(-1).values,
        class_logits=torch.randn(2, q, generator=g),
        presence_logits=torch.randn(2, generator=g),
        semantic_logits=torch.randn(2, low, low, generator=g, requires_grad=True),
        target_masks=targets,
        target_boxes=boxes,
        weights=LossWeights(),
    )


def test_fine_targets_score_the_upsampled_logits():
    batch = _batch()
    got = set_prediction_loss(**batch)
    up = dict(batch)
    up["mask_logits"] = F.interpolate(batch["mask_logits"], size=(32, 32), mode="bilinear", align_corners=False)
    up["semantic_logits"] = resize_logits(batch["semantic_logits"], (32, 32))
    want = set_prediction_loss(**up)
    for name in want:
        assert torch.allclose(got[name], want[name], atol=1e-6), name
    got["total"].backward()
    assert batch["mask_logits"].grad.abs().sum() > 0 and batch["semantic_logits"].grad.abs().sum() > 0


def test_coarser_or_mixed_targets_are_rejected():
    batch = _batch(low=16, high=8)
    with pytest.raises(ValueError, match="coarser than the predicted masks"):
        set_prediction_loss(**batch)
    batch = _batch()
    batch["target_masks"][1] = torch.zeros(0, 16, 16, dtype=torch.bool)
    with pytest.raises(ValueError, match="different sizes"):
        set_prediction_loss(**batch)


def _fit(target: torch.Tensor, *, low: int, loss_size: int, steps: int = 300) -> float:
    """Fit free low-res logits to ``target`` with the mask terms at ``loss_size``; IoU after upsampling."""
    logits = torch.zeros(1, 1, low, low, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=0.1)
    tgt = resize_masks(target[None].numpy(), loss_size)
    weights = LossWeights(box_l1=0, giou=0, cls=0, presence=0, semantic=0)
    for _ in range(steps):
        terms = set_prediction_loss(
            mask_logits=logits,
            boxes=torch.tensor([[[0.2, 0.2, 0.8, 0.8]]]),
            class_logits=torch.zeros(1, 1),
            presence_logits=torch.zeros(1),
            target_masks=[tgt],
            target_boxes=[torch.tensor([[0.2, 0.2, 0.8, 0.8]])],
            weights=weights,
        )
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
    pred = resize_logits(logits.detach()[0], tuple(target.shape))[0] > 0
    return float((pred & target).sum() / (pred | target).sum())


def test_fine_targets_place_sub_cell_boundaries_better():
    # A disc whose edge falls inside 8 px cells: fitted at the 8 x 8 cell grid, the upsampled mask can only
    # follow whole cells; fitted at 64 px, the logits learn where the edge crosses each cell.
    target = _disc(64, 29.0, 35.0, 19.0)
    coarse = _fit(target, low=8, loss_size=8)
    fine = _fit(target, low=8, loss_size=64)
    assert fine > coarse + 0.02, (coarse, fine)
    assert fine > 0.9
