"""What later stages read: index loaders, raw readers and the torch dataset of image-noun-phrase pairs.

``data/index/<kind>_<split>.json`` = ``{"root": <folder, relative to the index file>, "records": [...]}``;
record paths are relative to that root (:func:`resolve_path`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from sam3_edge.data.errors import DataError
from sam3_edge.data.io import DEFAULT_MAX_PIXELS
from sam3_edge.data.io import read_image as _read_image
from sam3_edge.data.records import ConceptPair, ImageRecord, Instance, Masklet, VideoRecord
from sam3_edge.data.rle import decode_rle
from sam3_edge.data.video import read_video_frames
from sam3_edge.utils import read_json

__all__ = [
    "ConceptDataset",
    "collate_concepts",
    "decode_rle",
    "load_concept_pairs",
    "load_image_records",
    "load_video_records",
    "read_image",
    "read_video_frames",
    "resize_image",
    "resize_masks",
    "resolve_path",
]


def read_image(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """``np.uint8 [H, W, 3]`` RGB; a bad or too-large image raises :class:`DataError` naming the file."""
    return _read_image(path, max_pixels=max_pixels)


def _index(index_file: str | Path, kind: str) -> tuple[Path, list[dict]]:
    data = read_json(index_file)
    if not isinstance(data, dict) or "root" not in data or not isinstance(data.get("records"), list):
        raise ValueError(f"{index_file}: not a data index (expected {{'root', 'records'}})")
    if data.get("kind", kind) != kind:
        raise ValueError(f"{index_file}: holds {data['kind']!r} records, not {kind!r}")
    return Path(index_file), data["records"]


def _index_root(index_file: Path) -> str:
    """The index's ``root``, cached per file version (path, mtime, size) so datasets do not re-parse it."""
    resolved = index_file.resolve()
    try:
        stat = resolved.stat()
    except FileNotFoundError:
        raise ValueError(f"{index_file}: file not found") from None
    key = (str(resolved), stat.st_mtime_ns, stat.st_size)
    if key not in _ROOTS:
        data = read_json(resolved)
        if not isinstance(data, dict) or not isinstance(data.get("root"), str):
            raise ValueError(f"{index_file}: not a data index (no 'root')")
        _ROOTS[key] = data["root"]
    return _ROOTS[key]


_ROOTS: dict[tuple[str, int, int], str] = {}


def resolve_path(index_file: str | Path, relative: str) -> Path:
    """Absolute path of a record path (``record.image`` / ``record.video``) of ``index_file``."""
    index_file = Path(index_file)
    return (index_file.resolve().parent / _index_root(index_file) / relative).resolve()


def _instance(data: dict) -> Instance:
    point = data.get("point")
    return Instance(
        rle=data["rle"],
        box=tuple(data["box"]),  # type: ignore[arg-type]
        area=float(data["area"]),
        point=tuple(point) if point is not None else None,  # type: ignore[arg-type]
    )


def load_concept_pairs(index_file: str | Path) -> list[ConceptPair]:
    path, records = _index(index_file, "concepts")
    return [
        ConceptPair(
            pair_id=r["pair_id"],
            image=r["image"],
            width=r["width"],
            height=r["height"],
            text=r["text"],
            instances=tuple(_instance(i) for i in r["instances"]),
            source=r.get("source", "saco"),
        )
        for r in records
    ]


def load_image_records(index_file: str | Path) -> list[ImageRecord]:
    path, records = _index(index_file, "images")
    return [
        ImageRecord(
            image_id=r["image_id"],
            image=r["image"],
            width=r["width"],
            height=r["height"],
            instances=tuple(_instance(i) for i in r["instances"]),
        )
        for r in records
    ]


