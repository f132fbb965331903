"""Wall-clock latency of one eager ``predict`` call on this CPU: median of N timed runs after warm-up."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from sam3_edge.types import Predictor, Prompt


def measure_latency(
    predictor: Predictor, image: torch.Tensor, prompt: Prompt, *, warmup: int, runs: int
) -> dict[str, Any]:
    """image: [1, 3, S, S] in [0, 1]. Returns median / p90 / min milliseconds per call (batch 1), runs, threads."""
    if runs <= 0:
        raise ValueError(f"runs must be > 0, got {runs}")
    times = []
    with torch.inference_mode():
        for i in range(warmup + runs):
            start = time.perf_counter()
            predictor.predict(image, [prompt])
            elapsed = time.perf_counter() - start
            if i >= warmup:
                times.append(elapsed * 1000.0)
    arr = np.asarray(times)
    return {
        "image_ms_median": float(np.median(arr)),
        "image_ms_p90": float(np.percentile(arr, 90)),
        "image_ms_min": float(arr.min()),
        "runs": runs,
        "warmup": warmup,
        "threads": torch.get_num_threads(),
    }
