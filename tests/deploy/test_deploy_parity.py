"""The export's parity check: mask-logit cosine always, mask IoU only where the eager mask has a foreground."""

from __future__ import annotations

import torch

from sam3_edge.deploy.config import ExportParams
from sam3_edge.deploy.pipeline import logit_cosine, parity, parity_failures


class _Program:
    def __init__(self, fn):
        self.fn = fn

    def module(self):
        return self.fn


class _Pte:
    def __init__(self, fn):
        self.fn = fn

    def run(self, method, args):
        return self.fn(*args)


def _masks(foreground: float, noise: float):
    """Eager: logits with ``foreground`` of the pixels at +1; .pte: the same plus ``noise`` flipping small ones."""
    torch.manual_seed(0)
    base = -torch.rand(1, 4, 64, 64) * 0.1
    n = int(foreground * base.numel())
    base.view(-1)[:n] = 1.0
    eager = _Program(lambda x: (base * x, torch.zeros(1)))
    pte = _Pte(lambda x: (base * x + noise * torch.randn_like(base), torch.zeros(1)))
    return eager, pte


def test_small_foreground_counts_cosine_not_iou():
    # 3 pixels of foreground, the rest near zero: noise flips near-zero pixels, the IoU is meaningless
    eager, pte = _masks(foreground=3 / (4 * 64 * 64), noise=0.005)
    inputs = {"image": [(torch.ones(1),), (torch.ones(1),)]}
    result = parity(pte, {"image": eager}, inputs, samples=2, min_foreground=0.001)["image"]
    assert result["iou_samples"] == 0 and result["iou_skipped_small_foreground"] == 2
    assert "mask_iou_min" not in result
    assert result["mask_logit_cosine_min"] > 0.98
    assert parity_failures({"image": result}, ExportParams()) == []
    # counted anyway (min_foreground 0), the same outputs look like a broken lowering
    counted = parity(pte, {"image": eager}, inputs, samples=2, min_foreground=0.0)["image"]
    assert counted["mask_iou_min"] < 0.5
    assert parity_failures({"image": counted}, ExportParams(min_parity_mask_iou=0.5))


def test_broken_lowering_fails_on_cosine_and_iou():
    eager, pte = _masks(foreground=0.2, noise=2.0)
    inputs = {"image": [(torch.ones(1),)]}
    result = parity(pte, {"image": eager}, inputs, samples=1, min_foreground=0.001)["image"]
    assert result["iou_samples"] == 1
    bad = parity_failures({"image": result}, ExportParams())
    assert any("cosine" in b for b in bad) and any("IoU" in b for b in bad)


def test_random_weights_record_the_iou_and_keep_the_cosine_bound():
    # a foreground just over the threshold, all of it noise: the IoU is low, the cosine high
    eager, pte = _masks(foreground=0.002, noise=0.5)
    inputs = {"image": [(torch.ones(1),)]}
    result = parity(pte, {"image": eager}, inputs, samples=1, min_foreground=0.001)["image"]
    assert result["iou_samples"] == 1 and result["mask_iou_min"] < 0.5
    gated = parity_failures({"image": result}, ExportParams(min_parity_cosine=0.0))
    assert gated and all("IoU" in b for b in gated)
    assert parity_failures({"image": result}, ExportParams(min_parity_cosine=0.0), gate_iou=False) == []
    # a broken lowering still fails on its cosine when the IoU is not gated
    eager, pte = _masks(foreground=0.2, noise=2.0)
    broken = parity(pte, {"image": eager}, inputs, samples=1, min_foreground=0.001)["image"]
    bad = parity_failures({"image": broken}, ExportParams(), gate_iou=False)
    assert bad and all("cosine" in b for b in bad)


def test_logit_cosine():
    a = torch.tensor([1.0, -2.0, 3.0])
    assert abs(logit_cosine(a, 2 * a) - 1.0) < 1e-6
    assert abs(logit_cosine(a, -a) + 1.0) < 1e-6
    assert logit_cosine(torch.zeros(3), torch.zeros(3)) == 1.0


def test_teacher_latency_needs_the_same_threads(tmp_path):
    from sam3_edge.deploy.benchmark import _teacher_latency
    from sam3_edge.utils import write_json

    path = tmp_path / "benchmark_teacher.json"
    got, reason = _teacher_latency(path, threads=1)
    assert got is None and "make bench-real" in reason
    write_json(path, {"threads": 4, "p50_ms": 9000.0})
    got, reason = _teacher_latency(path, threads=1)
    assert got is None and "not comparable" in reason
    got, reason = _teacher_latency(path, threads=4)
    assert got["p50_ms"] == 9000.0 and reason == ""
