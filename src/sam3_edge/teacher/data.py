"""The teacher's view of concept pairs grouped by image (``sam3_edge.data.groups``): evaluation samples and the
fixed geometry prompts it is scored with."""

from __future__ import annotations

import numpy as np

from sam3_edge.data.groups import ImageGroup
from sam3_edge.data.prompts import sample_prompt
from sam3_edge.teacher.evaluate import PairSample
from sam3_edge.types import Prompt


def pair_samples(groups: list[ImageGroup]) -> list[PairSample]:
    """Flatten groups into per-pair samples (images as float [3, S, S] in [0, 1]) for evaluation."""
    return [
        PairSample(pair=p, image=g.image.float() / 255.0, masks=m)
        for g in groups
        for p, m in zip(g.pairs, g.masks, strict=True)
    ]


def geometry_eval_prompts(
    samples: list[PairSample], *, per_pair: int, seed: int, image_size: int
) -> list[tuple[Prompt, int, int]]:
    """Deterministic point and box prompts on positive pairs: (prompt, sample index, target instance index)."""
    rng = np.random.default_rng(seed)
    out = []
    for i, s in enumerate(samples):
        if s.pair.negative:
            continue
        for kind in ("point", "box"):
            for _ in range(per_pair):
                prompt, targets = sample_prompt(s.pair, kind, rng, image_size=image_size)
                out.append((prompt, i, targets[0]))
    return out
