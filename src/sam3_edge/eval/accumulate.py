"""Per-prediction bookkeeping of the driver: what each (sample, prompt) adds, and the split-level summary.

A :class:`ConceptAccumulator` holds plain numbers and RLE strings only, so a chunk of the split can be saved
as json (:meth:`to_state`) and merged back after a restart (:meth:`merge_state`): a killed evaluation resumes
from its last finished chunk.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np
import pycocotools.mask as mask_utils
import torch
import torch.nn.functional as F

from sam3_edge.core.metrics import (
    BinaryCounts,
    matched_instance_ious,
    mean_score,
    precision_recall_f1,
    prompt_sensitivity,
    semantic_mask,
    sensitivity_comparisons,
    top_query_iou,
)
from sam3_edge.eval.config import EvaluateParams
from sam3_edge.eval.saco import PairCounts, pair_counts, saco_metrics
from sam3_edge.eval.samples import ConceptSample, Skips
from sam3_edge.types import Prediction, Prompt

UPSAMPLE_CHUNK = 16


def upsample_masks(logits: torch.Tensor, index: list[int], shape: tuple[int, int]) -> np.ndarray:
    """logits [Q, h, w] -> bool [len(index), H, W] for the queries in ``index`` (chunked to bound memory)."""
    out = np.zeros((len(index), *shape), dtype=bool)
    for start in range(0, len(index), UPSAMPLE_CHUNK):
        sel = index[start : start + UPSAMPLE_CHUNK]
        up = F.interpolate(logits[sel][None].float(), size=shape, mode="bilinear", align_corners=False)[0]
        out[start : start + len(sel)] = (up > 0).numpy()
    return out


def encode(mask: np.ndarray) -> dict[str, Any]:
    """bool [H, W] -> COCO RLE with a str ``counts`` (json-ready)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": rle["counts"].decode("ascii")}


def coco_result(image_id: int, mask: np.ndarray, box_xyxy_norm: Any, score: float, **extra: Any) -> dict[str, Any]:
    """One COCO results entry: RLE segmentation at annotation resolution, bbox xywh in pixels."""
    h, w = mask.shape
    x0, y0, x1, y1 = (float(v) for v in box_xyxy_norm)
    bbox = [x0 * w, y0 * h, max(0.0, x1 - x0) * w, max(0.0, y1 - y0) * h]
    return {
        "image_id": int(image_id),
        "category_id": 1,
        "segmentation": encode(mask),
        "bbox": [round(v, 3) for v in bbox],
        "score": round(float(score), 6),
        **extra,
    }