def load_video_records(index_file: str | Path) -> list[VideoRecord]:
    path, records = _index(index_file, "videos")
    return [
        VideoRecord(
            video_id=r["video_id"],
            video=r["video"],
            width=r["width"],
            height=r["height"],
            num_frames=r["num_frames"],
            fps=float(r["fps"]),
            annotated_frames=tuple(r["annotated_frames"]),
            masklets=tuple(
                Masklet(
                    masklet_id=m["masklet_id"],
                    frames={int(t): rle for t, rle in m["frames"].items()},
                    text=m.get("text"),
                )
                for m in r["masklets"]
            ),
        )
        for r in records
    ]


def resize_image(image: np.ndarray, size: int) -> torch.Tensor:
    """``uint8 [H, W, 3]`` -> ``float32 [3, S, S]`` in [0, 1] (bilinear, antialiased; aspect not kept, as SAM 3)."""
    x = torch.tensor(image).permute(2, 0, 1)[None].float() / 255.0  # [1, 3, H, W]
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x[0].clamp_(0.0, 1.0)


def resize_masks(masks: np.ndarray, size: int) -> torch.Tensor:
    """``bool [N, H, W]`` -> ``bool [N, M, M]`` by area averaging and a 0.5 threshold."""
    if masks.shape[0] == 0:
        return torch.zeros((0, size, size), dtype=torch.bool)
    m = torch.from_numpy(np.ascontiguousarray(masks)).float()[:, None]  # [N, 1, H, W]
    if m.shape[-2:] != (size, size):
        m = F.interpolate(m, size=(size, size), mode="area" if m.shape[-1] >= size else "nearest")
    return m[:, 0] >= 0.5


class ConceptDataset(Dataset):
    """Image-noun-phrase pairs of a concepts index, resized for a model.

    Item: ``image`` float32 [3, S, S] in [0, 1]; ``text`` str; ``masks`` bool [N, M, M] (N instances, may be 0);
    ``boxes`` float32 [N, 4] xyxy normalised to [0, 1]; ``negative`` bool; ``pair_id`` int; ``image_key`` str
    (the record's image path: pairs of one image share it); ``index`` int (position in the index).
    """

    def __init__(
        self, index_file: str | Path, *, image_size: int, mask_size: int, max_pixels: int = DEFAULT_MAX_PIXELS
    ) -> None:
        self.index_file = Path(index_file)
        self.pairs = load_concept_pairs(self.index_file)
        self.image_size, self.mask_size, self.max_pixels = image_size, mask_size, max_pixels

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        pair = self.pairs[index]
        path = resolve_path(self.index_file, pair.image)
        image = read_image(path, max_pixels=self.max_pixels)
        if image.shape[:2] != (pair.height, pair.width):
            raise DataError(
                path,
                "size_mismatch",
                f"index says {pair.width}x{pair.height}, image is {image.shape[1]}x{image.shape[0]}",
            )
        masks = np.stack([decode_rle(i.rle) for i in pair.instances]) if pair.instances else np.zeros((0, 1, 1), bool)
        scale = np.array([pair.width, pair.height, pair.width, pair.height], dtype=np.float32)
        boxes = np.array([i.box for i in pair.instances], dtype=np.float32).reshape(-1, 4) / scale
        return {
            "image": resize_image(image, self.image_size),
            "text": pair.text,
            "masks": resize_masks(masks, self.mask_size),
            "boxes": torch.from_numpy(boxes.clip(0.0, 1.0)),
            "negative": pair.negative,
            "pair_id": pair.pair_id,
            "image_key": pair.image,
            "index": index,
        }


def collate_concepts(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch ConceptDataset items: ``image`` stacked [B, 3, S, S]; per-pair ``masks``/``boxes`` stay lists."""
    batch: dict[str, Any] = {"image": torch.stack([it["image"] for it in items])}
    for key in ("text", "masks", "boxes", "image_key"):
        batch[key] = [it[key] for it in items]
    batch["negative"] = torch.tensor([it["negative"] for it in items], dtype=torch.bool)
    batch["pair_id"] = torch.tensor([it["pair_id"] for it in items], dtype=torch.int64)
    batch["index"] = torch.tensor([it["index"] for it in items], dtype=torch.int64)
    return batch
