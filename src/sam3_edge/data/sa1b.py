"""SA-1B: ``sa_<id>.jpg`` + ``sa_<id>.json`` pairs in a folder or in an official ``sa_XXXXXX.tar`` shard.

Annotation json (as released)::

    {"image": {"image_id": int, "width": int, "height": int, "file_name": "sa_<id>.jpg"},
     "annotations": [{"id": int, "segmentation": {"size": [h, w], "counts": str}, "bbox": [x, y, w, h],
                      "area": int, "predicted_iou": float, "point_coords": [[x, y]], "crop_box": [x, y, w, h],
                      "stability_score": float}, ...]}
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from sam3_edge.data.errors import DataError
from sam3_edge.data.io import image_size, read_annotation_json, read_image, write_compact_json
from sam3_edge.data.records import ImageRecord, Instance
from sam3_edge.data.rle import encode_mask, rle_area, rle_box_xyxy, validated_rle


def _number_list(value: object, length: int) -> bool:
    return (
        isinstance(value, list)
        and len(value) == length
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    )


def iter_sa1b_items(folder: str | Path) -> Iterator[tuple[Path, Path]]:
    """(json, jpg) pairs of a folder, sorted; a lone jpg or json is yielded too and fails in :func:`read_sa1b`."""
    folder = Path(folder)
    stems = sorted({p.stem for p in folder.glob("sa_*.jpg")} | {p.stem for p in folder.glob("sa_*.json")})
    for stem in stems:
        yield folder / f"{stem}.json", folder / f"{stem}.jpg"


def read_sa1b(json_path: str | Path, *, root: str | Path, max_pixels: int, decode_image: bool = True) -> ImageRecord:
    """Validate one SA-1B image + json and return its :class:`ImageRecord` (paths relative to ``root``).

    Raises :class:`DataError` for a missing/empty/non-json file, a missing or undecodable image, an image
    whose size differs from the json, or an annotation whose RLE is malformed or of another size.
    """
    json_path = Path(json_path)
    data = read_annotation_json(json_path)
    info = data.get("image") if isinstance(data, dict) else None
    anns = data.get("annotations") if isinstance(data, dict) else None
    if not isinstance(info, dict) or not isinstance(anns, list):
        raise DataError(json_path, "bad_schema", "expected {'image': {...}, 'annotations': [...]}")
    for key in ("image_id", "width", "height", "file_name"):
        if key not in info:
            raise DataError(json_path, "bad_schema", f"image.{key} missing")
    width, height = info["width"], info["height"]
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        raise DataError(json_path, "bad_schema", f"image width/height {width!r}/{height!r} are not positive ints")
    image_path = json_path.parent / str(info["file_name"])
    if decode_image:
        actual_h, actual_w = read_image(image_path, max_pixels=max_pixels).shape[:2]
    else:
        actual_w, actual_h = image_size(image_path, max_pixels=max_pixels)
    if (actual_w, actual_h) != (width, height):
        raise DataError(json_path, "size_mismatch", f"json says {width}x{height}, image is {actual_w}x{actual_h}")
    instances = []
    for i, ann in enumerate(anns):
        where = f"{json_path} annotation {i}"
        if not isinstance(ann, dict) or "segmentation" not in ann:
            raise DataError(where, "bad_schema", "annotation without segmentation")
        rle = validated_rle(ann["segmentation"], size=(height, width), path=where)
        if "bbox" in ann and not _number_list(ann["bbox"], 4):
            raise DataError(where, "bad_schema", f"bbox {ann['bbox']!r} is not [x, y, w, h]")
        x, y, w, h = ann["bbox"] if "bbox" in ann else _xywh(rle_box_xyxy(rle))
        point = None
        coords = ann.get("point_coords")
        if isinstance(coords, list) and coords and _number_list(coords[0], 2):
            point = (float(coords[0][0]), float(coords[0][1]))
        area = float(ann["area"]) if isinstance(ann.get("area"), (int, float)) else float(rle_area(rle))
        instances.append(
            Instance(rle=rle, box=(float(x), float(y), float(x + w), float(y + h)), area=area, point=point)
        )
    image_id = info["image_id"]
    if not isinstance(image_id, int):
        raise DataError(json_path, "bad_schema", f"image.image_id {image_id!r} is not an int")
    return ImageRecord(
        image_id=image_id,
        image=Path(image_path).resolve().relative_to(Path(root).resolve()).as_posix(),
        width=width,
        height=height,
        instances=tuple(instances),
    )


def _xywh(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    return (box[0], box[1], box[2] - box[0], box[3] - box[1])


def write_sa1b_json(
    json_path: str | Path, *, image_id: int, file_name: str, masks: list[np.ndarray], height: int, width: int
) -> None:
    """Write an SA-1B annotation json for visible-part masks (``bool [h, w]`` each), SA-1B field for field."""
    annotations = []
    for ann_id, mask in enumerate(masks):
        rle = encode_mask(mask)
        ys, xs = np.nonzero(mask)
        x0, y0, x1, y1 = rle_box_xyxy(rle)
        centre = int(np.argmin((xs - xs.mean()) ** 2 + (ys - ys.mean()) ** 2))  # a mask pixel near its centroid
        annotations.append(
            {
                "id": image_id * 1000 + ann_id,
                "segmentation": rle,
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "area": int(mask.sum()),
                "predicted_iou": 1.0,
                "point_coords": [[float(xs[centre]) + 0.5, float(ys[centre]) + 0.5]],
                "crop_box": [0.0, 0.0, float(width), float(height)],
                "stability_score": 1.0,
            }
        )
    data = {
        "image": {"image_id": image_id, "width": width, "height": height, "file_name": file_name},
        "annotations": annotations,
    }
    write_compact_json(json_path, data)
