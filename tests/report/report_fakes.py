"""Fake scenes, a data index and fake predictors for the report tests (coloured squares segmented by colour)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from sam3_edge.types import Prediction, Prompt

COLOURS = {"red": (230, 30, 30), "blue": (30, 30, 230), "green": (30, 200, 30)}
SIZE = 48


def scene(rects: dict[str, list[tuple[int, int, int, int]]]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Non-overlapping coloured rectangles -> (image uint8 [S, S, 3], colour -> GT masks bool [G, S, S])."""
    image = np.full((SIZE, SIZE, 3), 128, np.uint8)
    masks = {}
    for colour, boxes in rects.items():
        ms = []
        for x0, y0, x1, y1 in boxes:
            m = np.zeros((SIZE, SIZE), bool)
            m[y0:y1, x0:x1] = True
            image[m] = COLOURS[colour]
            ms.append(m)
        masks[colour] = np.stack(ms)
    return image, masks


SCENES = [
    {"red": [(4, 4, 16, 16), (28, 6, 40, 18)], "blue": [(6, 28, 20, 42)]},
    {"green": [(20, 20, 36, 36)], "blue": [(2, 2, 10, 10)]},
    {"red": [(10, 24, 30, 44)]},
]


def write_index(root: Path) -> Path:
    """The fake scenes as an SA-Co concepts index (PNG images, every colour asked on every image: 4 negatives)."""
    from PIL import Image

    from sam3_edge.data.rle import encode_mask
    from sam3_edge.utils import write_json

    (root / "img").mkdir(parents=True, exist_ok=True)
    pairs = []
    for i, rects in enumerate(SCENES):
        image, masks = scene(rects)
        name = f"img/scene{i}.png"
        Image.fromarray(image).save(root / name)
        for colour in COLOURS:
            inst = [{"rle": encode_mask(m), "box": _box_px(m), "area": float(m.sum())} for m in masks.get(colour, [])]
            pairs.append(
                {
                    "pair_id": len(pairs),
                    "image": name,
                    "width": SIZE,
                    "height": SIZE,
                    "text": f"{colour} square",
                    "instances": inst,
                }
            )
    path = root / "concepts_val.json"
    write_json(path, {"root": ".", "kind": "concepts", "records": pairs})
    return path


def _box_px(m: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(m)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def _box_norm(m: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(m)
    h, w = m.shape
    return [xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h] if len(xs) else [0.0] * 4


class ColourOracle:
    """Perfect on the fake scenes: the phrase's colour split into connected components; point/box pick one."""

    name = "oracle"

    def __init__(self, image_size: int = SIZE) -> None:
        self.image_size = image_size

    def _components(self, image: torch.Tensor, colour: str | None) -> list[np.ndarray]:
        rgb = (image.permute(1, 2, 0).numpy() * 255).round().astype(int)
        fg = (np.abs(rgb - 128).max(-1) > 60) if colour is None else (np.abs(rgb - COLOURS[colour]).max(-1) < 60)
        labels, n = ndimage.label(fg)
        return [labels == k for k in range(1, n + 1)]

    def _one(self, image: torch.Tensor, prompt: Prompt) -> tuple[list[np.ndarray], list[float]]:
        colour = prompt.text.split()[0] if prompt.text else None
        comps = self._components(image, colour)
        if prompt.kind == "text" or not comps:
            return comps, [0.95] * len(comps)
        if prompt.kind == "point":
            x, y, _ = prompt.points[0]
            key = [not c[min(int(y), self.image_size - 1), min(int(x), self.image_size - 1)] for c in comps]
        else:
            x0, y0, x1, y1 = prompt.box
            box = np.zeros_like(comps[0])
            box[int(y0) : int(np.ceil(y1)), int(x0) : int(np.ceil(x1))] = True
            key = [-(c & box).sum() / (c | box).sum() for c in comps]
        order = np.argsort(key, kind="stable")
        return [comps[i] for i in order], [0.9] + [0.2] * (len(comps) - 1)

    def predict(self, images: torch.Tensor, prompts: list[Prompt]) -> Prediction:
        assert images.shape[-1] == self.image_size, images.shape
        outs = [self._one(img, pr) for img, pr in zip(images, prompts, strict=True)]
        q = max(1, max(len(m) for m, _ in outs))
        s = self.image_size
        logits = torch.full((len(outs), q, s, s), -10.0)
        boxes = torch.zeros(len(outs), q, 4)
        scores = torch.zeros(len(outs), q)
        for b, (masks, sc) in enumerate(outs):
            if masks:
                logits[b, : len(masks)] = torch.from_numpy(np.stack(masks)).float() * 20 - 10
                boxes[b, : len(masks)] = torch.tensor([_box_norm(m) for m in masks])
                scores[b, : len(masks)] = torch.tensor(sc)
        presence = (scores.max(1).values >= 0.5).float()
        return Prediction(mask_logits=logits, boxes=boxes, scores=scores, presence=presence)


class PromptIgnoring(ColourOracle):
    """Every non-background pixel as one instance whatever the prompt: wrong on negatives and on point/box."""

    name = "ignoring"

    def _one(self, image, prompt):
        fg = self._components(image, None)
        return ([np.any(np.stack(fg), 0)], [0.9]) if fg else ([], [])
