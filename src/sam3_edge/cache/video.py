"""Per-frame teacher features of SA-V clips (``cache_teacher_video``) for the video-memory distillation.

One unit per clip: ``<video_id>/frames_fpn`` [T, C, h, w] fp16 (FPN level ``cache.video.level``) and
``<video_id>/frame_indices`` [T] int64 (which frames of the clip were kept: every ``frame_stride``-th, at most
``max_frames``). Same sharded store, resume and rank split as the image cache.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from sam3_edge.cache.build import config_hash
from sam3_edge.cache.config import CacheParams
from sam3_edge.cache.job import CacheJob, cache_header
from sam3_edge.cache.store import Unit
from sam3_edge.config import to_dict
from sam3_edge.data.datasets import resize_image
from sam3_edge.teacher.adapter import TeacherAdapter


def kept_frames(num_frames: int, *, stride: int, max_frames: int) -> list[int]:
    frames = list(range(0, num_frames, stride))
    return frames[:max_frames] if max_frames else frames


def video_frame_shape(adapter: TeacherAdapter, level: int) -> tuple[int, int, int]:
    vision = adapter.model.config.vision_config
    side = int(adapter.image_size // vision.backbone_config.patch_size * vision.scale_factors[level])
    return (vision.fpn_hidden_size, side, side)


@torch.inference_mode()
def compute_video_units(
    adapter: TeacherAdapter, units: list[Unit], *, index_file: str | Path, params: CacheParams
) -> dict[str, torch.Tensor]:
    from sam3_edge.data.datasets import read_video_frames, resolve_path

    adapter.eval()
    vp = params.video
    tensors: dict[str, torch.Tensor] = {}
    for u in units:
        frames_idx = u.meta["frame_indices"]
        path = resolve_path(index_file, u.meta["video"])
        frames = read_video_frames(path, frame_indices=frames_idx)  # [T, H, W, 3] uint8
        if len(frames) != len(frames_idx):
            raise ValueError(f"{path}: decoded {len(frames)} frames, expected {len(frames_idx)}")
        feats = []
        for start in range(0, len(frames), vp.batch_size):
            images = torch.stack([resize_image(f, adapter.image_size) for f in frames[start : start + vp.batch_size]])
            feats.append(adapter.encode_images(images).fpn_hidden_states[vp.level].half())
        tensors[f"{u.key}/frames_fpn"] = torch.cat(feats)
        tensors[f"{u.key}/frame_indices"] = torch.tensor(frames_idx, dtype=torch.int64)
    return tensors


def build_video_cache(
    adapter: TeacherAdapter, *, teacher_id: str, index_file: str | Path, params: CacheParams, job: CacheJob
) -> dict:
    from sam3_edge.data.datasets import load_video_records

    vp = params.video
    levels = len(adapter.model.config.vision_config.scale_factors)
    if vp.level >= levels:
        raise ValueError(f"cache.video.level={vp.level}: the teacher has only {levels} FPN levels")
    records = load_video_records(index_file)
    units = []
    for r in records:
        idx = kept_frames(r.num_frames, stride=vp.frame_stride, max_frames=vp.max_frames)
        meta = {
            "video": r.video,
            "num_frames": r.num_frames,
            "frame_indices": idx,
            "annotated_frames": list(r.annotated_frames),
            "fps": r.fps,
        }
        units.append(Unit(key=r.video_id, samples={r.video_id: {**meta, "index_file": str(index_file)}}, meta=meta))
    shape = video_frame_shape(adapter, vp.level)
    max_t = max((len(u.meta["frame_indices"]) for u in units), default=0)
    per_unit = max_t * (math.prod(shape) * 2 + 8)
    content = {k: v for k, v in to_dict(vp).items() if k in ("level", "frame_stride", "max_frames")}
    header = cache_header(
        "video",
        teacher_id=teacher_id,
        image_size=adapter.image_size,
        config_hash=config_hash(
            teacher_id=teacher_id, params=content, index_file=index_file, extra={"image_size": adapter.image_size}
        ),
        sample_tensors=["frame_indices", "frames_fpn"],
        frame_shape=list(shape),
    )
    compute = lambda us: compute_video_units(adapter, us, index_file=index_file, params=params)  # noqa: E731
    stats = job.write(units, compute, header, (vp.clips_per_shard, per_unit), "cache_teacher_video")
    stats.update(
        units=len(units),
        samples=len(units),
        frames=sum(len(u.meta["frame_indices"]) for u in units),
        bytes_per_frame=math.prod(shape) * 2,
    )
    return stats