class ConceptAccumulator:
    def __init__(self, params: EvaluateParams) -> None:
        self.p = params
        self.instance_ious: list[float] = []
        self.semantic_ious: list[float] = []
        self.saco: list[PairCounts] = []
        self.presence_pred: list[bool] = []
        self.presence_gt: list[bool] = []
        self.geometric: dict[str, list[float]] = defaultdict(list)
        self.semantic: dict[str, dict[str, list[dict]]] = defaultdict(dict)  # image -> phrase -> [pred, gt] RLE
        self.results: dict[str, list[dict]] = defaultdict(list)
        self.counts: Counter = Counter()
        self.skips = Skips()

    def add_text(self, s: ConceptSample, pred: Prediction, b: int) -> None:
        """Score the text prompt of sample ``s`` = item ``b`` of ``pred``."""
        p, shape = self.p, s.gt_masks.shape[1:]
        scores = pred.scores[b].float()
        order = torch.argsort(scores, descending=True).tolist()
        kept = [q for q in order if scores[q] >= p.score_threshold]
        listed = [q for q in order if scores[q] >= p.results_min_score][: p.results_max_per_pair]
        needed = sorted(set(kept) | set(listed))
        dense = dict(zip(needed, upsample_masks(pred.mask_logits[b], needed, shape), strict=True))
        self.results.setdefault("text", [])  # the file exists even when no query reaches results_min_score
        for q in listed:
            self.results["text"].append(coco_result(s.pair_id, dense[q], pred.boxes[b, q], scores[q]))
        kept_masks = np.stack([dense[q] for q in kept]) if kept else np.zeros((0, *shape), bool)
        kept_scores = np.ones(len(kept))
        positive = len(s.gt_masks) > 0
        self.counts["pairs"] += 1
        self.counts["positive_pairs" if positive else "negative_pairs"] += 1
        self.counts["gt_instances"] += len(s.gt_masks)
        self.presence_pred.append(bool(pred.presence[b] >= p.presence_threshold))
        self.presence_gt.append(positive)
        self.saco.append(pair_counts(kept_masks, kept_scores, s.gt_masks))
        union = semantic_mask(kept_masks, kept_scores, shape=shape)
        gt_union = s.gt_masks.any(0) if positive else np.zeros(shape, bool)
        if positive:
            self.instance_ious.extend(matched_instance_ious(kept_masks, kept_scores, s.gt_masks).tolist())
            self.semantic_ious.append(top_query_iou(union[None], [1.0], gt_union))
        self._add_semantic(s.image_key, s.text, [encode(union), encode(gt_union)])

    def _add_semantic(self, image_key: str, text: str, rles: list[dict]) -> None:
        if text in self.semantic[image_key]:  # prompt sensitivity compares each phrase once per image
            self.skips.add("duplicate_phrase_on_image", f"{image_key}: {text!r}")
        else:
            self.semantic[image_key][text] = rles

    def add_geometric(
        self, source: str, s: ConceptSample, prompt: Prompt, target: int, pred: Prediction, b: int
    ) -> None:
        """Score a point/box prompt (``source`` '' for SA-Co pairs, 'sa1b_' for SA-1B images)."""
        scores = pred.scores[b].float()
        key = f"{source}{prompt.kind}"
        self.counts[f"{key}_prompts"] += 1
        self.results.setdefault(key, [])
        if scores.numel() == 0:
            self.geometric[key].append(0.0)
            return
        top = int(torch.argmax(scores))
        mask = upsample_masks(pred.mask_logits[b], [top], s.gt_masks.shape[1:])[0]
        self.geometric[key].append(top_query_iou(mask[None], [1.0], s.gt_masks[target]))
        self.results[key].append(coco_result(s.pair_id, mask, pred.boxes[b, top], scores[top], target_index=target))

    # -- resume -------------------------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "instance_ious": self.instance_ious,
            "semantic_ious": self.semantic_ious,
            "saco": [[c.tp.tolist(), c.fp.tolist(), c.fn.tolist(), c.num_gt, c.num_pred] for c in self.saco],
            "presence_pred": self.presence_pred,
            "presence_gt": self.presence_gt,
            "geometric": dict(self.geometric),
            "semantic": dict(self.semantic),
            "results": dict(self.results),
            "counts": dict(self.counts),
            "skips": self.skips.to_json(),
        }

    def merge_state(self, state: dict[str, Any]) -> None:
        self.instance_ious += state["instance_ious"]
        self.semantic_ious += state["semantic_ious"]
        self.saco += [
            PairCounts(np.asarray(tp), np.asarray(fp), np.asarray(fn), g, n) for tp, fp, fn, g, n in state["saco"]
        ]
        self.presence_pred += state["presence_pred"]
        self.presence_gt += state["presence_gt"]
        for key, values in state["geometric"].items():
            self.geometric[key] += values
        for image_key, phrases in state["semantic"].items():
            for text, rles in phrases.items():
                self._add_semantic(image_key, text, rles)
        for key, entries in state["results"].items():
            self.results[key] += entries
        self.counts.update(state["counts"])
        self.skips.counts.update(state["skips"])

    # -- summary ------------------------------------------------------------------------------------------------
    def sensitivity(self) -> tuple[list[float], list[float]]:
        true_iou: list[float] = []
        other_iou: list[float] = []
        for phrases in self.semantic.values():
            if len(phrases) < 2:
                continue
            pred = {k: mask_utils.decode(v[0]).astype(bool) for k, v in phrases.items()}
            gt = {k: mask_utils.decode(v[1]).astype(bool) for k, v in phrases.items()}
            t, o = sensitivity_comparisons(pred, gt)
            true_iou += t
            other_iou += o
        return true_iou, other_iou

    def metrics(self) -> dict[str, Any]:
        """Split-level figures: counts, mIoU per prompt kind, presence P/R/F1, SA-Co, prompt sensitivity."""
        presence = BinaryCounts.from_labels(self.presence_pred, self.presence_gt)
        out: dict[str, Any] = {
            "counts": dict(sorted(self.counts.items())),
            "miou": {
                "text": mean_score(self.instance_ious, what="GT instances of positive pairs").to_json(),
                "text_semantic": mean_score(self.semantic_ious, what="positive pairs").to_json(),
            },
            "presence": {
                **{k: v.to_json() for k, v in precision_recall_f1(presence).items()},
                "tp": presence.tp,
                "fp": presence.fp,
                "fn": presence.fn,
                "tn": presence.tn,
            },
            "saco": {k: v.to_json() for k, v in saco_metrics(self.saco).items()},
        }
        for kind in ("point", "box"):
            if kind in self.p.prompt_kinds:
                out["miou"][kind] = mean_score(self.geometric[kind], what=f"{kind} prompts").to_json()
                if self.counts.get(f"sa1b_{kind}_prompts"):
                    sa1b = mean_score(self.geometric[f"sa1b_{kind}"], what="prompts").to_json()
                    out.setdefault("sa1b_miou", {})[kind] = sa1b
        true_iou, other_iou = self.sensitivity()
        out["prompt_sensitivity"] = {
            "value": prompt_sensitivity(true_iou, other_iou).to_json(),
            "comparisons": len(true_iou),
        }
        return out
