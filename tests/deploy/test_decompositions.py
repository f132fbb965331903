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


# ---- the graph splitters of the student's image / video_step programs (2026-12-05: 13 / 16 delegates -> 3 / 5) ----


def test_view_and_reduction_rewrites_match_torch():
    from sam3_edge.deploy.decompositions import group_norm, logsumexp, select, sum_dims, unbind, upsample_nearest2d

    torch.manual_seed(0)
    x = torch.randn(2, 8, 5, 6)
    assert torch.equal(select(x, 1, 3), x[:, 3]) and torch.equal(select(x, -1, -2), x[..., -2])
    assert all(torch.equal(a, b) for a, b in zip(unbind(x, 2), x.unbind(2), strict=True))
    w, b = torch.randn(8), torch.randn(8)
    assert torch.allclose(group_norm(x, 4, w, b), F.group_norm(x, 4, w, b), atol=1e-5)
    # nearest upsampling by whole factors is exact; a fractional one is left to the default lowering
    assert torch.equal(upsample_nearest2d(x, [10, 18]), F.interpolate(x, size=(10, 18), mode="nearest"))
    assert torch.equal(upsample_nearest2d(x, None, [2.0, 2.0]), F.interpolate(x, scale_factor=2, mode="nearest"))
    assert upsample_nearest2d(x, [7, 6]) is NotImplemented
    for dims, keep in (([1], False), ([1, 3], True), ([-1], False), ([0, 2], False)):
        assert torch.allclose(sum_dims(x, dims, keep), x.sum(dims, keepdim=keep), atol=1e-5)
        big = x * 40  # exp would overflow without the max shift
        assert torch.allclose(logsumexp(big, dims, keep), torch.logsumexp(big, dims, keepdim=keep), atol=1e-4)
    assert sum_dims(x.long(), [1]) is NotImplemented


