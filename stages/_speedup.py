"""Distillation stages only: time the teacher online vs the cache after training (loads the teacher).

Kept apart from ``_train`` so the stages that never touch the teacher (video, fine-tune, QAT) do not import,
and so do not depend on, the teacher code.
"""

from __future__ import annotations

from typing import Any

from sam3_edge.train.distributed import DistInfo


def speedup(
    teacher_dir: str | None,
    cache_dir: str,
    metrics: dict[str, Any],
    batch_size: int,
    seed: int,
    mix: dict[str, float],
    dist: DistInfo,
) -> dict[str, Any]:
    """After training: time the teacher online vs the cache for one batch (rank 0; skipped with a reason)."""
    if not dist.is_main:
        return {}
    if not teacher_dir:
        return {"status": "skipped", "reason": "no --teacher given"}
    from sam3_edge.cache import open_cache
    from sam3_edge.teacher.load import load_teacher
    from sam3_edge.train.data import CachedBatches, MixSampler
    from sam3_edge.train.speedup import measure_speedup

    cache = open_cache(cache_dir)
    keys = cache.keys()
    kinds = CachedBatches(cache, image_size=8, mask_size=8, with_gt=False).kinds(keys)
    batch = MixSampler(keys=keys, kinds=kinds, mix=mix, seed=seed).batch(0, batch_size)
    step_s = metrics["data_s_per_step"] + metrics["compute_s_per_step"]
    if step_s <= 0:
        return {"status": "skipped", "reason": "no training step ran in this invocation (a finished run was kept)"}
    return {"status": "measured", **measure_speedup(load_teacher(teacher_dir), cache, batch, cached_step_s=step_s)}
