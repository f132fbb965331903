"""SA-Co gold/silver: COCO-style json whose ``images`` are image-noun-phrase pairs.

As released (facebookresearch/sam3, scripts/eval/gold/README.md)::

    {"images": [{"id", "file_name", "text_input", "width", "height", "queried_category",
                 "is_instance_exhaustive", "is_pixel_exhaustive"}, ...],
     "annotations": [{"id", "image_id", "bbox": [x, y, w, h] normalised by the image size, "area" (normalised),
                      "segmentation": {"size": [h, w], "counts": str}, "category_id": 1, "iscrowd": 0}, ...],
     "categories": [{"supercategory": "object", "id": 1, "name": "object"}], "info": {...}, "licenses": []}

A pair with no annotation is a negative. Only ``is_instance_exhaustive`` pairs are kept (as SAM 3's own
evaluator does); the others are recorded skips.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from sam3_edge.data.errors import DataError
from sam3_edge.data.io import image_size, read_annotation_json, read_image, write_compact_json
from sam3_edge.data.records import ConceptPair, Instance
from sam3_edge.data.rle import rle_area, validated_rle

PAIR_ID_STRIDE = 1_000_000_000  # pair_id = source index * stride + SA-Co id, unique across the sources of a split


def read_saco(
    json_path: str | Path,
    images_dir: str | Path,
    *,
    root: str | Path,
    max_pixels: int,
    source_index: int = 0,
    decode_images: bool = True,
) -> tuple[list[ConceptPair], list[DataError]]:
    """Validate an SA-Co json and its images; returns the usable pairs and one error per skipped pair/image.

    A malformed json (missing, empty, not json, wrong schema) raises :class:`DataError`; a bad image, a pair
    whose annotation is malformed or sized differently from the pair's image, or a non-exhaustive pair is
    skipped (the pair only: it cannot be kept without one of its instances).
    """
    json_path = Path(json_path)
    data = read_annotation_json(json_path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DataError(json_path, "bad_schema", "expected a COCO-style dict with an 'images' list")
    anns = data.get("annotations", [])
    if not isinstance(anns, list):
        raise DataError(json_path, "bad_schema", "'annotations' is not a list")
    by_pair: dict[int, list[dict]] = defaultdict(list)
    for ann in anns:
        if isinstance(ann, dict) and isinstance(ann.get("image_id"), int):
            by_pair[ann["image_id"]].append(ann)
    errors: list[DataError] = []
    pairs: list[ConceptPair] = []
    checked_images: dict[str, DataError | tuple[int, int]] = {}
    for entry in data["images"]:
        try:
            pair = _read_pair(
                entry,
                by_pair,
                json_path,
                Path(images_dir),
                root,
                max_pixels,
                decode_images,
                checked_images,
                source_index,
            )
        except DataError as err:
            errors.append(err)
            continue
        pairs.append(pair)
    orphans = set(by_pair) - {e.get("id") for e in data["images"] if isinstance(e, dict)}
    for pair_id in sorted(orphans):
        errors.append(DataError(f"{json_path} image_id {pair_id}", "orphan_annotation", "no such image-NP pair"))
    return pairs, errors


def _read_pair(entry, by_pair, json_path, images_dir, root, max_pixels, decode_images, checked_images, source_index):
    where = f"{json_path} pair {entry.get('id') if isinstance(entry, dict) else '?'}"
    if not isinstance(entry, dict):
        raise DataError(where, "bad_schema", "images entry is not a dict")
    for key in ("id", "file_name", "text_input", "width", "height"):
        if key not in entry:
            raise DataError(where, "bad_schema", f"images entry without {key!r}")
    width, height, text = entry["width"], entry["height"], entry["text_input"]
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        raise DataError(where, "bad_schema", f"width/height {width!r}/{height!r} are not positive ints")
    if not isinstance(text, str) or not text.strip():
        raise DataError(where, "bad_schema", "empty text_input")
    if not entry.get("is_instance_exhaustive", 1):
        raise DataError(where, "not_instance_exhaustive", "pair is not exhaustively annotated")
    image_path = images_dir / str(entry["file_name"])
    key = str(image_path)
    if key not in checked_images:
        try:
            if decode_images:
                h, w = read_image(image_path, max_pixels=max_pixels).shape[:2]
                checked_images[key] = (w, h)
            else:
                checked_images[key] = image_size(image_path, max_pixels=max_pixels)
        except DataError as err:
            checked_images[key] = err
    status = checked_images[key]
    if isinstance(status, DataError):
        raise DataError(status.path, status.reason, f"{status.detail} (used by {where})")
    if status != (width, height):
        raise DataError(where, "size_mismatch", f"pair says {width}x{height}, image is {status[0]}x{status[1]}")
    instances = []
    for ann in by_pair.get(entry["id"], []):
        ann_where = f"{where} annotation {ann.get('id')}"
        rle = validated_rle(ann.get("segmentation"), size=(height, width), path=ann_where)
        bbox = ann.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
            raise DataError(ann_where, "bad_schema", f"bbox {bbox!r} is not [x, y, w, h]")
        if not all(-1e-3 <= v <= 1 + 1e-3 for v in bbox):
            raise DataError(ann_where, "bad_schema", f"bbox {bbox} is not normalised to [0, 1]")
        x, y, w, h = bbox
        box = (x * width, y * height, (x + w) * width, (y + h) * height)
        instances.append(Instance(rle=rle, box=box, area=float(rle_area(rle))))
    return ConceptPair(
        pair_id=source_index * PAIR_ID_STRIDE + int(entry["id"]),
        image=image_path.resolve().relative_to(Path(root).resolve()).as_posix(),
        width=width,
        height=height,
        text=text.strip(),
        instances=tuple(instances),
        source="saco",
    )


def write_saco_json(json_path: str | Path, pairs: list[dict], *, description: str) -> None:
    """Write SA-Co json from ``pairs`` = [{id, file_name, text, width, height, rles: [rle], boxes: [xyxy px]}]."""
    images, annotations = [], []
    for pair in pairs:
        width, height = pair["width"], pair["height"]
        images.append(
            {
                "id": pair["id"],
                "file_name": pair["file_name"],
                "text_input": pair["text"],
                "width": width,
                "height": height,
                "queried_category": str(pair.get("category", 0)),
                "is_instance_exhaustive": 1,
                "is_pixel_exhaustive": 1,
            }
        )
        for rle, (x0, y0, x1, y1) in zip(pair["rles"], pair["boxes"], strict=True):
            annotations.append(
                {
                    "area": rle_area(rle) / float(width * height),
                    "id": len(annotations) + 1,
                    "image_id": pair["id"],
                    "source": "synthetic",
                    "bbox": [x0 / width, y0 / height, (x1 - x0) / width, (y1 - y0) / height],
                    "segmentation": rle,
                    "category_id": 1,
                    "iscrowd": 0,
                }
            )
    data = {
        "info": {"version": "v1", "description": description},
        "images": images,
        "annotations": annotations,
        "categories": [{"supercategory": "object", "id": 1, "name": "object"}],
        "licenses": [],
    }
    write_compact_json(json_path, data)
