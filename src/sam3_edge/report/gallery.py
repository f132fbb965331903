"""Visual QA: the same val prompts through every model column, scored per tile, worst cases first.

Selection (seeded): ``num_images`` val images of the SA-Co index, then on each image ``num_prompts`` of its
(pair, prompt kind) combinations; point/box prompts exist only for positive pairs and target one instance, built
by :func:`sam3_edge.eval.samples.prompt_from_mask` (the mask's most interior pixel / its tight box), so every
model gets the same prompt. Per-tile score (the gallery's, shown on each tile):

* text prompt, positive pair: IoU of the union of the predicted instances (score >= threshold) with the union of
  the GT instances (semantic IoU);
* text prompt, negative pair: correct when no instance is predicted ("absent" answer); ranked as 1 if correct,
  else 0;
* point / box prompt: IoU of the top-scored query's mask with the target instance (as in evaluation).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sam3_edge.core.metrics import mask_iou
from sam3_edge.eval.samples import prompt_from_mask
from sam3_edge.report.config import VisualQAParams
from sam3_edge.report.inference import ItemOutput, run_predictor, scale_prompt
from sam3_edge.types import Predictor, Prompt, PromptKind
from sam3_edge.utils import progress_disabled

LOG = logging.getLogger("sam3_edge.report")


@dataclass(frozen=True)
class GalleryItem:
    """One gallery row: an image, a phrase and a prompt (pixels of the original image) with its ground truth."""

    pair_id: int
    image_key: str
    text: str
    kind: PromptKind
    image: np.ndarray  # uint8 [H, W, 3]
    gt_masks: np.ndarray  # bool [G, H, W]; G = 0 for a negative pair
    target: int | None = None  # GT instance of a point/box prompt

    @property
    def negative(self) -> bool:
        return len(self.gt_masks) == 0

    @property
    def prompt(self) -> Prompt:
        if self.kind == "text":
            return Prompt(kind="text", text=self.text)
        assert self.target is not None
        h, w = self.image.shape[:2]
        square = prompt_from_mask(self.gt_masks[self.target], self.kind, image_size=max(h, w), text=self.text)
        return scale_prompt(square, w / max(h, w), h / max(h, w))  # back to pixels of the H x W original

    @property
    def target_mask(self) -> np.ndarray:
        """bool [H, W]: what a correct answer covers (all instances for text, one for point/box)."""
        if self.target is not None:
            return self.gt_masks[self.target]
        return self.gt_masks.any(0) if len(self.gt_masks) else np.zeros(self.image.shape[:2], bool)


@dataclass(frozen=True)
class TileScore:
    iou: float | None  # None for a negative text prompt (no mask to compare)
    correct_absent: bool | None  # negatives only: True when the model answered "absent"
    rank_value: float  # what "worst first" sorts on


@dataclass
class Selection:
    items: list[GalleryItem] = field(default_factory=list)
    skips: Counter = field(default_factory=Counter)


def select_items(index_file: str | Path, params: VisualQAParams) -> Selection:
    """Pick and decode the gallery's (image, prompt) items from an SA-Co concepts index (seeded)."""
    from sam3_edge.data.datasets import decode_rle, load_concept_pairs, read_image, resolve_path

    rng = np.random.default_rng(params.seed)
    by_image: dict[str, list] = defaultdict(list)
    for pair in load_concept_pairs(index_file):
        by_image[pair.image].append(pair)
    keys = sorted(by_image)
    chosen = [keys[i] for i in rng.permutation(len(keys))[: params.num_images]]
    sel = Selection()
    for key in chosen:
        pairs = by_image[key]
        path = resolve_path(index_file, key)
        try:
            image = read_image(path)
        except (ValueError, OSError) as err:
            LOG.warning("visual_qa skip: %s unreadable: %s", path, err)
            sel.skips["unreadable_image"] += 1
            continue
        combos = [(p, k) for p in pairs for k in params.prompt_kinds if k == "text" or not p.negative]
        for j in rng.permutation(len(combos))[: params.num_prompts]:
            pair, kind = combos[j]
            shape = (pair.height, pair.width)
            if image.shape[:2] != shape:
                sel.skips["image_size_mismatch"] += 1
                LOG.warning("visual_qa skip: %s is %s, index says %s", path, image.shape[:2], shape)
                continue
            masks = [np.asarray(decode_rle(i.rle), dtype=bool) for i in pair.instances]
            gt = np.stack(masks) if masks else np.zeros((0, *shape), bool)
            target = None
            if kind != "text":
                nonempty = [t for t in range(len(gt)) if gt[t].any()]
                if not nonempty:
                    sel.skips["empty_target_mask"] += 1
                    continue
                target = int(nonempty[int(rng.integers(len(nonempty)))])
            sel.items.append(
                GalleryItem(
                    pair_id=pair.pair_id,
                    image_key=str(key),
                    text=pair.text,
                    kind=kind,
                    image=image,
                    gt_masks=gt,
                    target=target,
                )
            )
    return sel


