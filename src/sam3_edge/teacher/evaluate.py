"""Score any :class:`~sam3_edge.types.Predictor` on concept pairs with the definitions of ``sam3_edge.core.metrics``.

Text prompts: instance mIoU (Hungarian on mask IoU over kept queries, score >= 0.5) on positive pairs and
presence P/R/F1 over all pairs. Point / box prompts (sampled from positive pairs): IoU of the top-scored query's
mask with the target instance. Masks are compared at the S x S input resolution. A whole-image baseline
(one query covering the image, always present) is scored alongside, so "beats a trivial baseline" is measurable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from sam3_edge.core.metrics import BinaryCounts, matched_instance_ious, mean_score, precision_recall_f1, top_query_iou
from sam3_edge.data.records import ConceptPair
from sam3_edge.types import Prediction, Predictor, Prompt
from sam3_edge.utils import progress_disabled, resize_logits


@dataclass
class PairSample:
    """One val pair loaded at the model input size: image [3, S, S] float in [0, 1], masks [N, S, S] bool."""

    pair: ConceptPair
    image: torch.Tensor
    masks: np.ndarray


def _upsampled_masks(pred: Prediction, b: int, size: int) -> np.ndarray:
    return (resize_logits(pred.mask_logits[b].float(), size) > 0).cpu().numpy()


def _batches(items: Sequence, size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def evaluate_predictor(
    predictor: Predictor,
    samples: list[PairSample],
    *,
    batch_size: int,
    seed: int,
    geometry_prompts: Sequence[tuple[Prompt, int, int]] = (),
    score_threshold: float = 0.5,
    presence_threshold: float = 0.5,
) -> dict:
    """Metrics of ``predictor`` on ``samples`` (text prompts) and ``geometry_prompts``.

    geometry_prompts: (prompt, sample index, target instance index) triples in pixels of the S x S image.
    Returns nested plain numbers (undefined metrics as {"status": "undefined", "reason": ...}).
    """
    del seed
    size = samples[0].image.shape[-1] if samples else predictor.image_size
    ious: list[float] = []
    base_ious: list[float] = []
    present_pred: list[bool] = []
    present_gt: list[bool] = []
    whole = np.ones((1, size, size), dtype=bool)
    for chunk in tqdm(list(_batches(samples, batch_size)), desc="eval text", disable=progress_disabled()):
        images = torch.stack([s.image for s in chunk])
        pred = predictor.predict(images, [Prompt(kind="text", text=s.pair.text) for s in chunk])
        for b, s in enumerate(chunk):
            present_pred.append(bool(pred.presence[b] >= presence_threshold))
            present_gt.append(len(s.masks) > 0)
            if len(s.masks):
                masks = _upsampled_masks(pred, b, size)
                ious.extend(
                    matched_instance_ious(
                        masks, pred.scores[b].cpu().numpy(), s.masks, score_threshold=score_threshold
                    ).tolist()
                )
                base_ious.extend(matched_instance_ious(whole, np.ones(1), s.masks).tolist())
    counts = BinaryCounts.from_labels(present_pred, present_gt)
    base_counts = BinaryCounts.from_labels([True] * len(present_gt), present_gt)
    result: dict = {
        "text": {
            "instance_miou": mean_score(ious, what="positive pairs").to_json(),
            "presence": {k: v.to_json() for k, v in precision_recall_f1(counts).items()},
            "pairs": len(samples),
            "positive_pairs": int(sum(present_gt)),
            "instances": len(ious),
        },
        "baseline_whole_image": {
            "instance_miou": mean_score(base_ious, what="positive pairs").to_json(),
            "presence_f1": precision_recall_f1(base_counts)["f1"].to_json(),
        },
    }
    by_kind: dict[str, list[float]] = {}
    base_kind: dict[str, list[float]] = {}
    for chunk in tqdm(
        list(_batches(list(geometry_prompts), batch_size)), desc="eval point/box", disable=progress_disabled()
    ):
        images = torch.stack([samples[i].image for _, i, _ in chunk])
        pred = predictor.predict(images, [p for p, _, _ in chunk])
        for b, (prompt, i, t) in enumerate(chunk):
            target = samples[i].masks[t]
            by_kind.setdefault(prompt.kind, []).append(
                top_query_iou(_upsampled_masks(pred, b, size), pred.scores[b].cpu().numpy(), target)
            )
            base_kind.setdefault(prompt.kind, []).append(top_query_iou(whole, np.ones(1), target))
    for kind in ("point", "box"):
        result[kind] = {
            "miou": mean_score(by_kind.get(kind, []), what=f"{kind} prompts").to_json(),
            "prompts": len(by_kind.get(kind, [])),
        }
        result["baseline_whole_image"][f"{kind}_miou"] = mean_score(
            base_kind.get(kind, []), what=f"{kind} prompts"
        ).to_json()
    return result
