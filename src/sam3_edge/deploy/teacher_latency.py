"""Eager CPU latency of SAM 3 at its real size: ``Sam3Model(Sam3Config())`` (facebook/sam3's architecture, 840M
parameters, 1008 px) with random weights, one text prompt, ``runs`` timed forwards after ``warmup``.

The weights are random because they cannot be downloaded here; the architecture, resolution and op count are the
real model's, which is what the latency depends on. The benchmark divides this by the real-size student's ``.pte``
latency, measured with the same thread count, for the "≥ 50x faster than the teacher" figure.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch
from transformers import Sam3Config, Sam3Model

from sam3_edge.utils import LOG


def real_teacher_latency(
    *, runs: int, warmup: int, threads: int, text_tokens: int = 32, seed: int = 0, config: Sam3Config | None = None
) -> dict[str, Any]:
    """``config`` None = ``Sam3Config()``, the real architecture (tests pass a tiny one)."""
    if runs < 1:
        raise ValueError("runs must be >= 1")
    torch.manual_seed(seed)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _measure(config, runs=runs, warmup=warmup, threads=threads, text_tokens=text_tokens)
    finally:
        torch.set_num_threads(previous)


def _measure(config: Sam3Config | None, *, runs: int, warmup: int, threads: int, text_tokens: int) -> dict[str, Any]:
    real = config is None
    config = Sam3Config() if real else config
    start = time.perf_counter()
    model = Sam3Model(config).eval()
    build_s = time.perf_counter() - start
    size = config.vision_config.backbone_config.image_size
    vocab = config.text_config.vocab_size
    pixels = torch.randn(1, 3, size, size)
    ids = torch.randint(1, vocab, (1, text_tokens))
    mask = torch.ones_like(ids)
    times = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            t0 = time.perf_counter()
            model(pixel_values=pixels, input_ids=ids, attention_mask=mask)
            elapsed = (time.perf_counter() - t0) * 1000
            LOG.info("teacher latency: %s %d: %.0f ms", "warmup" if i < warmup else "run", i, elapsed)
            if i >= warmup:
                times.append(elapsed)
    return {
        "model": "Sam3Model(Sam3Config()): facebook/sam3's architecture, random weights" if real else "custom config",
        "params_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1),
        "image_size": size,
        "text_tokens": text_tokens,
        "threads": threads,
        "warmup": warmup,
        "runs_ms": [round(t, 1) for t in times],
        "p50_ms": round(statistics.median(times), 1),
        "build_s": round(build_s, 1),
    }
