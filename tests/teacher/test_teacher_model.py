"""Bootstrap teacher init: spread reference boxes and the box-locality prior on the decoder's RPB."""

from __future__ import annotations

import pytest
import torch

from sam3_edge.config import ParamsError
from sam3_edge.teacher.config import TinySam3Params
from sam3_edge.teacher.model import build_bootstrap_model, init_rpb_locality


def _rpb(model, grid: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    decoder = model.detr_decoder
    ref = decoder.reference_points.weight.sigmoid()[None]
    with torch.no_grad():
        rpb = decoder._get_rpb_matrix(ref, (torch.tensor(grid), torch.tensor(grid)))  # [1, heads, Q, grid*grid]
    return ref[0], rpb[0].view(rpb.shape[1], rpb.shape[2], grid, grid)


def test_locality_prior_is_zero_inside_each_reference_box_and_falls_with_distance():
    strengths = (10.0, 2.0)
    model = build_bootstrap_model(TinySam3Params(rpb_locality=strengths), image_size=224, vocab_size=50, seed=0)
    ref, rpb = _rpb(model)
    coords = torch.arange(8) / 8  # the decoder's own coordinate grid (cell corners)
    for q in range(ref.shape[0]):
        cx, cy, w, h = ref[q].tolist()
        in_x = (coords >= cx - w / 2) & (coords <= cx + w / 2)
        in_y = (coords >= cy - h / 2) & (coords <= cy + h / 2)
        inside = in_y[:, None] & in_x[None, :]
        assert inside.any(), q
        for head, k in enumerate(strengths):
            bias = rpb[head, q]
            assert bias[inside].abs().max() < 1e-5
            assert bias[~inside].max() < 0
            # the penalty scales with the head's strength k (the output layer is linear in k)
            assert bias.min() < -k * 0.5
        # farther out is penalised more: the corner farthest from the box centre has the lowest bias
        far = (int(cy < 0.5) * 7, int(cx < 0.5) * 7)
        assert rpb[0, q][far] == rpb[0, q].min()


def test_without_a_prior_the_rpb_is_random_not_local():
    model = build_bootstrap_model(TinySam3Params(), image_size=224, vocab_size=50, seed=0)
    _, rpb = _rpb(model)
    assert rpb.max() > 0  # xavier init: no "outside is negative" structure


def test_locality_prior_is_trainable_and_deterministic():
    models = []
    for _ in range(2):
        torch.manual_seed(3)  # parameters outside Linear/Conv/Embedding (ViT position embeddings) use it
        models.append(
            build_bootstrap_model(TinySam3Params(rpb_locality=(4.0, 1.0)), image_size=224, vocab_size=50, seed=3)
        )
    a, b = models
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0)
    mlp = a.detr_decoder.box_rpb_embed_x
    assert all(p.requires_grad for p in mlp.parameters())
    # the extra hidden units start silent but receive gradient through the output layer
    out = mlp(torch.randn(5, 2)).sum()
    out.backward()
    assert mlp.layer2.weight.grad[:, 2:].abs().sum() > 0


def test_locality_strengths_must_match_the_heads():
    with pytest.raises(ParamsError, match="rpb_locality"):
        TinySam3Params(heads=2, rpb_locality=(1.0, 2.0, 3.0))
    with pytest.raises(ParamsError, match="rpb_locality"):
        TinySam3Params(rpb_locality=(1.0, -2.0))
    model = build_bootstrap_model(TinySam3Params(), image_size=224, vocab_size=50, seed=0)
    with pytest.raises(ValueError, match="strengths"):
        init_rpb_locality(model.detr_decoder.box_rpb_embed_x, (1.0,))
