"""Mask overlays as images: coloured translucent instances with outlines, the prompt drawn on top, PNG out."""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy.ndimage import binary_erosion

from sam3_edge.types import Prompt
from sam3_edge.utils import atomic_path

# Distinct, colour-blind-friendly-ish instance colours (Tableau 10).
PALETTE: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)
GT_COLOUR = (0, 229, 255)  # ground-truth outlines (cyan): distinct from the instance fills


def outline(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """bool [H, W] -> bool [H, W]: the mask's inner boundary ``width`` pixels thick."""
    if not mask.any():
        return mask
    return mask & ~binary_erosion(mask, iterations=width, border_value=0)


def overlay_masks(
    image: np.ndarray,
    masks: Sequence[np.ndarray] | np.ndarray,
    *,
    alpha: float = 0.45,
    fill: bool = True,
    colours: Sequence[tuple[int, int, int]] = PALETTE,
) -> np.ndarray:
    """image uint8 [H, W, 3], masks bool [N, H, W] -> uint8 [H, W, 3] with each mask tinted and outlined."""
    out = image.astype(np.float32).copy()
    width = max(1, round(max(image.shape[:2]) / 160))
    for i, mask in enumerate(masks):
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != image.shape[:2]:
            raise ValueError(f"mask {i} is {mask.shape}, image is {image.shape[:2]}")
        colour = np.asarray(colours[i % len(colours)], dtype=np.float32)
        if fill:
            out[mask] = (1 - alpha) * out[mask] + alpha * colour
        out[outline(mask, width)] = colour
    return out.clip(0, 255).astype(np.uint8)


def draw_prompt(image: np.ndarray, prompt: Prompt | None) -> np.ndarray:
    """Draw a point (ring: green = foreground, red = background) or box prompt, in original-image pixels."""
    if prompt is None or prompt.kind == "text":
        return image
    pil = Image.fromarray(image)
    draw = ImageDraw.Draw(pil)
    r = max(3, round(max(image.shape[:2]) / 45))
    for x, y, label in prompt.points:
        colour = (0, 230, 0) if label else (230, 0, 0)
        draw.ellipse((x - r, y - r, x + r, y + r), outline=(255, 255, 255), width=max(1, r // 2) + 1)
        draw.ellipse((x - r + 1, y - r + 1, x + r - 1, y + r - 1), outline=colour, width=max(1, r // 2))
    if prompt.box is not None:
        w = max(2, r // 2)
        draw.rectangle(prompt.box, outline=(255, 255, 255), width=w + 1)
        draw.rectangle(prompt.box, outline=(255, 215, 0), width=w)
    return np.asarray(pil)


def resize_max_side(image: np.ndarray, max_side: int) -> np.ndarray:
    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))


def encode_image(image: np.ndarray, *, max_side: int | None = None, fmt: str = "png", quality: int = 85) -> bytes:
    """uint8 [H, W, 3] -> PNG (lossless) or JPEG bytes, shrunk to ``max_side`` on the longer side when given."""
    if max_side is not None:
        image = resize_max_side(image, max_side)
    buf = io.BytesIO()
    if fmt == "png":
        Image.fromarray(image).save(buf, format="PNG", optimize=True)
    elif fmt == "jpeg":
        Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    else:
        raise ValueError(f"image format must be png or jpeg, got {fmt!r}")
    return buf.getvalue()


def data_uri(image: np.ndarray, *, max_side: int | None = None, fmt: str = "png") -> str:
    """uint8 [H, W, 3] -> ``data:image/<fmt>;base64,...`` (so an HTML page needs no side files)."""
    payload = base64.b64encode(encode_image(image, max_side=max_side, fmt=fmt)).decode("ascii")
    return f"data:image/{fmt};base64,{payload}"


def save_png(path: str | Path, image: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(encode_image(image))
        os.chmod(tmp, 0o644)
