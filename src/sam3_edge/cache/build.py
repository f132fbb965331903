"""Fill the teacher-feature caches: image prompts (``cache_teacher``) and per-frame video features.

Image cache: for each train image (a unit) K prompts are drawn deterministically from the image's concept
pairs (rng seeded by (seed, image number), so any rank draws the same ones). Per sample it stores ``encoder``
[L, D], ``mask_logits`` [Q, h, w], ``boxes`` [Q, 4] xyxy, ``class_logits`` [Q], ``presence_logit`` [1], ``text``
[D] (the prompt's pooled text embedding); per image
(shared by its K samples, stored once under the image key) ``fpn_<i>`` [C_i, h_i, w_i]. All fp16.
Video cache: per clip ``frames_fpn`` [T, C, h, w] fp16 and ``frame_indices`` [T] int64.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import Sam3Config

from sam3_edge.cache.config import CacheParams
from sam3_edge.cache.job import CacheJob, cache_header, image_loader
from sam3_edge.cache.store import Unit
from sam3_edge.config import params_hash, to_dict
from sam3_edge.data.groups import draw_prompt
from sam3_edge.teacher.adapter import TeacherAdapter
from sam3_edge.types import Prompt

SAMPLE_TENSORS = ("encoder", "mask_logits", "boxes", "class_logits", "presence_logit", "text")


def output_shapes(
    config: Sam3Config, *, levels: tuple[int, ...], image_size: int, mask_size: int = 0, max_queries: int = 0
) -> dict[str, dict[str, tuple[int, ...]]]:
    """Shapes of the cached tensors for a Sam3Model config, without running it: {"image": ..., "sample": ...}."""
    vision = config.vision_config
    grid = image_size // vision.backbone_config.patch_size
    scales = vision.scale_factors
    c = vision.fpn_hidden_size
    side = [int(grid * s) for s in scales]
    q = config.detr_decoder_config.num_queries
    q = min(q, max_queries) if max_queries else q
    m = mask_size or side[0]
    enc_side = side[len(scales) - 2]  # Sam3Model drops the last level; the next-to-last feeds the DETR encoder
    return {
        "image": {f"fpn_{i}": (c, side[i], side[i]) for i in levels},
        "sample": {
            "encoder": (enc_side * enc_side, config.detr_encoder_config.hidden_size),
            "mask_logits": (q, m, m),
            "boxes": (q, 4),
            "class_logits": (q,),
            "presence_logit": (1,),
            "text": (config.detr_encoder_config.hidden_size,),
        },
    }


def nbytes(shapes: dict[str, tuple[int, ...]], *, itemsize: int = 2) -> int:
    return sum(math.prod(s) * itemsize for s in shapes.values())


def config_hash(*, teacher_id: str, params: Any, index_file: str | Path, extra: dict | None = None) -> str:
    """What the cache content depends on: teacher identity, cache params, the exact index file content."""
    index_sha = hashlib.sha256(Path(index_file).read_bytes()).hexdigest()
    return params_hash(
        {"teacher_id": teacher_id, "params": to_dict(params), "index_sha256": index_sha, **(extra or {})}
    )


def image_units(
    pairs_by_image: dict[str, list], params: CacheParams, *, image_size: int, index_file: str
) -> list[Unit]:
    """One unit per image with K deterministic prompt samples (keys ``<image no>-<k>``, unit ``img<no>``)."""
    kinds = list(params.prompt_mix)
    probs = np.array([params.prompt_mix[k] for k in kinds], dtype=np.float64)
    probs /= probs.sum()
    units = []
    for n, (image, pairs) in enumerate(pairs_by_image.items()):
        rng = np.random.default_rng([params.seed, n])
        samples = {}
        picks = rng.choice(len(pairs), size=params.prompts_per_image, replace=len(pairs) < params.prompts_per_image)
        for k, j in enumerate(picks):
            kind = kinds[int(rng.choice(len(kinds), p=probs))]
            prompt, targets = draw_prompt(pairs[j], kind, rng, image_size=image_size)  # type: ignore[arg-type]
            samples[f"{n:06d}-{k}"] = {
                "pair_id": pairs[j].pair_id,
                "index_file": index_file,
                "image": image,
                "image_key": f"img{n:06d}",
                "prompt": prompt.to_json(),
                "targets": [int(t) for t in targets],
            }
        units.append(Unit(key=f"img{n:06d}", samples=samples, meta={"image": image}))
    return units


def _select_queries(out: dict[str, torch.Tensor], b: int, params: CacheParams) -> dict[str, torch.Tensor]:
    scores = out["class_logits"][b].sigmoid()
    keep = torch.argsort(scores, descending=True, stable=True)[: params.max_queries] if params.max_queries else None
    res = {}
    for name in ("mask_logits", "boxes", "class_logits"):
        t = out[name][b]
        res[name] = t[keep] if keep is not None else t
    if params.mask_size and res["mask_logits"].shape[-1] != params.mask_size:
        res["mask_logits"] = F.interpolate(
            res["mask_logits"][None].float(), size=(params.mask_size,) * 2, mode="bilinear", align_corners=False
        )[0]
    res["encoder"] = out["encoder"][b]
    res["presence_logit"] = out["presence_logit"][b].reshape(1)
    res["text"] = out["text"][b]
    return res


@torch.inference_mode()
def compute_image_units(
    adapter: TeacherAdapter,
    units: list[Unit],
    load_image,
    params: CacheParams,
) -> dict[str, torch.Tensor]:
    """Teacher outputs of ``units`` as fp16 tensors keyed ``<key>/<name>``. load_image(path) -> [3, S, S] float."""
    adapter.eval()
    tensors: dict[str, torch.Tensor] = {}
    for start in range(0, len(units), params.batch_size):
        chunk = units[start : start + params.batch_size]
        images = torch.stack([load_image(u.meta["image"]) for u in chunk])
        vision = adapter.encode_images(images)
        prompts, index, keys = [], [], []
        for i, u in enumerate(chunk):
            for key, meta in u.samples.items():
                prompts.append(Prompt.from_json(meta["prompt"]))
                index.append(i)
                keys.append(key)
            for level in params.levels:
                tensors[f"{u.key}/fpn_{level}"] = vision.fpn_hidden_states[level][i].half()
        out = adapter.forward_prompts(vision, prompts, side=float(images.shape[-1]), image_index=index)
        for b, key in enumerate(keys):
            for name, t in _select_queries(out, b, params).items():
                tensors[f"{key}/{name}"] = t.half()
    return tensors


def build_image_cache(
    adapter: TeacherAdapter, *, teacher_id: str, index_file: str | Path, params: CacheParams, job: CacheJob
) -> dict:
    """Cache teacher outputs for every image of ``index_file`` (or ``max_images``); returns stats and sizes."""
    from sam3_edge.data.datasets import load_concept_pairs

    bad = [lv for lv in params.levels if lv >= len(adapter.model.config.vision_config.scale_factors)]
    if bad:
        raise ValueError(
            f"cache.levels {bad}: the teacher has only "
            f"{len(adapter.model.config.vision_config.scale_factors)} FPN levels"
        )
    pairs = load_concept_pairs(index_file)
    by_image: dict[str, list] = {}
    for p in pairs:
        by_image.setdefault(p.image, []).append(p)
    if params.max_images:
        by_image = dict(list(by_image.items())[: params.max_images])
    units = image_units(by_image, params, image_size=adapter.image_size, index_file=str(index_file))
    shapes = output_shapes(
        adapter.model.config,
        levels=params.levels,
        image_size=adapter.image_size,
        mask_size=params.mask_size,
        max_queries=params.max_queries,
    )
    per_unit = nbytes(shapes["image"]) + params.prompts_per_image * nbytes(shapes["sample"])
    content = config_hash(
        teacher_id=teacher_id,
        params=_content_params(params),
        index_file=index_file,
        extra={"image_size": adapter.image_size, "sample_tensors": sorted(shapes["sample"])},
    )
    header = cache_header(
        "image",
        teacher_id=teacher_id,
        image_size=adapter.image_size,
        config_hash=content,
        image_tensors=sorted(shapes["image"]),
        sample_tensors=sorted(shapes["sample"]),
    )

    load_image = image_loader(index_file, adapter.image_size)
    compute = lambda us: compute_image_units(adapter, us, load_image, params)  # noqa: E731
    stats = job.write(units, compute, header, (params.images_per_shard, per_unit), "cache_teacher")
    stats.update(units=len(units), samples=sum(len(u.samples) for u in units), estimated_bytes_per_unit=per_unit)
    return stats


def _content_params(params: CacheParams) -> dict:
    """The cache params that change the cache content (not batch size, disk margin, video or estimate knobs)."""
    d = to_dict(params)
    for k in ("batch_size", "disk_margin", "video", "phrases", "estimate"):
        d.pop(k)
    return d


__all__ = [
    "SAMPLE_TENSORS",
    "build_image_cache",
    "compute_image_units",
    "config_hash",
    "image_units",
    "nbytes",
    "output_shapes",
]


def real_profile_estimate(est) -> dict[str, float]:
    """Cache size for facebook/sam3 (default Sam3Config, 1008 px) on the real profile's dataset sizes.

    est: :class:`~sam3_edge.cache.config.CacheEstimateParams`. Returns MB per image unit, GB for images and
    video, and whether the video part fits the seed plan's budget.
    """
    cfg = Sam3Config()
    size = cfg.vision_config.backbone_config.image_size
    shapes = output_shapes(
        cfg, levels=est.levels, image_size=size, mask_size=est.mask_size, max_queries=est.max_queries
    )
    per_image = nbytes(shapes["image"]) + est.prompts_per_image * nbytes(shapes["sample"])
    vision = cfg.vision_config
    side = int(size // vision.backbone_config.patch_size * vision.scale_factors[est.video_level])
    per_frame = vision.fpn_hidden_size * side * side * 2
    video_gb = est.videos * est.frames_per_video * per_frame / 1e9
    return {
        "image_size": size,
        "mb_per_image": per_image / 1e6,
        "images": est.images,
        "image_cache_gb": est.images * per_image / 1e9,
        "mb_per_frame": per_frame / 1e6,
        "video_frames": est.videos * est.frames_per_video,
        "video_cache_gb": video_gb,
        "video_budget_gb": est.budget_gb,
        "video_fits_budget": float(video_gb <= est.budget_gb),
        "video_frames_within_budget": int(est.budget_gb * 1e9 // per_frame),
    }
