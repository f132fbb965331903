"""Run any :class:`~sam3_edge.types.Predictor` on images at their own resolution, for the gallery and the CLI.

Prompts are given in pixels of the original image; each predictor gets the image resized to its ``image_size``
and the prompt scaled to match (the same resize and upsampling as the evaluation driver, whose helpers are
reused), and its masks come back at the original resolution.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from sam3_edge.eval.driver import to_input, upsample_masks
from sam3_edge.types import Predictor, Prompt


@dataclass(frozen=True)
class Instance:
    query: int
    score: float
    box: tuple[float, float, float, float]  # xyxy pixels of the original image
    mask: np.ndarray  # bool [H, W]


@dataclass(frozen=True)
class ItemOutput:
    """What one predictor answered for one (image, prompt).

    ``instances``: queries with score >= threshold, best first (text prompts: all of them are the answer);
    ``top``: the best-scored query whatever its score (point/box prompts are scored on it, as in evaluation);
    ``presence``: the model's presence probability.
    """

    instances: tuple[Instance, ...]
    top: Instance | None
    presence: float


def scale_prompt(prompt: Prompt, sx: float, sy: float) -> Prompt:
    """The prompt with x scaled by ``sx`` and y by ``sy``."""
    points = tuple((x * sx, y * sy, int(label)) for x, y, label in prompt.points)
    box = (
        None if prompt.box is None else (prompt.box[0] * sx, prompt.box[1] * sy, prompt.box[2] * sx, prompt.box[3] * sy)
    )
    return replace(prompt, points=points, box=box)


def _instance(pred_boxes: torch.Tensor, scores: torch.Tensor, q: int, mask: np.ndarray) -> Instance:
    h, w = mask.shape
    x0, y0, x1, y1 = (float(v) for v in pred_boxes[q])
    return Instance(query=q, score=float(scores[q]), box=(x0 * w, y0 * h, x1 * w, y1 * h), mask=mask)


@torch.inference_mode()
def run_predictor(
    predictor: Predictor,
    images: Sequence[np.ndarray],
    prompts: Sequence[Prompt],
    *,
    score_threshold: float = 0.5,
    batch_size: int = 8,
) -> list[ItemOutput]:
    """images: uint8 [H, W, 3] each (sizes may differ); prompts: in pixels of each original image."""
    if len(images) != len(prompts):
        raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
    size = int(predictor.image_size)
    outputs: list[ItemOutput] = []
    for start in range(0, len(images), batch_size):
        chunk = list(range(start, min(start + batch_size, len(images))))
        batch = torch.stack([to_input(images[i], size) for i in chunk])  # [B, 3, S, S]
        scaled = [scale_prompt(prompts[i], size / images[i].shape[1], size / images[i].shape[0]) for i in chunk]
        pred = predictor.predict(batch, scaled)
        for b, i in enumerate(chunk):
            shape = images[i].shape[:2]
            scores = pred.scores[b].float().cpu()  # [Q]
            order = torch.argsort(scores, descending=True).tolist()
            kept = [q for q in order if scores[q] >= score_threshold]
            needed = sorted(set(kept) | set(order[:1]))
            dense = dict(zip(needed, upsample_masks(pred.mask_logits[b].float().cpu(), needed, shape), strict=True))
            boxes = pred.boxes[b].float().cpu()
            instances = tuple(_instance(boxes, scores, q, dense[q]) for q in kept)
            top = _instance(boxes, scores, order[0], dense[order[0]]) if order else None
            outputs.append(ItemOutput(instances=instances, top=top, presence=float(pred.presence[b])))
    return outputs
