"""COCO run-length encoded masks through pycocotools, with the validation pycocotools does not do.

``pycocotools.mask.decode`` trusts its input: a compressed ``counts`` string whose runs do not add up to
``h * w`` silently decodes into garbage (or reads past its buffer). :func:`check_rle` parses the counts
(the same 6-bit, delta-coded format as pycocotools' ``rleFrString``) and rejects such masks before decoding.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from sam3_edge.data.errors import DataError

Rle = dict[str, Any]  # {"size": [h, w], "counts": str}


def rle_run_lengths(counts: str) -> list[int]:
    """Run lengths of a compressed COCO RLE string (alternating background/foreground, starting with 0s)."""
    runs: list[int] = []
    pos = 0
    while pos < len(counts):
        value, shift, more = 0, 0, True
        while more:
            if pos >= len(counts):
                raise ValueError("counts string ends inside a run")
            code = ord(counts[pos]) - 48
            if not 0 <= code < 64:
                raise ValueError(f"invalid character {counts[pos]!r} in counts")
            value |= (code & 0x1F) << (5 * shift)
            more = bool(code & 0x20)
            pos += 1
            shift += 1
            if not more and code & 0x10:
                value |= -1 << (5 * shift)
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return runs


def check_rle(rle: Any, *, size: tuple[int, int] | None = None) -> None:
    """Raise ``ValueError`` (reason in the message) unless ``rle`` is a well-formed COCO RLE of ``size`` (h, w)."""
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise ValueError("segmentation is not an RLE dict with 'size' and 'counts'")
    rle_size = rle["size"]
    if (
        not isinstance(rle_size, (list, tuple))
        or len(rle_size) != 2
        or not all(isinstance(v, int) and v > 0 for v in rle_size)
    ):
        raise ValueError(f"RLE size {rle_size!r} is not [h, w] of positive ints")
    if size is not None and tuple(rle_size) != tuple(size):
        raise ValueError(f"RLE size {list(rle_size)} differs from the image size {list(size)} (h, w)")
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii", errors="replace")
    if isinstance(counts, str):
        runs = rle_run_lengths(counts)
    elif isinstance(counts, list) and all(isinstance(v, int) for v in counts):
        runs = counts
    else:
        raise ValueError("RLE counts is neither a string nor a list of ints")
    if any(r < 0 for r in runs):
        raise ValueError("RLE has a negative run length")
    total = sum(runs)
    if total != rle_size[0] * rle_size[1]:
        raise ValueError(f"RLE counts add up to {total}, not h*w = {rle_size[0] * rle_size[1]}")


def _compressed(rle: Rle) -> Rle:
    counts = rle["counts"]
    if isinstance(counts, list):  # uncompressed COCO RLE
        return mask_utils.frPyObjects(rle, *rle["size"])
    return {"size": list(rle["size"]), "counts": counts.encode() if isinstance(counts, str) else counts}


def decode_rle(rle: Rle) -> np.ndarray:
    """Decode a validated COCO RLE into a bool mask ``[h, w]``; a malformed RLE raises ``ValueError``."""
    check_rle(rle)
    return mask_utils.decode(_compressed(rle)).astype(bool)


def encode_mask(mask: np.ndarray) -> Rle:
    """Bool/uint8 mask ``[h, w]`` -> COCO RLE with a str ``counts`` (json-ready, as in SA-1B / SA-V / SA-Co)."""
    if mask.ndim != 2:
        raise ValueError(f"expected a [h, w] mask, got shape {mask.shape}")
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": rle["counts"].decode("ascii")}


def rle_area(rle: Rle) -> int:
    return int(mask_utils.area(_compressed(rle)))


def rle_box_xyxy(rle: Rle) -> tuple[float, float, float, float]:
    """Tight box of the mask in pixels, ``(x0, y0, x1, y1)`` (pycocotools' xywh converted)."""
    x, y, w, h = (float(v) for v in mask_utils.toBbox(_compressed(rle)))
    return (x, y, x + w, y + h)


def validated_rle(rle: Any, *, size: tuple[int, int], path: str) -> Rle:
    """:func:`check_rle` raising a :class:`DataError` that names ``path`` (reason ``bad_rle`` / ``size_mismatch``)."""
    try:
        check_rle(rle, size=size)
    except ValueError as err:
        reason = "size_mismatch" if "differs from the image size" in str(err) else "bad_rle"
        raise DataError(path, reason, str(err)) from None
    return rle
