"""SA-V: ``sav_<id>.mp4`` (24 fps) + ``sav_<id>_manual.json`` with masklets annotated on every 4th frame.

Manual annotation json (facebookresearch/sam2, sav_dataset/README.md)::

    {"video_id": str, "video_duration": float, "video_frame_count": float, "video_height": float,
     "video_width": float, "video_resolution": float, "video_environment": str, "video_split": str,
     "masklet": [[rle per object] per annotated frame], "masklet_id": [int], "masklet_size_rel": [float],
     "masklet_size_abs": [float], "masklet_size_bucket": [str], "masklet_visibility_changes": [int],
     "masklet_first_appeared_frame": [float], "masklet_frame_count": [int], "masklet_edited_frame_count": [int],
     "masklet_type": [str], "masklet_stability_score": [null], "masklet_num": int}

Synthetic clips add ``masklet_noun_phrase`` ([str], one per masklet); the real release has no such field.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from sam3_edge.data.errors import DataError
from sam3_edge.data.io import read_annotation_json, write_compact_json
from sam3_edge.data.records import Masklet, VideoRecord
from sam3_edge.data.rle import encode_mask, validated_rle
from sam3_edge.data.video import probe_video

ANNOTATION_STRIDE = 4


def iter_sav_items(folder: str | Path) -> Iterator[tuple[Path, Path]]:
    """(manual json, mp4) pairs of a folder, sorted; an mp4 without json (or the reverse) fails in read_sav."""
    folder = Path(folder)
    stems = {p.stem for p in folder.glob("sav_*.mp4")}
    stems |= {p.name.removesuffix("_manual.json") for p in folder.glob("sav_*_manual.json")}
    for stem in sorted(stems):
        yield folder / f"{stem}_manual.json", folder / f"{stem}.mp4"


def _positive_int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 or value != int(value):
        return None
    return int(value)


def read_sav(
    json_path: str | Path,
    video_path: str | Path,
    *,
    root: str | Path,
    stride: int = ANNOTATION_STRIDE,
    decode: bool = True,
) -> VideoRecord:
    """Validate one SA-V video + manual json and return its :class:`VideoRecord` (paths relative to ``root``).

    Raises :class:`DataError` for a bad json, an mp4 that does not decode, a video whose size differs from
    the json, masklets whose number of annotated frames is not ``ceil(frames / stride)`` of the decoded video,
    or a malformed RLE.
    """
    json_path, video_path = Path(json_path), Path(video_path)
    data = read_annotation_json(json_path)
    if not isinstance(data, dict):
        raise DataError(json_path, "bad_schema", "expected a json object")
    for key in ("video_id", "video_height", "video_width", "masklet", "masklet_id"):
        if key not in data:
            raise DataError(json_path, "bad_schema", f"missing {key!r}")
    height, width = _positive_int(data["video_height"]), _positive_int(data["video_width"])
    if height is None or width is None:
        raise DataError(json_path, "bad_schema", "video_height/video_width are not positive integers")
    masklet, masklet_ids = data["masklet"], data["masklet_id"]
    if not isinstance(masklet, list) or not all(isinstance(frame, list) for frame in masklet):
        raise DataError(json_path, "bad_schema", "masklet is not a list (frames) of lists (objects)")
    if not isinstance(masklet_ids, list) or not all(isinstance(i, int) for i in masklet_ids):
        raise DataError(json_path, "bad_schema", "masklet_id is not a list of ints")
    info = probe_video(video_path, decode=decode)
    if (info.width, info.height) != (width, height):
        raise DataError(video_path, "size_mismatch", f"json says {width}x{height}, video is {info.width}x{info.height}")
    expected = math.ceil(info.num_frames / stride)
    if len(masklet) != expected:
        raise DataError(
            json_path,
            "masklet_frame_mismatch",
            f"{len(masklet)} annotated frames, but the video has {info.num_frames} frames "
            f"(every {stride}th annotated = {expected})",
        )
    frame_count = data.get("video_frame_count")
    if frame_count is not None and _positive_int(frame_count) != info.num_frames:
        raise DataError(
            json_path, "masklet_frame_mismatch", f"video_frame_count {frame_count} != {info.num_frames} decoded"
        )
    texts = data.get("masklet_noun_phrase")
    if texts is not None and (not isinstance(texts, list) or len(texts) != len(masklet_ids)):
        raise DataError(json_path, "bad_schema", "masklet_noun_phrase must hold one phrase per masklet")
    annotated = tuple(range(0, info.num_frames, stride))
    per_object: list[dict[int, dict]] = [{} for _ in masklet_ids]
    for t, objects in zip(annotated, masklet, strict=True):
        if len(objects) != len(masklet_ids):
            raise DataError(json_path, "bad_schema", f"frame {t} has {len(objects)} masks for {len(masklet_ids)} ids")
        for k, rle in enumerate(objects):
            per_object[k][t] = validated_rle(rle, size=(height, width), path=f"{json_path} frame {t} object {k}")
    masklets = tuple(
        Masklet(masklet_id=mid, frames=frames, text=texts[k] if texts else None)
        for k, (mid, frames) in enumerate(zip(masklet_ids, per_object, strict=True))
    )
    return VideoRecord(
        video_id=str(data["video_id"]),
        video=video_path.resolve().relative_to(Path(root).resolve()).as_posix(),
        width=width,
        height=height,
        num_frames=info.num_frames,
        fps=info.fps,
        annotated_frames=annotated,
        masklets=masklets,
    )


def write_sav_json(
    json_path: str | Path,
    *,
    video_id: str,
    masks: np.ndarray,
    masklet_ids: list[int],
    texts: list[str] | None,
    num_frames: int,
    fps: int,
    stride: int = ANNOTATION_STRIDE,
) -> None:
    """Write an SA-V manual json from visible masks ``bool [A, K, h, w]`` (A annotated frames, K objects)."""
    num_annotated, num_objects, height, width = masks.shape
    visible = masks.reshape(num_annotated, num_objects, -1).any(-1)  # [A, K]
    areas = masks.reshape(num_annotated, num_objects, -1).sum(-1).astype(float)  # [A, K]
    mean_area = [float(areas[visible[:, k], k].mean()) if visible[:, k].any() else 0.0 for k in range(num_objects)]
    data = {
        "video_id": video_id,
        "video_duration": num_frames / fps,
        "video_frame_count": float(num_frames),
        "video_height": float(height),
        "video_width": float(width),
        "video_resolution": float(height * width),
        "video_environment": "Indoor",
        "video_split": "train",
        "masklet": [[encode_mask(masks[a, k]) for k in range(num_objects)] for a in range(num_annotated)],
        "masklet_id": list(masklet_ids),
        "masklet_size_rel": [a / (height * width) for a in mean_area],
        "masklet_size_abs": mean_area,
        "masklet_size_bucket": ["small" if a < 32**2 else "medium" if a < 96**2 else "large" for a in mean_area],
        "masklet_visibility_changes": [
            int(np.abs(np.diff(visible[:, k].astype(int))).sum()) for k in range(num_objects)
        ],
        "masklet_first_appeared_frame": [
            float(np.argmax(visible[:, k]) * stride) if visible[:, k].any() else 0.0 for k in range(num_objects)
        ],
        "masklet_frame_count": [num_annotated] * num_objects,
        "masklet_edited_frame_count": [0] * num_objects,
        "masklet_type": ["manual"] * num_objects,
        "masklet_stability_score": [None] * num_objects,
        "masklet_num": num_objects,
    }
    if texts is not None:
        data["masklet_noun_phrase"] = list(texts)
    write_compact_json(json_path, data)
