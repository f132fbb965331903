"""File-level readers and writers for images and annotation json, raising :class:`DataError` on bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from sam3_edge.data.errors import DataError
from sam3_edge.utils import atomic_path

DEFAULT_MAX_PIXELS = 100_000_000


def image_size(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """(width, height) from the header only; raises :class:`DataError` for a non-image or a too-large image."""
    try:
        with Image.open(path) as im:
            width, height = im.size
    except FileNotFoundError:
        raise DataError(path, "missing_file", "image not found") from None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as err:
        raise DataError(path, "bad_image", f"not a readable image: {err}") from None
    if width * height > max_pixels:
        raise DataError(path, "image_too_large", f"{width}x{height} exceeds max_image_pixels={max_pixels}")
    return width, height


def read_image(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Fully decode an image to ``np.uint8 [H, W, 3]`` RGB.

    Truncated or corrupt files, non-images and images over ``max_pixels`` (decompression bombs: checked on
    the header, before decoding) raise :class:`DataError` naming the file.
    """
    image_size(path, max_pixels=max_pixels)
    try:
        with Image.open(path) as im:
            im.load()  # forces a full decode: a truncated JPEG fails here, not later in a worker
            rgb = im.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise DataError(path, "bad_image", f"image does not decode: {err}") from None
    return np.asarray(rgb, dtype=np.uint8)


def read_annotation_json(path: str | Path) -> Any:
    """Parse a dataset json; missing, empty, non-text or malformed files raise :class:`DataError`."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(path, "missing_json", "annotation file not found") from None
    except OSError as err:
        raise DataError(path, "missing_json", str(err)) from None
    if not raw.strip():
        raise DataError(path, "empty_json", "annotation file is empty")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(path, "not_json", f"not valid json: {err}") from None


def write_jpeg(path: str | Path, image: np.ndarray, *, quality: int = 92) -> None:
    """Atomically write ``np.uint8 [H, W, 3]`` as a baseline JPEG."""
    with atomic_path(path) as tmp:
        Image.fromarray(image, mode="RGB").save(tmp, format="JPEG", quality=quality)


def write_compact_json(path: str | Path, data: Any) -> None:
    """Atomically write json without indentation (dataset annotation files, as the public releases ship)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, separators=(",", ":")))
