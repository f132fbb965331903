"""Concept pairs grouped by image: one decoded image, several (phrase, instance masks) pairs.

Training runs the image encoder once per image and several prompts over its features (the bootstrap teacher and
the student's SA-Co fine-tune): a phrase is only learned when positive and negative phrases of the *same* image
are contrasted in a step. Thin layer over ``sam3_edge.data.datasets`` (index, image and RLE decoding) and
``sam3_edge.data.prompts.sample_prompt``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from sam3_edge.data.datasets import decode_rle, load_concept_pairs, read_image, resize_image, resize_masks, resolve_path
from sam3_edge.data.prompts import sample_prompt
from sam3_edge.data.records import ConceptPair
from sam3_edge.types import Prompt, PromptKind
from sam3_edge.utils import progress_disabled


@dataclass
class ImageGroup:
    """One image at the model input size and its concept pairs.

    image: [3, S, S] uint8; masks[j]: [N_j, M, M] bool (M = mask size); boxes[j]: [N_j, 4] xyxy normalised.
    """

    key: str
    image: torch.Tensor
    pairs: list[ConceptPair]
    masks: list[np.ndarray]
    boxes: list[np.ndarray]


def pair_masks(pair: ConceptPair) -> np.ndarray:
    """All instance masks of ``pair`` at its original size: [N, H, W] bool (N = 0 for a negative)."""
    if not pair.instances:
        return np.zeros((0, pair.height, pair.width), dtype=bool)
    return np.stack([decode_rle(inst.rle).astype(bool) for inst in pair.instances])


def pair_boxes(pair: ConceptPair) -> np.ndarray:
    """[N, 4] xyxy boxes normalised by the image size."""
    scale = np.array([pair.width, pair.height, pair.width, pair.height], dtype=np.float32)
    return np.array([inst.box for inst in pair.instances], dtype=np.float32).reshape(-1, 4) / scale


def load_groups(
    index_file: str | Path, *, image_size: int, mask_size: int, max_pairs: int = 0, desc: str = "load pairs"
) -> list[ImageGroup]:
    """Pairs of ``index_file`` grouped by image (first-seen order), images at ``image_size``, masks at ``mask_size``."""
    pairs = load_concept_pairs(index_file)
    if max_pairs:
        pairs = pairs[:max_pairs]
    if not pairs:
        raise ValueError(f"{index_file}: no concept pairs")
    by_image: dict[str, list[ConceptPair]] = {}
    for pair in pairs:
        by_image.setdefault(pair.image, []).append(pair)
    groups = []
    for key, members in tqdm(by_image.items(), desc=desc, disable=progress_disabled()):
        image = read_image(resolve_path(index_file, key))
        tensor = (resize_image(image, image_size) * 255).round().to(torch.uint8)
        groups.append(
            ImageGroup(
                key=key,
                image=tensor,
                pairs=members,
                masks=[resize_masks(pair_masks(p), mask_size).numpy() for p in members],
                boxes=[pair_boxes(p) for p in members],
            )
        )
    return groups


def draw_prompt(
    pair: ConceptPair, kind: PromptKind, rng: np.random.Generator, *, image_size: int
) -> tuple[Prompt, list[int]]:
    """``sample_prompt`` with the one documented fallback: point/box on a negative pair becomes a text prompt."""
    if kind != "text" and pair.negative:
        kind = "text"
    return sample_prompt(pair, kind, rng, image_size=image_size)


def sample_group_prompts(
    groups: list[ImageGroup],
    order: list[int] | np.ndarray,
    *,
    prompts_per_image: int,
    prompt_mix: dict[str, float],
    rng: np.random.Generator,
    image_size: int,
) -> tuple[torch.Tensor, list[Prompt], list[int], list[torch.Tensor], list[torch.Tensor]]:
    """``prompts_per_image`` prompts on each image of ``order`` (pairs drawn without replacement when it has enough).

    Returns images [I, 3, S, S] float in [0, 1], the I x P prompts, the image slot of each prompt, and per prompt
    its target masks [N, M, M] bool and boxes [N, 4] (the prompted instances; N = 0 for a negative phrase).
    """
    kinds = list(prompt_mix)
    probs = np.array([prompt_mix[k] for k in kinds], dtype=np.float64)
    probs /= probs.sum()
    images, prompts, index, masks, boxes = [], [], [], [], []
    for slot, g in enumerate(groups[int(i)] for i in order):
        images.append(g.image.float() / 255.0)
        picks = rng.choice(len(g.pairs), size=prompts_per_image, replace=len(g.pairs) < prompts_per_image)
        for j in picks:
            kind = kinds[int(rng.choice(len(kinds), p=probs))]
            prompt, targets = draw_prompt(g.pairs[j], kind, rng, image_size=image_size)  # type: ignore[arg-type]
            prompts.append(prompt)
            index.append(slot)
            masks.append(torch.from_numpy(g.masks[j][targets]))
            boxes.append(torch.from_numpy(g.boxes[j][targets]))
    return torch.stack(images), prompts, index, masks, boxes
