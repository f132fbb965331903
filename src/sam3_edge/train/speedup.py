"""Measured speed-up of training from the cache over running the teacher online for the same step.

Runs AFTER training (the training loop never loads the teacher). For one training batch it times what the
cache replaces: ``cache.load`` of the batch's keys versus the teacher's full forward (vision + prompt heads)
on the same images and prompts. online step = cached step - cache load + teacher forward.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from sam3_edge.train.data import CachedBatches
from sam3_edge.types import Prompt


@torch.inference_mode()
def measure_speedup(teacher: Any, cache: Any, keys: list[str], *, cached_step_s: float, repeats: int = 2) -> dict:
    """``teacher``: a TeacherAdapter-like module (``image_size``, ``forward(images, prompts)``)."""
    batches = CachedBatches(cache, image_size=int(teacher.image_size), mask_size=8, with_gt=False)
    images = torch.stack([batches._image(cache.meta(k)["index_file"], cache.meta(k)["image"]) for k in keys])
    prompts = [Prompt.from_json(cache.meta(k)["prompt"]) for k in keys]  # cache prompts are in teacher pixels
    teacher.eval()
    teacher(images, prompts)  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        teacher(images, prompts)
    teacher_s = (time.perf_counter() - t0) / repeats
    t0 = time.perf_counter()
    for _ in range(repeats):
        for k in keys:
            cache.load(k)
    load_s = (time.perf_counter() - t0) / repeats
    online = cached_step_s - load_s + teacher_s
    return {
        "batch": len(keys),
        "teacher_forward_s": teacher_s,
        "cache_load_s": load_s,
        "cached_step_s": cached_step_s,
        "online_step_s": online,
        "speedup": online / cached_step_s,
    }
