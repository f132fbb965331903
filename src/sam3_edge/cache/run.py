"""The stage-level entry point of every cache kind: fill a cache from a teacher directory, verify it, its metrics.

``cache_teacher(kind, ...)``: ``image`` (prompts of the train images, ``build.build_image_cache``), ``video``
(per-frame features of the train clips, ``video.build_video_cache``), ``phrases`` (the phrase sets of the unlabeled
images, ``phrases.build_phrase_cache``). One runner loads the teacher, builds this rank's shards, verifies every
shard and reports the store's figures plus what the kind adds.
"""

from __future__ import annotations

import time
from pathlib import Path

from sam3_edge.cache.build import build_image_cache, real_profile_estimate
from sam3_edge.cache.config import CacheParams
from sam3_edge.cache.distributed import Ranks
from sam3_edge.cache.job import CacheJob
from sam3_edge.cache.phrases import build_phrase_cache
from sam3_edge.cache.store import TeacherCache
from sam3_edge.cache.video import build_video_cache
from sam3_edge.teacher.load import load_teacher, teacher_id

KINDS = ("image", "video", "phrases")


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
    kind: str,
    *,
    teacher_dir: str | Path,
    index_file: str | Path,
    out_dir: str | Path,
    params: CacheParams,
    vocab_index: str | Path | None = None,
    ranks: Ranks | None = None,
) -> dict:
    """Fill ``out_dir`` with the ``kind`` cache of ``index_file``, verify every shard; metrics (rank 0's view).

    ``phrases`` takes the noun-phrase vocabulary from ``vocab_index`` (an SA-Co concepts index) and its knobs from
    ``params.phrases``; the other kinds take no vocabulary.
    """
    if kind not in KINDS:
        raise ValueError(f"cache kind {kind!r}: expected one of {KINDS}")
    if (kind == "phrases") != (vocab_index is not None):
        raise ValueError(f"cache kind {kind!r}: a vocabulary index is taken by the phrases kind only, and needed by it")
    ranks = ranks or Ranks()
    job = CacheJob(Path(out_dir), ranks, (params.phrases if kind == "phrases" else params).disk_margin)
    adapter = load_teacher(teacher_dir, fpn_levels=params.levels) if kind == "image" else load_teacher(teacher_dir)
    common = {"teacher_id": teacher_id(teacher_dir), "job": job}
    t0 = time.perf_counter()
    if kind == "image":
        stats = build_image_cache(adapter, index_file=index_file, params=params, **common)
        extra = {
            "images": stats["units"],
            "estimated_mb_per_image": stats["estimated_bytes_per_unit"] / 1e6,
            "real_profile_estimate": real_profile_estimate(params.estimate),
        }
    elif kind == "video":
        stats = build_video_cache(adapter, index_file=index_file, params=params, **common)
        extra = {
            "clips": stats["units"],
            "frames": stats["frames"],
            "real_profile_estimate": real_profile_estimate(params.estimate),
        }
    else:
        stats = build_phrase_cache(
            adapter, images_index=index_file, vocab_index=vocab_index, params=params.phrases, **common
        )
        extra = stats["metrics"]
    wall = time.perf_counter() - t0
    metrics = _size_metrics(Path(out_dir), stats["samples"], stats["built_samples"], wall)
    metrics.update(
        shards=TeacherCache(out_dir).verify(),
        shards_built_rank0=stats["built"],
        shards_kept_rank0=stats["kept"],
        world_size=ranks.world_size,
        verified=True,
        **extra,
    )
    if kind == "video":
        metrics["mb_per_frame"] = metrics["total_mb"] / max(stats["frames"], 1)
    return metrics
