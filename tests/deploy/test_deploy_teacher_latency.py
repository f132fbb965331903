"""real_teacher_latency on a tiny Sam3Config (the real one is 840M parameters: `make bench-real` measures it)."""

from __future__ import annotations

import pytest

from sam3_edge.deploy.teacher_latency import real_teacher_latency
from sam3_edge.teacher.config import TinySam3Params
from sam3_edge.teacher.model import bootstrap_config


def test_times_runs_after_warmup_on_a_tiny_config():
    config = bootstrap_config(TinySam3Params(), image_size=112, vocab_size=64)
    out = real_teacher_latency(runs=2, warmup=1, threads=1, text_tokens=8, config=config)
    assert out["model"] == "custom config" and out["image_size"] == 112 and out["threads"] == 1
    assert len(out["runs_ms"]) == 2 and all(t > 0 for t in out["runs_ms"])
    assert min(out["runs_ms"]) <= out["p50_ms"] <= max(out["runs_ms"])
    assert out["params_m"] > 0


def test_needs_a_run():
    with pytest.raises(ValueError, match="runs"):
        real_teacher_latency(runs=0, warmup=0, threads=1)
