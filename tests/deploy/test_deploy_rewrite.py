"""ProjectedAttention: nn.MultiheadAttention as four nn.Linear, same outputs, every projection quantizable."""

from __future__ import annotations

import pytest
import torch
from open_clip.transformer import TextTransformer
from torch import nn

from sam3_edge.deploy.rewrite import ProjectedAttention, unfuse_attention


@pytest.mark.parametrize("mask", [None, "2d", "3d"])
def test_same_outputs_as_multihead_attention(mask):
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(32, 4, batch_first=True).eval()
    x, y = torch.randn(2, 7, 32), torch.randn(2, 5, 32)
    attn_mask = {None: None, "2d": torch.randn(7, 5), "3d": torch.randn(2 * 4, 7, 5)}[mask]
    ref = mha(x, y, y, need_weights=False, attn_mask=attn_mask)[0]
    got = ProjectedAttention(mha)(x, y, y, need_weights=False, attn_mask=attn_mask)[0]
    assert torch.allclose(ref, got, atol=1e-5)


def test_open_clip_text_tower_unchanged_and_all_linear():
    torch.manual_seed(0)
    tower = TextTransformer(
        context_length=16,
        vocab_size=100,
        width=32,
        heads=4,
        layers=2,
        output_dim=None,
        proj_type="none",
        no_causal_mask=True,
        output_tokens=True,
    ).eval()
    tokens = torch.randint(1, 100, (2, 16))
    ref = tower(tokens)[1]
    assert unfuse_attention(tower) == 2
    assert not any(isinstance(m, nn.MultiheadAttention) for m in tower.modules())
    assert not any(isinstance(m, nn.modules.linear.NonDynamicallyQuantizableLinear) for m in tower.modules())
    assert torch.allclose(tower(tokens)[1], ref, atol=1e-5)


def test_refuses_what_it_does_not_cover():
    with pytest.raises(NotImplementedError, match="batch_first"):
        ProjectedAttention(nn.MultiheadAttention(8, 2))
    attn = ProjectedAttention(nn.MultiheadAttention(8, 2, batch_first=True))
    x = torch.randn(1, 3, 8)
    with pytest.raises(NotImplementedError, match="boolean"):
        attn(x, x, x, attn_mask=torch.zeros(3, 3, dtype=torch.bool))
    with pytest.raises(NotImplementedError, match="key_padding_mask"):
        attn(x, x, x, key_padding_mask=torch.zeros(1, 3, dtype=torch.bool))
