"""Seeded synthetic clips: shapes moving across a textured background, passing in front of each other.

Each object keeps its depth (later = in front), moves with a constant velocity and bounces off the borders,
so objects cross and occlude each other. Masks are the visible parts, kept on every ``annotation_stride``-th
frame as in SA-V; each masklet carries its noun phrase ``"<colour> <shape>"``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sam3_edge.data.config import COLOURS, SyntheticParams
from sam3_edge.data.synthetic import SIZES, background, shape_mask


@dataclass
class Clip:
    frames: np.ndarray  # uint8 [T, S, S, 3]
    masks: np.ndarray  # bool [A, K, S, S] visible masks on the annotated frames (A = ceil(T / stride))
    texts: list[str]  # K noun phrases
    annotated_frames: tuple[int, ...]


def sample_clip(rng: np.random.Generator, params: SyntheticParams) -> Clip:
    size, num_frames, stride = params.video_size, params.video_frames, params.annotation_stride
    n_objects = int(rng.integers(params.objects_per_video[0], params.objects_per_video[1] + 1))
    grid = [(c, s) for c in params.colours for s in params.shapes]
    picks = rng.choice(len(grid), size=n_objects, replace=n_objects > len(grid))
    objects = []
    for pick in picks:
        colour, shape = grid[int(pick)]
        lo, hi = params.small_size if SIZES[int(rng.integers(0, 2))] == "small" else params.large_size
        side = int(rng.integers(lo, hi + 1))
        pos = rng.uniform(0, size - side, size=2)
        speed = rng.uniform(1.0, 4.0)
        angle = rng.uniform(0, 2 * np.pi)
        objects.append(
            {
                "colour": colour,
                "shape": shape,
                "side": side,
                "pos": pos,
                "vel": speed * np.array([np.cos(angle), np.sin(angle)]),
                "rgb": rng.uniform(-12, 12, size=3),
            }
        )
    base = background(rng, size)
    annotated = tuple(range(0, num_frames, stride))
    frames = np.empty((num_frames, size, size, 3), dtype=np.uint8)
    masks = np.zeros((len(annotated), n_objects, size, size), dtype=bool)
    for t in range(num_frames):
        image = base + rng.normal(0.0, 2.0, size=base.shape)
        visible: list[np.ndarray] = []
        for obj in objects:
            x0, y0 = (int(round(v)) for v in obj["pos"])
            mask = shape_mask(obj["shape"], (x0, y0, x0 + obj["side"], y0 + obj["side"]), size)
            visible = [vis & ~mask for vis in visible]
            visible.append(mask)
            image[mask] = np.asarray(COLOURS[obj["colour"]], dtype=np.float32) + obj["rgb"]
            _step(obj, size)
        frames[t] = np.clip(np.rint(image), 0, 255).astype(np.uint8)
        if t % stride == 0:
            masks[t // stride] = np.stack(visible)
    return Clip(
        frames=frames,
        masks=masks,
        texts=[f"{o['colour']} {o['shape']}" for o in objects],
        annotated_frames=annotated,
    )


def _step(obj: dict, size: int) -> None:
    """Move one frame; bounce off the borders so the object stays fully inside."""
    pos, vel, limit = obj["pos"] + obj["vel"], obj["vel"], size - obj["side"]
    for axis in range(2):
        if pos[axis] < 0 or pos[axis] > limit:
            vel[axis] = -vel[axis]
            pos[axis] = min(max(pos[axis], 0.0), float(limit))
    obj["pos"], obj["vel"] = pos, vel
