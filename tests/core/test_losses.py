"""Pure loss functions against hand-computed values, and the set-prediction criterion's behaviour."""

from __future__ import annotations

import itertools

import pytest
import torch

from sam3_edge.config import ParamsError, from_dict
from sam3_edge.core.losses import (
    LossWeights,
    box_l1_loss,
    dice_loss,
    giou_loss,
    iou_token_loss,
    mask_bce_loss,
    pairwise_dice_cost,
    presence_loss,
    set_prediction_loss,
)
from sam3_edge.core.matcher import greedy_match, hungarian_match, match_instances


def test_dice_and_bce_hand_values():
    big = torch.full((1, 2, 2), 50.0)
    tgt = torch.ones(1, 2, 2)
    assert dice_loss(big, tgt).item() == pytest.approx(0.0, abs=1e-6)
    # sigmoid(0) = 0.5 everywhere, target half ones: dice = 1 - (2*1 + 1)/(2 + 2 + 1) = 0.4
    half = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]])
    assert dice_loss(torch.zeros(1, 2, 2), half).item() == pytest.approx(0.4)
    assert mask_bce_loss(torch.zeros(1, 2, 2), half).item() == pytest.approx(torch.log(torch.tensor(2.0)).item())


def test_box_losses_hand_values():
    a = torch.tensor([[0.0, 0.0, 0.5, 0.5]])
    b = torch.tensor([[0.5, 0.5, 1.0, 1.0]])
    assert box_l1_loss(a, b).item() == pytest.approx(2.0)
    # disjoint boxes: IoU 0, enclosing area 1, union 0.5 -> GIoU = -0.5 -> loss 1.5
    assert giou_loss(a, b).item() == pytest.approx(1.5)
    assert giou_loss(a, a).item() == pytest.approx(0.0, abs=1e-6)


def test_presence_and_iou_token():
    assert presence_loss(torch.tensor([0.0]), torch.tensor([1.0])).item() == pytest.approx(0.6931, abs=1e-4)
    logits = torch.tensor([[[5.0, 5.0], [-5.0, -5.0]]])
    tgt = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    assert iou_token_loss(torch.tensor([0.5]), logits, tgt).item() == pytest.approx(0.0)  # IoU = 1/2


def test_pairwise_dice_matches_per_pair_dice():
    pred, tgt = torch.randn(3, 4, 4), (torch.rand(2, 4, 4) > 0.5).float()
    cost = pairwise_dice_cost(pred, tgt)
    for q, n in itertools.product(range(3), range(2)):
        assert cost[q, n].item() == pytest.approx(dice_loss(pred[q : q + 1], tgt[n : n + 1]).item(), abs=1e-6)


def test_hungarian_is_optimal_and_greedy_is_a_matching():
    cost = torch.rand(5, 3)
    rows, cols = hungarian_match(cost)
    best = min(sum(cost[r, c] for r, c in zip(p, range(3), strict=False)) for p in itertools.permutations(range(5), 3))
    assert cost[rows, cols].sum().item() == pytest.approx(float(best), abs=1e-6)
    g_rows, g_cols = greedy_match(cost)
    assert len(set(g_rows.tolist())) == 3 and sorted(g_cols.tolist()) == [0, 1, 2]
    assert match_instances(torch.zeros(4, 0))[0].numel() == 0
    with pytest.raises(ValueError, match="NaN"):
        hungarian_match(torch.tensor([[float("nan")]]))


def _sample(q=6, n=2, size=8):
    masks = torch.zeros(n, size, size, dtype=torch.bool)
    masks[0, :4, :4] = True
    masks[1, 4:, 4:] = True
    boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0]])
    return masks, boxes


def test_criterion_rewards_the_right_answer_and_skips_class_loss_on_negatives():
    masks, boxes = _sample()
    w = LossWeights()
    good_masks = torch.full((1, 6, 8, 8), -8.0)
    good_masks[0, 2] = masks[0].float() * 16 - 8
    good_masks[0, 4] = masks[1].float() * 16 - 8
    good_cls = torch.full((1, 6), -6.0)
    good_cls[0, [2, 4]] = 6.0
    good_boxes = torch.tensor([[0.1, 0.1, 0.2, 0.2]]).repeat(1, 6, 1)
    good_boxes[0, 2], good_boxes[0, 4] = boxes[0], boxes[1]
    good = set_prediction_loss(
        mask_logits=good_masks,
        boxes=good_boxes,
        class_logits=good_cls,
        presence_logits=torch.tensor([8.0]),
        target_masks=[masks],
        target_boxes=[boxes],
        weights=w,
    )
    bad = set_prediction_loss(
        mask_logits=torch.randn(1, 6, 8, 8),
        boxes=torch.rand(1, 6, 4).sort(-1).values,
        class_logits=torch.zeros(1, 6),
        presence_logits=torch.tensor([-8.0]),
        target_masks=[masks],
        target_boxes=[boxes],
        weights=w,
    )
    assert good["total"] < 0.1 * bad["total"]
    neg = set_prediction_loss(
        mask_logits=torch.randn(1, 6, 8, 8, requires_grad=True),
        boxes=torch.rand(1, 6, 4),
        class_logits=torch.zeros(1, 6, requires_grad=True),
        presence_logits=torch.tensor([0.0]),
        target_masks=[torch.zeros(0, 8, 8, dtype=torch.bool)],
        target_boxes=[torch.zeros(0, 4)],
        weights=w,
    )
    assert neg["cls"].item() == 0.0 and neg["presence"].item() > 0
    neg["total"].backward()


def test_loss_weights_strict_params():
    assert from_dict(LossWeights, {"presence": 5}).presence == 5.0
    with pytest.raises(ParamsError, match="matcher"):
        from_dict(LossWeights, {"matcher": "auction"})
    with pytest.raises(ParamsError, match="unknown key"):
        from_dict(LossWeights, {"presense": 5})