class _Splitters(nn.Module):
    """One of each op that split the student's programs into XNNPACK delegates: group norm, nearest upsampling,
    ``arange`` / ``pow`` of a literal, ``select``, ``sum`` / ``logsumexp`` over a dim, ``detach``, and squeeze /
    unsqueeze off the trailing dim; the unsqueezed linear output feeds a ``cat`` (in int8 the ``cat`` requantizes
    it to its own scale, as the mask head's ``semantic_proj(v)[:, None]`` does)."""

    def __init__(self, c: int = 16) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.norm = nn.GroupNorm(4, c)
        self.lin = nn.Linear(c, c)
        self.head = nn.Linear(c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.interpolate(F.gelu(self.norm(self.conv(x))), scale_factor=2, mode="nearest")  # [1, C, 2H, 2W]
        t = y.flatten(2).transpose(1, 2)  # [1, N, C]
        c = t.shape[-1]
        t = self.lin(t * 10.0 ** (-torch.arange(c, dtype=t.dtype) / c))
        pooled = t.sum(1) / t.shape[1] + t[:, 0].detach()  # [1, C]
        gate = torch.logsumexp(t.sum(-1), dim=1)  # [1]
        rows = torch.cat([self.head(pooled)[:, None], t[:, :3]], dim=1)  # [1, 4, C]
        return rows.squeeze(0) * gate


def _splitters(variant: str):
    from sam3_edge.deploy.quantize import build_variant

    torch.manual_seed(0)
    example = (torch.randn(1, 16, 6, 6),)
    calibration = [example, (torch.randn(1, 16, 6, 6),)]
    programs, _ = build_variant(variant, {"image": (_Splitters().eval(), example)}, {"image": calibration})
    return programs, calibration


def _plain_lowering(monkeypatch):
    """The lowering before the rewrites: layer norm / attention only, no view or literal passes."""
    import sam3_edge.deploy.decompositions as decompositions
    import sam3_edge.deploy.lowering as lowering

    original = {aten.layer_norm.default: layer_norm, aten.scaled_dot_product_attention.default: None}
    monkeypatch.setattr(
        decompositions,
        "XNNPACK_DECOMPOSITIONS",
        {k: v for k, v in XNNPACK_DECOMPOSITIONS.items() if k in original},
    )
    monkeypatch.setattr(lowering, "ViewsAsReshapePass", lowering.ShortenProvenancePass)
    monkeypatch.setattr(lowering, "FoldLiteralsPass", lowering.ShortenProvenancePass)


aten = torch.ops.aten


@pytest.mark.slow
def test_splitting_ops_lower_into_one_delegate_with_the_same_numbers(tmp_path, monkeypatch):
    import sam3_edge.deploy.lowering as lowering
    from sam3_edge.deploy.runtime import PteProgram

    programs, calibration = _splitters("fp32")
    lowered = lowering.lower_programs(programs, "xnnpack", variant="fp32")
    report = lowered.delegation["methods"]["image"]
    assert report["delegates"] == 1 and report["non_delegated"] == {}, report["non_delegated"]
    (tmp_path / "m.pte").write_bytes(lowered.buffer)
    eager = programs["image"].module()
    for args in calibration:
        with torch.no_grad():
            ref = eager(*args)
        assert torch.allclose(PteProgram(tmp_path / "m.pte").run("image", args)[0], ref, atol=1e-4, rtol=1e-4)
    with monkeypatch.context() as m:
        _plain_lowering(m)
        plain = lowering.lower_programs(programs, "xnnpack", variant="fp32").delegation["methods"]["image"]
    assert plain["delegates"] >= 3  # what the rewrites are for
    for op in ("aten.squeeze_copy.dims", "aten.native_group_norm.default", "aten.upsample_nearest2d.vec"):
        assert op in plain["non_delegated"]


@pytest.mark.slow
def test_int8_views_keep_their_requantization(tmp_path, monkeypatch):
    """In int8 the unsqueezed head output is requantized by the ``cat``: XNNPACK cannot run that view as an int8
    reshape (it refuses to load the method), so the view stays outside; everything else is delegated."""
    import sam3_edge.deploy.lowering as lowering
    from sam3_edge.deploy.runtime import PteProgram

    programs, calibration = _splitters("int8")
    lowered = lowering.lower_programs(programs, "xnnpack", variant="int8")
    assert lowered.delegation["methods"]["image"]["non_delegated"] == {"aten.unsqueeze_copy.default": 1}
    (tmp_path / "m.pte").write_bytes(lowered.buffer)
    pte, eager = PteProgram(tmp_path / "m.pte"), programs["image"].module()
    for args in calibration:
        with torch.no_grad():
            ref = eager(*args)
        got = pte.run("image", args)[0]
        assert (got - ref).abs().max().item() < 0.1 * ref.abs().max().item()
    monkeypatch.setattr(lowering, "_mismatched_requantize", lambda node, view_like: False)
    (tmp_path / "bad.pte").write_bytes(lowering.lower_programs(programs, "xnnpack", variant="int8").buffer)
    with pytest.raises(RuntimeError, match="Failed to load method"):  # "Failed to create squeeze node"
        PteProgram(tmp_path / "bad.pte").run("image", calibration[0])


def test_literal_folding_leaves_quantized_weights_alone():
    """``fold_literals`` folds the arange / pow chain but not torchao's int4 weight dequantization (ExecuTorch's
    own constant propagation would make those weights float)."""
    from executorch.exir import to_edge

    from sam3_edge.deploy.lowering import fold_literals
    from sam3_edge.deploy.quantize import build_variant

    torch.manual_seed(0)

    class Freqs(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(64, 64)

        def forward(self, x):
            return self.lin(x * 10.0 ** (-torch.arange(64, dtype=x.dtype) / 64))

    example = (torch.randn(1, 5, 64),)
    programs, _ = build_variant("8da4w", {"image": (Freqs().eval(), example)}, {"image": [example]})
    edge = to_edge(programs).exported_program("image")

    def ops():
        return [str(n.target) for n in edge.graph.nodes if n.op == "call_function"]

    dequant = sum("dequantize_affine" in op for op in ops())
    assert dequant >= 1 and any("arange" in op for op in ops())
    assert fold_literals(edge) > 0
    assert not any("arange" in op or "pow" in op for op in ops())
    assert sum("dequantize_affine" in op for op in ops()) == dequant
