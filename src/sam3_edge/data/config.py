"""Params of the `data` stage (section ``data`` of params.yaml).

``source: synthetic`` renders scenes and clips in the public SA-1B / SA-V / SA-Co layouts (embedded profile);
``source: real`` indexes the real dataset folders named under ``real`` (real profile). Both go through the
same readers, validation and indexing code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sam3_edge.config import check

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 225),
    "yellow": (235, 215, 40),
    "purple": (150, 60, 200),
    "orange": (245, 140, 20),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross", "ring", "star")


@dataclass(frozen=True)
class SyntheticParams:
    """Sizes of the generated data; objects are drawn ``min/max_object_size`` px wide on ``image_size`` px."""

    num_train_images: int = 600
    num_val_images: int = 120
    num_distill_images: int = 0  # unlabeled split (SA-1B layout only) for the teacher's phrase-set cache; 0 = none
    image_size: int = 224
    num_train_videos: int = 8
    num_val_videos: int = 4
    video_frames: int = 24
    video_size: int = 224
    video_fps: int = 24
    annotation_stride: int = 4  # SA-V annotates every 4th frame of the 24 fps video
    colours: tuple[str, ...] = ("red", "green", "blue", "yellow", "purple")
    shapes: tuple[str, ...] = ("circle", "square", "triangle", "cross")
    small_size: tuple[int, int] = (18, 32)  # object side range (px) of the "small" size concept
    large_size: tuple[int, int] = (44, 70)  # object side range (px) of the "large" size concept
    concepts_per_image: tuple[int, int] = (2, 3)  # distinct (colour, shape) concepts per scene
    instances_per_concept: tuple[int, int] = (1, 3)
    min_visible_fraction: float = 0.5  # occlusion never hides more than half of an object
    negative_fraction: float = 0.35  # target share of negative image-NP pairs (>= 0.3 required)
    size_phrase_prob: float = 0.5  # chance to add a "small/large <colour> <shape>" phrase per concept
    objects_per_video: tuple[int, int] = (2, 4)
    jpeg_quality: int = 92

    def __post_init__(self) -> None:
        for name in ("num_train_images", "num_val_images", "image_size", "video_frames", "video_size", "video_fps"):
            check(getattr(self, name) > 0, name, "must be > 0")
        for name in ("num_train_videos", "num_val_videos", "num_distill_images"):
            check(getattr(self, name) >= 0, name, "must be >= 0")
        check(self.video_size % 2 == 0, "video_size", "must be even (h264 yuv420p)")
        check(self.annotation_stride > 0, "annotation_stride", "must be > 0")
        unknown_colours = sorted(set(self.colours) - set(COLOURS))
        check(not unknown_colours, "colours", f"unknown {unknown_colours} (known: {sorted(COLOURS)})")
        unknown_shapes = sorted(set(self.shapes) - set(SHAPES))
        check(not unknown_shapes, "shapes", f"unknown {unknown_shapes} (known: {list(SHAPES)})")
        check(len(set(self.colours)) * len(set(self.shapes)) >= 4, "colours", "need >= 4 colour x shape concepts")
        for name in ("small_size", "large_size", "concepts_per_image", "instances_per_concept", "objects_per_video"):
            lo, hi = getattr(self, name)
            check(0 < lo <= hi, name, f"must be 0 < low <= high, got {[lo, hi]}")
        check(self.small_size[1] < self.large_size[0], "small_size", "small and large size ranges must not overlap")
        check(self.large_size[1] * 2 <= self.image_size, "large_size", "objects must fit twice in the image")
        check(
            self.concepts_per_image[1] < len(self.colours) * len(self.shapes),
            "concepts_per_image",
            "must leave concepts absent from each image (negatives)",
        )
        check(0.0 < self.min_visible_fraction <= 1.0, "min_visible_fraction", "must be in (0, 1]")
        check(0.3 <= self.negative_fraction < 1.0, "negative_fraction", "must be in [0.3, 1) (>= 30% negatives)")
        check(0.0 <= self.size_phrase_prob <= 1.0, "size_phrase_prob", "must be in [0, 1]")
        check(1 <= self.jpeg_quality <= 100, "jpeg_quality", "must be in [1, 100]")


@dataclass(frozen=True)
class SacoSource:
    """One SA-Co annotation json (gold/silver subset) and the folder its ``file_name`` entries are relative to."""

    annotations: str
    images: str


@dataclass(frozen=True)
class RealSplit:
    """Real dataset locations of one split: SA-1B folders or ``sa_XXXXXX.tar`` shards, SA-V folders, SA-Co."""

    sa1b: tuple[str, ...] = ()
    sav: tuple[str, ...] = ()
    saco: tuple[SacoSource, ...] = ()


@dataclass(frozen=True)
class RealParams:
    train: RealSplit = field(default_factory=RealSplit)
    val: RealSplit = field(default_factory=RealSplit)
    distill: RealSplit = field(default_factory=RealSplit)  # unlabeled images (SA-1B) for the phrase-set cache
    max_images_per_source: int = 0  # 0 = all; caps each folder/shard (for quick trial runs)
    max_videos_per_source: int = 0


@dataclass(frozen=True)
class DataParams:
    source: Literal["synthetic", "real"] = "synthetic"
    seed: int = 0
    max_image_pixels: int = 100_000_000  # decompression-bomb guard for every image read
    check_video_decode: bool = True  # decode every frame of every video during validation
    synthetic: SyntheticParams = field(default_factory=SyntheticParams)
    real: RealParams = field(default_factory=RealParams)

    def __post_init__(self) -> None:
        check(self.max_image_pixels > 0, "max_image_pixels", "must be > 0")
        check(self.real.max_images_per_source >= 0, "real.max_images_per_source", "must be >= 0")
        check(self.real.max_videos_per_source >= 0, "real.max_videos_per_source", "must be >= 0")
