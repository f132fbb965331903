"""Stage-level entry points: fill a cache from a teacher directory, verify it, return its metrics."""

from __future__ import annotations

import time
from pathlib import Path

from sam3_edge.cache.build import build_image_cache, real_profile_estimate
from sam3_edge.cache.config import CacheParams
from sam3_edge.cache.store import TeacherCache
from sam3_edge.cache.video import build_video_cache
from sam3_edge.teacher.load import load_teacher, teacher_id


def _size_metrics(out: Path, samples: int, built_samples: int, seconds: float) -> dict:
    """Sizes from the shard files; throughput of this process (rank 0 under torchrun) over what it built."""
    total = sum(f.stat().st_size for f in out.glob("shard-*.safetensors"))
    metrics = {
        "samples": samples,
        "total_mb": total / 1e6,
        "mb_per_sample": total / 1e6 / max(samples, 1),
        "built_samples": built_samples,
        "seconds": round(seconds, 2),
    }
    if built_samples:
        metrics["samples_per_s"] = built_samples / seconds
    else:
        metrics["samples_per_s"] = {"status": "undefined", "reason": "every shard was already built and verified"}
    return metrics


def cache_teacher(
    *,
    teacher_dir: str | Path,
    index_file: str | Path,
    out_dir: str | Path,
    params: CacheParams,
    rank: int = 0,
    world_size: int = 1,
    barrier=lambda: None,
) -> dict:
    """Fill ``out_dir`` with the image-prompt cache, verify every shard; metrics (rank 0's view)."""
    adapter = load_teacher(teacher_dir, fpn_levels=params.levels)
    t0 = time.perf_counter()
    stats = build_image_cache(
        adapter,
        teacher_id=teacher_id(teacher_dir),
        index_file=index_file,
        out_dir=out_dir,
        params=params,
        rank=rank,
        world_size=world_size,
        barrier=barrier,
    )
    wall = time.perf_counter() - t0
    cache = TeacherCache(out_dir)
    shards = cache.verify()
    metrics = _size_metrics(Path(out_dir), stats["samples"], stats["built_samples"], wall)
    metrics.update(
        images=stats["units"],
        shards=shards,
        shards_built_rank0=stats["built"],
        shards_kept_rank0=stats["kept"],
        world_size=world_size,
        verified=True,
        estimated_mb_per_image=stats["estimated_bytes_per_unit"] / 1e6,
        real_profile_estimate=real_profile_estimate(params.estimate),
    )
    return metrics


def cache_teacher_video(
    *,
    teacher_dir: str | Path,
    index_file: str | Path,
    out_dir: str | Path,
    params: CacheParams,
    rank: int = 0,
    world_size: int = 1,
    barrier=lambda: None,
) -> dict:
    """Fill ``out_dir`` with per-frame FPN features of every clip, verify; metrics incl. the real estimate."""
    adapter = load_teacher(teacher_dir)
    t0 = time.perf_counter()
    stats = build_video_cache(
        adapter,
        teacher_id=teacher_id(teacher_dir),
        index_file=index_file,
        out_dir=out_dir,
        params=params,
        rank=rank,
        world_size=world_size,
        barrier=barrier,
    )
    wall = time.perf_counter() - t0
    cache = TeacherCache(out_dir)
    shards = cache.verify()
    metrics = _size_metrics(Path(out_dir), stats["samples"], stats["built_samples"], wall)
    metrics.update(
        clips=stats["units"],
        frames=stats["frames"],
        mb_per_frame=metrics["total_mb"] / max(stats["frames"], 1),
        shards=shards,
        shards_built_rank0=stats["built"],
        world_size=world_size,
        verified=True,
        real_profile_estimate=real_profile_estimate(params.estimate),
    )
    return metrics
