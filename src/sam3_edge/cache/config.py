"""Params of the `cache_teacher` and `cache_teacher_video` stages (section ``cache`` of params.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sam3_edge.config import check


@dataclass(frozen=True)
class CacheVideoParams:
    level: int = 1  # FPN level stored per frame as frames_fpn [T, C, h, w]
    frame_stride: int = 1  # keep every n-th frame (SA-V annotates every 4th frame at 24 fps)
    max_frames: int = 0  # 0 = every kept frame of the clip
    clips_per_shard: int = 4
    batch_size: int = 8  # frames per teacher forward

    def __post_init__(self) -> None:
        check(self.level >= 0, "level", "must be >= 0")
        for name in ("frame_stride", "clips_per_shard", "batch_size"):
            check(getattr(self, name) > 0, name, "must be > 0")
        check(self.max_frames >= 0, "max_frames", "must be >= 0")


@dataclass(frozen=True)
class CacheEstimateParams:
    """Real-profile cache size estimate for metrics/cache.json: facebook/sam3 tensor shapes (computed from the
    default ``Sam3Config``, no weights needed) x the real dataset sizes below. Keep the cache knobs equal to the
    real profile's ``cache`` section."""

    images: int = 11_000  # ~1% of SA-1B, as in EfficientSAM3's stage-1 distillation
    prompts_per_image: int = 2
    levels: tuple[int, ...] = (2,)  # facebook/sam3 FPN: 0 = 288 px, 1 = 144, 2 = 72, 3 = 36 (at 1008 input)
    mask_size: int = 144
    max_queries: int = 32
    videos: int = 1_000
    frames_per_video: int = 64  # kept frames per clip (SA-V: ~6 fps annotated frames)
    video_level: int = 3
    budget_gb: float = 12.0  # what the seed plan budgets for SA-V features


@dataclass(frozen=True)
class PhraseCacheParams:
    """The phrase-set cache (``cache_phrases``): teacher presence / class / boxes of many phrases per image."""

    phrases_per_image: int = 0  # 0 = every phrase of the vocabulary; else that many drawn per image
    mask_phrases: int = 2  # mask logits kept for the phrases the teacher finds most present
    images_per_shard: int = 64
    batch_size: int = 4  # images per teacher forward (x phrases prompts)
    max_images: int = 0  # 0 = every image of the split
    seed: int = 0
    disk_margin: float = 1.2

    def __post_init__(self) -> None:
        for name in ("images_per_shard", "batch_size"):
            check(getattr(self, name) > 0, name, "must be > 0")
        for name in ("phrases_per_image", "mask_phrases", "max_images"):
            check(getattr(self, name) >= 0, name, "must be >= 0")
        check(self.disk_margin >= 1.0, "disk_margin", "must be >= 1")


@dataclass(frozen=True)
class CacheParams:
    prompts_per_image: int = 2  # K samples per image; they share the image's FPN tensors
    prompt_mix: dict[str, float] = field(default_factory=lambda: {"text": 0.6, "point": 0.2, "box": 0.2})
    levels: tuple[int, ...] = (0, 1)  # FPN levels stored as fpn_<i> (any level of the teacher's FPN)
    mask_size: int = 0  # 0 = the teacher's mask resolution; else mask logits are resized to this side
    max_queries: int = 0  # 0 = all queries; else the top-k queries by score, sorted
    images_per_shard: int = 32
    batch_size: int = 8  # images per teacher forward
    max_images: int = 0  # 0 = every train image
    seed: int = 0
    disk_margin: float = 1.2  # required free space = estimate x margin
    video: CacheVideoParams = field(default_factory=CacheVideoParams)
    phrases: PhraseCacheParams = field(default_factory=PhraseCacheParams)
    estimate: CacheEstimateParams = field(default_factory=CacheEstimateParams)

    def __post_init__(self) -> None:
        for name in ("prompts_per_image", "images_per_shard", "batch_size"):
            check(getattr(self, name) > 0, name, "must be > 0")
        for name in ("mask_size", "max_queries", "max_images"):
            check(getattr(self, name) >= 0, name, "must be >= 0")
        check(len(self.levels) > 0 and all(i >= 0 for i in self.levels), "levels", "need level indices >= 0")
        check(set(self.prompt_mix) <= {"text", "point", "box"}, "prompt_mix", "keys must be text, point, box")
        check(
            all(v >= 0 for v in self.prompt_mix.values()) and sum(self.prompt_mix.values()) > 0,
            "prompt_mix",
            "weights must be >= 0 with a positive sum",
        )
        check(
            abs(sum(self.prompt_mix.values()) - 1.0) <= 1e-6,
            "prompt_mix",
            f"shares must sum to 1, got {sum(self.prompt_mix.values()):g}",
        )
        check(self.disk_margin >= 1.0, "disk_margin", "must be >= 1")
