"""Seeded synthetic scenes: coloured shapes of two sizes on a textured background, with occlusion.

Concepts are ``"<colour> <shape>"`` (all instances of that colour and shape) and ``"<size> <colour> <shape>"``
(only the small or only the large ones). Each scene holds a few concepts with 1-3 instances each; later
objects occlude earlier ones, and every mask is the *visible* part (never less than ``min_visible_fraction``
of the object). Negatives are phrases absent from the scene, half of them "hard" (sharing the colour or the
shape of a present concept, or a present concept in the absent size). Everything is a pure function of the
``numpy`` generator passed in, so a scene is reproduced exactly from its seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from sam3_edge.data.config import COLOURS, SyntheticParams

SIZES = ("small", "large")


@dataclass(frozen=True)
class SceneObject:
    colour: str
    shape: str
    size: str  # "small" | "large"
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the full (unoccluded) shape, pixels

    @property
    def concept(self) -> str:
        return f"{self.colour} {self.shape}"


@dataclass(frozen=True)
class Phrase:
    text: str
    instances: tuple[int, ...]  # indices into Scene.objects; empty = negative


@dataclass
class Scene:
    image: np.ndarray  # uint8 [S, S, 3]
    objects: list[SceneObject]
    masks: list[np.ndarray]  # visible part of each object, bool [S, S]
    phrases: list[Phrase]


def shape_mask(shape: str, box: tuple[int, int, int, int], size: int) -> np.ndarray:
    """Full mask ``bool [size, size]`` of ``shape`` inscribed in ``box`` (x0, y0, x1, y1)."""
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    if shape == "circle":
        draw.ellipse([x0, y0, x1 - 1, y1 - 1], fill=1)
    elif shape == "square":
        draw.rectangle([x0, y0, x1 - 1, y1 - 1], fill=1)
    elif shape == "triangle":
        draw.polygon([(x0 + w / 2, y0), (x1 - 1, y1 - 1), (x0, y1 - 1)], fill=1)
    elif shape == "cross":
        t = max(2, round(w / 3))
        draw.rectangle([x0 + (w - t) // 2, y0, x0 + (w + t) // 2 - 1, y1 - 1], fill=1)
        draw.rectangle([x0, y0 + (h - t) // 2, x1 - 1, y0 + (h + t) // 2 - 1], fill=1)
    elif shape == "ring":
        t = max(2, round(w / 4))
        draw.ellipse([x0, y0, x1 - 1, y1 - 1], fill=1)
        draw.ellipse([x0 + t, y0 + t, x1 - 1 - t, y1 - 1 - t], fill=0)
    elif shape == "star":
        cx, cy, r_out = x0 + w / 2, y0 + h / 2, w / 2
        pts = []
        for k in range(10):
            r = r_out if k % 2 == 0 else r_out * 0.45
            a = -math.pi / 2 + k * math.pi / 5
            pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
        draw.polygon(pts, fill=1)
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return np.asarray(canvas, dtype=bool)


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Low-saturation base colour + smooth low-frequency texture + pixel noise: ``float32 [S, S, 3]``."""
    base = rng.uniform(95, 165) + rng.uniform(-12, 12, size=3)
    # mostly luminance texture with a little chroma, so the background never looks like an object colour
    coarse = (rng.normal(0.0, 14.0, size=(6, 6, 1)) + rng.normal(0.0, 4.0, size=(6, 6, 3))).astype(np.float32)
    smooth = np.stack(
        [np.asarray(Image.fromarray(coarse[..., c]).resize((size, size), Image.BICUBIC)) for c in range(3)], -1
    )
    return (base + smooth + rng.normal(0.0, 4.0, size=(size, size, 3))).astype(np.float32)


def paint(image: np.ndarray, mask: np.ndarray, colour: str, rng: np.random.Generator) -> None:
    """Fill ``mask`` of ``image`` (float [S, S, 3], in place) with a jittered, slightly noisy colour."""
    rgb = np.asarray(COLOURS[colour], dtype=np.float32) + rng.uniform(-12, 12, size=3)
    noise = rng.normal(0.0, 5.0, size=(int(mask.sum()), 3))
    image[mask] = rgb + noise


def _side(size: str, params: SyntheticParams, rng: np.random.Generator) -> int:
    lo, hi = params.small_size if size == "small" else params.large_size
    return int(rng.integers(lo, hi + 1))


