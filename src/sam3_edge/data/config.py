"""Params of the `data` stage (section ``data`` of params.yaml). The data helper owns and extends this."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sam3_edge.config import check


@dataclass(frozen=True)
class SyntheticParams:
    num_train_images: int = 600
    num_val_images: int = 120
    image_size: int = 224
    num_train_videos: int = 8
    num_val_videos: int = 4
    video_frames: int = 24

    def __post_init__(self) -> None:
        for name in ("num_train_images", "num_val_images", "image_size", "video_frames"):
            check(getattr(self, name) > 0, name, "must be > 0")


@dataclass(frozen=True)
class DataParams:
    source: Literal["synthetic", "real"] = "synthetic"
    seed: int = 0
    synthetic: SyntheticParams = field(default_factory=SyntheticParams)
