"""Prompt sampling for training and evaluation, in pixels of the S x S resized model input.

* ``text``: the pair's noun phrase; targets = all its instances (none for a negative pair).
* ``point``: one foreground point drawn uniformly from one instance's mask; targets = that instance.
* ``box``: that instance's box (optionally jittered by ``box_jitter`` x its size); targets = that instance.
"""

from __future__ import annotations

import numpy as np

from sam3_edge.data.records import ConceptPair, ImageRecord
from sam3_edge.data.rle import decode_rle
from sam3_edge.types import Prompt, PromptKind


def sample_prompt(
    pair: ConceptPair | ImageRecord,
    kind: PromptKind,
    rng: np.random.Generator,
    *,
    image_size: int,
    box_jitter: float = 0.0,
) -> tuple[Prompt, list[int]]:
    """Draw a prompt of ``kind`` for ``pair``; returns it and the indices of the target instances.

    Coordinates are scaled from the original ``width x height`` to ``image_size x image_size`` pixels. A
    point/box prompt on a pair without instances (a negative) raises ``ValueError``; so does a text prompt
    for an :class:`ImageRecord` (SA-1B masks have no phrase).
    """
    text = getattr(pair, "text", "")
    if kind == "text":
        if not text:
            raise ValueError("text prompt needs a noun phrase (ImageRecords have none)")
        return Prompt(kind="text", text=text), list(range(len(pair.instances)))
    if kind not in ("point", "box"):
        raise ValueError(f"unknown prompt kind {kind!r}")
    if not pair.instances:
        raise ValueError(f"{kind} prompt needs an instance, but pair {getattr(pair, 'pair_id', '?')} is negative")
    target = int(rng.integers(0, len(pair.instances)))
    instance = pair.instances[target]
    sx, sy = image_size / pair.width, image_size / pair.height
    if kind == "point":
        mask = decode_rle(instance.rle)  # [H, W]
        ys, xs = np.nonzero(mask)
        if len(xs) == 0:
            raise ValueError(f"instance {target} of pair {getattr(pair, 'pair_id', '?')} has an empty mask")
        k = int(rng.integers(0, len(xs)))
        x, y = (xs[k] + 0.5) * sx, (ys[k] + 0.5) * sy  # pixel centre, scaled
        return Prompt(kind="point", text=text, points=((float(x), float(y), 1),)), [target]
    x0, y0, x1, y1 = instance.box
    if box_jitter > 0:
        w, h = x1 - x0, y1 - y0
        x0, x1 = (v + rng.normal(0.0, box_jitter * w) for v in (x0, x1))
        y0, y1 = (v + rng.normal(0.0, box_jitter * h) for v in (y0, y1))
        x0, x1 = sorted((min(max(x0, 0.0), pair.width), min(max(x1, 0.0), pair.width)))
        y0, y1 = sorted((min(max(y0, 0.0), pair.height), min(max(y1, 0.0), pair.height)))
    box = (float(x0 * sx), float(y0 * sy), float(x1 * sx), float(y1 * sy))
    return Prompt(kind="box", text=text, box=box), [target]