def _apart(a: tuple[int, int, int, int], b: tuple[int, int, int, int], margin: int = 3) -> bool:
    return a[2] + margin <= b[0] or b[2] + margin <= a[0] or a[3] + margin <= b[1] or b[3] + margin <= a[1]


def _place(rng, side, shape, same_concept_boxes, full_masks, visible, params: SyntheticParams):
    """Try positions until the new (top-most) object leaves every earlier object visible enough.

    Instances of one concept never touch: two merged red circles would be one blob, not two instances.
    """
    size = params.image_size
    for _ in range(40):
        x0 = int(rng.integers(0, size - side + 1))
        y0 = int(rng.integers(0, size - side + 1))
        box = (x0, y0, x0 + side, y0 + side)
        if not all(_apart(box, other) for other in same_concept_boxes):
            continue
        mask = shape_mask(shape, box, size)
        ok = all(
            (vis & ~mask).sum() >= params.min_visible_fraction * full.sum()
            for full, vis in zip(full_masks, visible, strict=True)
        )
        if ok:
            return box, mask
    return None


def sample_scene(rng: np.random.Generator, params: SyntheticParams) -> Scene:
    """One scene with its image, visible masks and positive + negative noun phrases."""
    size = params.image_size
    grid = [(c, s) for c in params.colours for s in params.shapes]
    n_concepts = int(rng.integers(params.concepts_per_image[0], params.concepts_per_image[1] + 1))
    chosen = [grid[i] for i in rng.choice(len(grid), size=n_concepts, replace=False)]
    wanted: list[tuple[str, str, str]] = []
    for colour, shape in chosen:
        n_inst = int(rng.integers(params.instances_per_concept[0], params.instances_per_concept[1] + 1))
        wanted += [(colour, shape, SIZES[int(rng.integers(0, 2))]) for _ in range(n_inst)]
    order = rng.permutation(len(wanted))  # paint order = depth order, concepts interleaved
    image = background(rng, size)
    objects: list[SceneObject] = []
    full_masks: list[np.ndarray] = []
    visible: list[np.ndarray] = []
    for idx in order:
        colour, shape, size_name = wanted[idx]
        same = [o.box for o in objects if (o.colour, o.shape) == (colour, shape)]
        placed = _place(rng, _side(size_name, params, rng), shape, same, full_masks, visible, params)
        if placed is None:
            continue
        box, mask = placed
        visible = [vis & ~mask for vis in visible]
        objects.append(SceneObject(colour=colour, shape=shape, size=size_name, box=box))
        full_masks.append(mask)
        visible.append(mask.copy())
        paint(image, mask, colour, rng)
    pixels = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return Scene(image=pixels, objects=objects, masks=visible, phrases=_phrases(rng, objects, params))


def _phrases(rng: np.random.Generator, objects: list[SceneObject], params: SyntheticParams) -> list[Phrase]:
    present: dict[str, list[int]] = {}
    for i, obj in enumerate(objects):
        present.setdefault(obj.concept, []).append(i)
    positives = [Phrase(text=c, instances=tuple(ids)) for c, ids in present.items()]
    hard_negatives: list[str] = []
    for concept, ids in present.items():
        sizes_here = {objects[i].size for i in ids}
        if rng.random() < params.size_phrase_prob:
            size = sorted(sizes_here)[int(rng.integers(0, len(sizes_here)))]
            positives.append(
                Phrase(text=f"{size} {concept}", instances=tuple(i for i in ids if objects[i].size == size))
            )
        hard_negatives += [f"{s} {concept}" for s in SIZES if s not in sizes_here]
    present_colours = {o.colour for o in objects}
    present_shapes = {o.shape for o in objects}
    absent = [f"{c} {s}" for c in params.colours for s in params.shapes if f"{c} {s}" not in present]
    hard_negatives += [p for p in absent if p.split()[0] in present_colours or p.split()[1] in present_shapes]
    fraction = params.negative_fraction
    n_neg = math.ceil(len(positives) * fraction / (1.0 - fraction))
    negatives: list[str] = []
    for _ in range(n_neg):
        pool = hard_negatives if hard_negatives and rng.random() < 0.5 else absent
        pool = [p for p in pool if p not in negatives] or [p for p in absent if p not in negatives]
        if not pool:
            break
        pick = pool[int(rng.integers(0, len(pool)))]
        if pick in absent and rng.random() < 0.25:  # an absent concept with a size word
            pick = f"{SIZES[int(rng.integers(0, 2))]} {pick}"
        if pick not in negatives:
            negatives.append(pick)
    return positives + [Phrase(text=t, instances=()) for t in negatives]
