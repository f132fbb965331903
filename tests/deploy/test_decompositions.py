"""deploy/decompositions.py: layer norm and attention rewritten into ops XNNPACK takes, with the same numbers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sam3_edge.deploy.decompositions import XNNPACK_DECOMPOSITIONS, layer_norm, scaled_dot_product_attention
from sam3_edge.models.layers import FFN, CrossAttentionBlock


def test_layer_norm_matches_torch_on_any_leading_shape():
    torch.manual_seed(0)
    for shape in [(5, 8), (2, 7, 16), (1, 3, 4, 32)]:
        x = torch.randn(shape) * 3 + 1
        w, b = torch.randn(shape[-1]), torch.randn(shape[-1])
        ref = F.layer_norm(x, (shape[-1],), w, b, 1e-5)
        assert torch.allclose(layer_norm(x, [shape[-1]], w, b, 1e-5), ref, atol=1e-5)
        assert torch.allclose(layer_norm(x, [shape[-1]]), F.layer_norm(x, (shape[-1],)), atol=1e-5)


def test_attention_matches_sdpa_with_a_finite_additive_mask_and_refuses_bool_masks():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 4, 9, 8), torch.randn(2, 4, 5, 8), torch.randn(2, 4, 5, 8)
    for mask in (None, torch.randn(2, 1, 1, 5) * 20, torch.randn(2, 4, 9, 5)):
        ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        assert torch.allclose(scaled_dot_product_attention(q, k, v, mask), ref, atol=1e-5)
    with pytest.raises(NotImplementedError, match="boolean"):
        scaled_dot_product_attention(q, k, v, torch.ones(2, 1, 1, 5, dtype=torch.bool))


class _Blocks(nn.Module):
    def __init__(self):
        super().__init__()
        self.cross = CrossAttentionBlock(dim=32, num_heads=2)
        self.ffn = FFN(dim=32, hidden_dim=64)

    def forward(self, x, ctx, bias):
        return self.ffn(self.cross(x, ctx, bias=bias))


@pytest.mark.slow
def test_student_blocks_lower_to_one_fully_delegated_xnnpack_program(tmp_path):
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    from sam3_edge.deploy.lowering import delegation_report

    torch.manual_seed(0)
    args = (torch.randn(1, 16, 32), torch.randn(1, 6, 32), torch.randn(1, 1, 1, 6) * 20)
    ep = torch.export.export(_Blocks().eval(), args)
    plain = delegation_report(to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()]), ["forward"])
    assert "aten.native_layer_norm.default" in plain["non_delegated"]  # what the rewrite is for
    edge = to_edge_transform_and_lower(
        ep.run_decompositions(XNNPACK_DECOMPOSITIONS), partitioner=[XnnpackPartitioner()]
    )
    report = delegation_report(edge, ["forward"])
    assert report["delegated_fraction"] == 1.0 and report["methods"]["forward"]["delegates"] == 1
    from sam3_edge.deploy.runtime import PteProgram

    (tmp_path / "m.pte").write_bytes(edge.to_executorch().buffer)
    with torch.no_grad():
        ref = ep.module()(*args)
    assert torch.allclose(PteProgram(tmp_path / "m.pte").run("forward", args)[0], ref, atol=1e-4)
