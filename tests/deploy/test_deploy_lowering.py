"""XNNPACK lowering of PT2E int8 graphs whose dq nodes are shared with ops left outside the delegate."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import sam3_edge.deploy.lowering as lowering
from sam3_edge.deploy.quantize import build_variant, weight_quantization_report
from sam3_edge.deploy.runtime import PteProgram


class GatedResidual(nn.Module):
    """``MemoryAttention``'s tail: ``t + gate * (ffn(q(layer_norm(t))) - t)``.

    The quantizer leaves ``sub`` and ``layer_norm`` unannotated, so ``dq(t)`` stays shared between them; XNNPACK
    still runs ``dq -> sub -> q`` quantized and pulls ``dq(t)`` into the ``sub`` partition, whose other input
    comes from the ``layer_norm`` path outside: a dependency cycle unless the dq is split per consumer.
    """

    def __init__(self, dim: int = 32) -> None:
        super().__init__()
        self.inp, self.q, self.ffn, self.out = (nn.Linear(dim, dim) for _ in range(4))
        self.norm = nn.LayerNorm(dim)
        self.gate = nn.Parameter(torch.tensor(0.5))

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        t = self.inp(x)
        update = self.ffn(self.q(self.norm(t))) - t
        return self.out(t + torch.tanh(self.gate) * valid[:, None, None] * update)


@pytest.fixture(scope="module")
def gated_int8():
    torch.manual_seed(0)
    example = (torch.randn(1, 16, 32), torch.ones(1))
    calibration = [example, (torch.randn(1, 16, 32), torch.ones(1))]
    eps, _ = build_variant(
        "int8", {"video_step": (GatedResidual().eval(), example)}, {"video_step": calibration}, embedding_bits=0
    )
    return eps, calibration


def test_the_pattern_is_a_cycle_without_the_dq_split(gated_int8, monkeypatch):
    """Guards that the model below still exercises the bug (drop the pass if ExecuTorch stops needing it)."""
    eps, _ = gated_int8
    monkeypatch.setattr(lowering, "_transform_passes", lambda backend, methods: None)
    with pytest.raises(AssertionError, match="dependency cycles"):
        lowering.lower_programs(eps, "xnnpack", variant="int8")


def test_int8_shared_dq_lowers_and_runs(gated_int8, tmp_path):
    eps, calibration = gated_int8
    assert weight_quantization_report(eps["video_step"]) == {"quantized_weight_ops": 4, "float_weight_ops": 0}
    lowered = lowering.lower_programs(eps, "xnnpack", variant="int8")
    report = lowered.delegation["methods"]["video_step"]
    # the q/dq, the sub and (rewritten by deploy/decompositions.py) the layer norm are all delegated
    assert report["non_delegated"] == {} and report["delegates"] == 1
    path = tmp_path / "model.pte"
    path.write_bytes(lowered.buffer)
    pte = PteProgram(path)
    eager = eps["video_step"].module()
    for args in calibration:
        with torch.no_grad():
            ref = eager(*args)
        (got,) = pte.run("video_step", args)
        assert got.shape == ref.shape
        assert (got - ref).abs().max().item() < 0.1 * ref.abs().max().item()


class SharedWeight(nn.Module):
    """One Linear used twice with a cumulative sum between: XNNPACK leaves the cumsum outside, so the two uses land
    in two partitions and ExecuTorch copies the shared weight and bias (``duplicate_constant_node``)."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.lin = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(torch.cumsum(self.lin(x), dim=-1))


def test_batched_constant_copies_give_the_same_pte(monkeypatch):
    """The deferred recompile/validate of the copies changes nothing in the program: same bytes, same numbers."""
    import contextlib
    from collections import Counter

    def programs():
        torch.manual_seed(0)
        example = (torch.randn(1, 4, 16),)
        return build_variant("fp32", {"image": (SharedWeight().eval(), example)}, {"image": [example]})[0]

    batched = lowering.lower_programs(programs(), "xnnpack", variant="fp32")
    assert batched.delegation["constant_copies"] >= 2  # weight and bias, copied for the second partition
    monkeypatch.setattr(lowering, "batched_constant_copies", lambda: contextlib.nullcontext(Counter()))
    plain = lowering.lower_programs(programs(), "xnnpack", variant="fp32")
    assert plain.delegation["constant_copies"] == 0 and plain.buffer == batched.buffer


def _depth(program) -> int:
    deepest = 0
    for node in program.graph_module.graph.nodes:
        chain, d = node.meta.get("from_node"), 0
        while chain:
            chain, d = chain[-1].from_node, d + 1
        deepest = max(deepest, d)
    return deepest


def test_shortened_provenance_gives_the_same_pte(gated_int8, monkeypatch):
    """Only the oldest provenance link is kept (ExecuTorch names debug handles by it): same bytes, same handles."""
    eps, _ = gated_int8
    program = eps["video_step"].run_decompositions({})  # a copy: the fixture stays as PT2E left it
    assert _depth(program) > 1
    assert lowering.shorten_provenance(program.graph_module) > 0 and _depth(program) == 1
    short = lowering.lower_programs(eps, "xnnpack", variant="int8")
    monkeypatch.setattr(lowering, "shorten_provenance", lambda graph_module: 0)
    full = lowering.lower_programs(eps, "xnnpack", variant="int8")
    assert full.buffer == short.buffer


def test_shared_provenance_gives_the_same_pte(gated_int8, monkeypatch):
    """Provenance records shared by deepcopy instead of copied: same bytes; the patch is gone afterwards."""
    import contextlib
    import copy

    from torch.fx.traceback import NodeSource

    eps, _ = gated_int8
    shared = lowering.lower_programs(eps, "xnnpack", variant="int8")
    record = NodeSource(None, "a pass")
    assert copy.deepcopy(record) is not record  # restored on exit
    with lowering.shared_provenance():
        assert copy.deepcopy(record) is record
    monkeypatch.setattr(lowering, "shared_provenance", contextlib.nullcontext)
    copied = lowering.lower_programs(eps, "xnnpack", variant="int8")
    assert copied.buffer == shared.buffer
