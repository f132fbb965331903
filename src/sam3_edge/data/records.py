"""Normalised records that the `data` stage writes to ``data/index/*.json`` and every later stage reads.

The raw datasets keep their public formats (SA-1B, SA-V, SA-Co); the index flattens them into three record
kinds so that downstream code never parses a raw format again:

* :class:`ConceptPair` (from SA-Co): one image and one noun phrase with all its instances, or none (negative).
* :class:`ImageRecord` (from SA-1B): one image with class-agnostic instance masks (for point/box prompts).
* :class:`VideoRecord` (from SA-V): one clip with masklets annotated on every ``stride``-th frame.

Masks stay COCO RLE (``{"size": [h, w], "counts": str}``, decoded through pycocotools); boxes are
``[x0, y0, x1, y1]`` in pixels of the original image. Paths are relative to the index file's ``root``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Rle = dict[str, Any]  # {"size": [h, w], "counts": str}


@dataclass(frozen=True)
class Instance:
    rle: Rle
    box: tuple[float, float, float, float]  # xyxy pixels
    area: float
    point: tuple[float, float] | None = None  # a point inside the mask (SA-1B point_coords), pixels


@dataclass(frozen=True)
class ConceptPair:
    pair_id: int
    image: str  # path relative to the index root
    width: int
    height: int
    text: str  # noun phrase
    instances: tuple[Instance, ...] = ()
    source: str = "saco"

    @property
    def negative(self) -> bool:
        return len(self.instances) == 0


@dataclass(frozen=True)
class ImageRecord:
    image_id: int
    image: str
    width: int
    height: int
    instances: tuple[Instance, ...] = ()


@dataclass(frozen=True)
class Masklet:
    masklet_id: int
    frames: dict[int, Rle] = field(default_factory=dict)  # annotated frame index -> RLE (empty counts = absent)
    text: str | None = None  # noun phrase of the object when known (synthetic clips know it)


@dataclass(frozen=True)
class VideoRecord:
    video_id: str
    video: str
    width: int
    height: int
    num_frames: int
    fps: float
    annotated_frames: tuple[int, ...]
    masklets: tuple[Masklet, ...] = ()
