"""The student decoder's box-locality bias: zero inside each query's reference box, falling off outside it."""

from __future__ import annotations

import pytest
import torch

from sam3_edge.models import StudentParams, build_student
from sam3_edge.models.detr import (
    MAX_LOCALITY_PENALTY,
    PROMPT_MASK_PENALTY,
    DetrDecoder,
    EncodedPrompt,
    box_locality_bias,
)


def test_bias_is_zero_inside_the_box_and_grows_with_cells_outside():
    boxes = torch.tensor([[[0.25, 0.25, 0.75, 0.75]]])  # one query, centre half of a 4 x 4 grid
    bias = box_locality_bias(boxes, torch.tensor([1.0, 3.0]), (4, 4))  # [1, 2, 1, 16]
    assert bias.shape == (1, 2, 1, 16)
    grid = bias[0, 0, 0].reshape(4, 4)
    inside = torch.zeros(4, 4, dtype=torch.bool)
    inside[1:3, 1:3] = True  # cell centres 0.375 and 0.625 lie inside [0.25, 0.75]
    assert (grid[inside] == 0).all()
    # cell centre 0.125 is 0.125 outside = half a cell; the corner cell is half a cell out in x and in y
    torch.testing.assert_close(grid[0, 1], torch.tensor(-0.5))
    torch.testing.assert_close(grid[0, 0], torch.tensor(-1.0))
    torch.testing.assert_close(bias[0, 1], 3.0 * bias[0, 0])  # per-head strength scales the penalty


def test_bias_is_floored_so_int8_attention_logits_stay_in_range():
    boxes = torch.tensor([[[0.0, 0.0, 0.1, 0.1]]])
    bias = box_locality_bias(boxes, torch.tensor([100.0]), (8, 8))
    assert bias.min() == -MAX_LOCALITY_PENALTY
    assert bias[0, 0, 0, 0] == 0  # the cell under the box is still free


def _decoder(locality):
    torch.manual_seed(0)
    return DetrDecoder(dim=16, num_heads=2, ffn_dim=32, num_layers=1, num_queries=4, locality=locality).eval()


def _prompt(batch: int) -> EncodedPrompt:
    """Three prompt tokens, the last one padding."""
    bias = torch.tensor([0.0, 0.0, -PROMPT_MASK_PENALTY])[None, None, None].expand(batch, 1, 1, 3)
    return EncodedPrompt(torch.randn(batch, 3, 16), bias, torch.randn(batch, 16))


def test_queries_read_their_own_region_with_the_bias_only():
    """Memory that differs only outside a query's box must not move that query when the bias is strong."""
    prompt = _prompt(1)
    pos = torch.randn(64, 16)
    memory = torch.randn(1, 64, 16)
    changed = memory.clone().reshape(1, 8, 8, 16)
    dec = _decoder((1000.0, 1000.0))
    with torch.no_grad():
        box = dec.ref_logits[0].sigmoid()  # cx, cy, w, h of query 0
        x0, x1 = float(box[0] - box[2] / 2), float(box[0] + box[2] / 2)
        y0, y1 = float(box[1] - box[3] / 2), float(box[1] + box[3] / 2)
        centres = (torch.arange(8) + 0.5) / 8
        outside = ~(((centres >= y0) & (centres <= y1))[:, None] & ((centres >= x0) & (centres <= x1))[None, :])
        assert outside.any() and (~outside).any()
        changed[0][outside] += 5.0 * torch.randn(int(outside.sum()), 16)  # not a constant: LayerNorm drops that
        changed = changed.reshape(1, 64, 16)
        a = dec(prompt, memory, pos, size=(8, 8))["queries"][0, 0]
        b = dec(prompt, changed, pos, size=(8, 8))["queries"][0, 0]
        torch.testing.assert_close(a, b, atol=1e-4, rtol=0)  # floored bias: e^-20 of the mass leaks
        plain = _decoder(())
        c = plain(prompt, memory, pos)["queries"][0, 0]
        d = plain(prompt, changed, pos)["queries"][0, 0]
        assert (c - d).abs().max() > 1e-2  # without the bias the query sees the whole image


def test_strengths_are_trainable_and_checked():
    dec = _decoder((4.0, 1.0))
    out = dec(_prompt(2), torch.randn(2, 64, 16), torch.randn(64, 16), size=(8, 8))
    out["queries"].sum().backward()
    assert dec.locality.grad is not None and dec.locality.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="memory grid size"):
        dec(_prompt(1), torch.randn(1, 64, 16), torch.randn(64, 16))
    with pytest.raises(ValueError, match="3 locality strengths for 2"):
        _decoder((1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="decoder_locality"):
        StudentParams(decoder_locality=(1.0,)).model_config()


def test_params_switch_the_bias_off():
    on = build_student("tiny", seed=0)
    off = build_student(StudentParams(decoder_locality=()).model_config(), seed=0)
    assert on.detr_decoder.locality is not None and off.detr_decoder.locality is None
    assert "detr_decoder.locality" in on.state_dict() and "detr_decoder.locality" not in off.state_dict()