def score_tile(item: GalleryItem, out: ItemOutput) -> TileScore:
    if item.kind == "text" and item.negative:
        correct = len(out.instances) == 0
        return TileScore(iou=None, correct_absent=correct, rank_value=1.0 if correct else 0.0)
    if item.kind == "text":
        union = (
            np.any([i.mask for i in out.instances], axis=0) if out.instances else np.zeros(item.image.shape[:2], bool)
        )
        iou = mask_iou(union, item.target_mask)
    else:
        iou = mask_iou(out.top.mask, item.target_mask) if out.top is not None else 0.0
    return TileScore(iou=float(iou), correct_absent=None, rank_value=float(iou))


@dataclass
class Column:
    """A model column: outputs and scores per item, or ``missing`` saying why the column is empty."""

    name: str
    outputs: list[ItemOutput] | None = None
    scores: list[TileScore] | None = None
    missing: str = ""

    def summary(self) -> dict:
        if self.scores is None:
            return {"status": "missing", "reason": self.missing}
        ious = [s.iou for s in self.scores if s.iou is not None]
        neg = [s.correct_absent for s in self.scores if s.correct_absent is not None]
        return {
            "tiles": len(self.scores),
            "mean_tile_iou": float(np.mean(ious)) if ious else None,
            "negatives": len(neg),
            "negatives_correct": int(sum(neg)),
        }


def run_columns(
    items: list[GalleryItem], predictors: dict[str, Predictor | str], params: VisualQAParams
) -> list[Column]:
    """``predictors``: column name -> a Predictor, or a string saying why that column is missing."""
    columns = []
    for name in params.columns:
        pred = predictors.get(name, f"missing (no {name} model given)")
        if isinstance(pred, str):
            columns.append(Column(name, missing=pred))
            continue
        outputs: list[ItemOutput] = []
        bar = tqdm(total=len(items), desc=f"visual_qa {name}", disable=progress_disabled(), unit="tile")
        for start in range(0, len(items), params.batch_size):
            chunk = items[start : start + params.batch_size]
            outputs += run_predictor(
                pred,
                [i.image for i in chunk],
                [i.prompt for i in chunk],
                score_threshold=params.score_threshold,
                batch_size=params.batch_size,
            )
            bar.update(len(chunk))
        bar.close()
        columns.append(Column(name, outputs, [score_tile(i, o) for i, o in zip(items, outputs, strict=True)]))
    return columns


def row_order(items: list[GalleryItem], columns: list[Column], sort_by: str) -> tuple[list[int], str]:
    """Indices of ``items`` worst first by the ``sort_by`` column (else the first column that ran)."""
    ran = [c for c in columns if c.scores is not None]
    if not ran:
        return list(range(len(items))), "none (no model column ran)"
    col = next((c for c in ran if c.name == sort_by), ran[0])
    assert col.scores is not None
    scores = col.scores
    return sorted(range(len(items)), key=lambda i: (scores[i].rank_value, items[i].pair_id, i)), col.name
