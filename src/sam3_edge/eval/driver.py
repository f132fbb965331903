"""The evaluation driver: one function scores any :class:`~sam3_edge.types.Predictor` the same way.

``evaluate_predictor`` (index files in) and ``evaluate_samples`` (decoded samples in) return the metrics dict
written to ``metrics/eval/<model>.json`` and, when ``predictions_dir`` is given, COCO results json there
(``text.json``, ``point.json``, ``box.json`` for SA-Co pairs with ``image_id`` = pair id; ``sa1b_point.json``,
``sa1b_box.json`` with ``image_id`` = SA-1B image id). Metric definitions: ``sam3_edge.eval.metrics``,
``.saco`` and ``.video``; images are resized to the predictor's ``image_size`` and predicted masks are
upsampled back to the annotation resolution (bilinear on logits, then ``> 0``) before scoring.

Video protocol extension: a predictor with a video path implements
``predict_video(frames: Tensor [T, 3, S, S] in [0, 1], prompt: Prompt) -> list[Prediction]`` (T predictions of
batch 1), the prompt given on frame 0 of ``frames``. Per object the driver starts the clip at the object's first
annotated visible frame, prompts it there (``video_prompt`` kind, built from that frame's GT mask), and takes per
frame the mask of the top-scored query when that score >= ``score_threshold`` (else empty: the object left).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pycocotools.mask as mask_utils
import torch
import torch.nn.functional as F
from tqdm import tqdm

from sam3_edge.eval.config import EvaluateParams
from sam3_edge.eval.latency import measure_latency
from sam3_edge.eval.metrics import (
    BinaryCounts,
    matched_instance_ious,
    mean_score,
    precision_recall_f1,
    prompt_sensitivity,
    semantic_mask,
    sensitivity_comparisons,
    top_query_iou,
)
from sam3_edge.eval.saco import pair_counts, saco_metrics
from sam3_edge.eval.samples import (
    ConceptSample,
    Skips,
    VideoSample,
    concept_samples,
    image_samples,
    prompt_from_mask,
    video_samples,
)
from sam3_edge.eval.video import j_and_f, object_j_and_f
from sam3_edge.types import Prediction, Predictor, Prompt
from sam3_edge.utils import progress_disabled, write_json

UPSAMPLE_CHUNK = 16


def to_input(image: np.ndarray, size: int) -> torch.Tensor:
    """uint8 [H, W, 3] -> float [3, S, S] in [0, 1], exactly as training sees images (``data.datasets.resize_image``)."""
    from sam3_edge.data.datasets import resize_image

    return resize_image(image, size)


def upsample_masks(logits: torch.Tensor, index: list[int], shape: tuple[int, int]) -> np.ndarray:
    """logits [Q, h, w] -> bool [len(index), H, W] for the queries in ``index`` (chunked to bound memory)."""
    out = np.zeros((len(index), *shape), dtype=bool)
    for start in range(0, len(index), UPSAMPLE_CHUNK):
        sel = index[start : start + UPSAMPLE_CHUNK]
        up = F.interpolate(logits[sel][None].float(), size=shape, mode="bilinear", align_corners=False)[0]
        out[start : start + len(sel)] = (up > 0).numpy()
    return out


def coco_result(image_id: int, mask: np.ndarray, box_xyxy_norm: Any, score: float, **extra: Any) -> dict[str, Any]:
    """One COCO results entry: RLE segmentation at annotation resolution, bbox xywh in pixels."""
    h, w = mask.shape
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    x0, y0, x1, y1 = (float(v) for v in box_xyxy_norm)
    bbox = [x0 * w, y0 * h, max(0.0, x1 - x0) * w, max(0.0, y1 - y0) * h]
    return {
        "image_id": int(image_id),
        "category_id": 1,
        "segmentation": {"size": [h, w], "counts": rle["counts"].decode()},
        "bbox": [round(v, 3) for v in bbox],
        "score": round(float(score), 6),
        **extra,
    }


class _Accumulator:
    def __init__(self, params: EvaluateParams) -> None:
        self.p = params
        self.instance_ious: list[float] = []
        self.semantic_ious: list[float] = []
        self.saco: list = []
        self.presence_pred: list[bool] = []
        self.presence_gt: list[bool] = []
        self.geometric: dict[str, list[float]] = defaultdict(list)
        self.semantic: dict[str, dict[str, tuple[dict, dict]]] = defaultdict(dict)  # image -> phrase -> RLEs
        self.results: dict[str, list[dict]] = defaultdict(list)
        self.counts: dict[str, int] = defaultdict(int)

    def add_text(self, s: ConceptSample, pred: Prediction, b: int, skips: Skips) -> None:
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
            self.semantic_ious.append(float(mask_utils.iou([_rle(union)], [_rle(gt_union)], [0])[0, 0]))
        if s.text in self.semantic[s.image_key]:
            skips.add("duplicate_phrase_on_image", f"{s.image_key}: {s.text!r} (pair {s.pair_id})")
        else:
            self.semantic[s.image_key][s.text] = (_rle(union), _rle(gt_union))

    def add_geometric(
        self, source: str, s: ConceptSample, prompt: Prompt, target: int, pred: Prediction, b: int
    ) -> None:
        scores = pred.scores[b].float()
        top = int(torch.argmax(scores)) if scores.numel() else None
        key = f"{source}{prompt.kind}"
        self.counts[f"{key}_prompts"] += 1
        self.results.setdefault(key, [])
        if top is None:
            self.geometric[key].append(0.0)
            return
        mask = upsample_masks(pred.mask_logits[b], [top], s.gt_masks.shape[1:])[0]
        self.geometric[key].append(top_query_iou(mask[None], [1.0], s.gt_masks[target]))
        self.results[key].append(coco_result(s.pair_id, mask, pred.boxes[b, top], scores[top], target_index=target))

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


def _rle(mask: np.ndarray) -> dict:
    return mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))


def _run_batches(
    predictor: Predictor, samples: Iterable[ConceptSample], acc: _Accumulator, skips: Skips, *, source: str, desc: str
) -> None:
    p, size = acc.p, predictor.image_size
    batch: list[tuple[ConceptSample, Prompt, int | None]] = []

    def flush() -> None:
        if not batch:
            return
        images = torch.stack([to_input(s.image, size) for s, _, _ in batch])
        with torch.inference_mode():
            pred = predictor.predict(images, [pr for _, pr, _ in batch])
        for b, (s, prompt, target) in enumerate(batch):
            if target is None:
                acc.add_text(s, pred, b, skips)
            else:
                acc.add_geometric(source, s, prompt, target, pred, b)
        batch.clear()

    for s in tqdm(samples, desc=desc, disable=progress_disabled(), unit="sample"):
        if s.ask_text:
            batch.append((s, Prompt(kind="text", text=s.text), None))
        batch.extend((s, prompt, target) for prompt, target in s.geometric_prompts)
        if len(batch) >= p.batch_size:
            flush()
    flush()


def _video_metrics(predictor: Predictor, videos: Iterable[VideoSample], p: EvaluateParams, skips: Skips) -> dict:
    predict_video = getattr(predictor, "predict_video", None)
    if predict_video is None:
        return {"status": "skipped", "reason": f"{predictor.name} has no predict_video (no video path)"}
    per_object: list[tuple[float, float]] = []
    for video in tqdm(videos, desc="video", disable=progress_disabled(), unit="clip"):
        frames = torch.stack([to_input(f, predictor.image_size) for f in video.frames])
        for obj in video.objects:
            annotated = sorted(obj.masks)
            visible = [t for t in annotated if obj.masks[t].any()]
            if not visible:
                skips.add("video_object_never_visible", f"{video.video_id}: object {obj.object_id}")
                continue
            if p.video_prompt == "text" and not obj.text:
                skips.add("video_object_without_phrase", f"{video.video_id}: object {obj.object_id}")
                continue
            t0 = visible[0]
            prompt = prompt_from_mask(obj.masks[t0], p.video_prompt, image_size=predictor.image_size, text=obj.text)
            with torch.inference_mode():
                preds = predict_video(frames[t0:], prompt)
            if len(preds) != len(frames) - t0:
                raise ValueError(
                    f"{predictor.name}.predict_video returned {len(preds)} predictions for {len(frames) - t0} frames"
                )
            evaluated = [t for t in annotated if t >= t0]
            pred_masks, gt_masks = [], []
            for t in evaluated:
                pr = preds[t - t0]
                shape = obj.masks[t].shape
                scores = pr.scores[0].float()
                top = int(torch.argmax(scores)) if scores.numel() else -1
                keep = top >= 0 and scores[top] >= p.score_threshold
                pred_masks.append(upsample_masks(pr.mask_logits[0], [top], shape)[0] if keep else np.zeros(shape, bool))
                gt_masks.append(obj.masks[t])
            jf = object_j_and_f(
                pred_masks, gt_masks, skip_first_and_last=p.skip_first_and_last, tolerance=p.boundary_tolerance
            )
            if jf is None:
                skips.add(
                    "video_object_too_few_frames", f"{video.video_id}: object {obj.object_id}: {len(evaluated)} frames"
                )
                continue
            per_object.append(jf)
    out: dict[str, Any] = {k: v.to_json() for k, v in j_and_f(per_object).items()}
    out["objects"] = len(per_object)
    return out


def evaluate_samples(
    predictor: Predictor,
    *,
    concepts: Iterable[ConceptSample],
    params: EvaluateParams,
    sa1b: Iterable[ConceptSample] = (),
    videos: Iterable[VideoSample] | None = None,
    predictions_dir: str | Path | None = None,
    latency: bool = True,
    skips: Skips | None = None,
) -> dict[str, Any]:
    """Score ``predictor`` on decoded samples; returns the metrics dict (numbers, plus status/reason strings)."""
    skips = skips if skips is not None else Skips()
    if hasattr(predictor, "eval"):
        predictor.eval()  # type: ignore[attr-defined]
    acc = _Accumulator(params)
    first: list[ConceptSample] = []

    def remember(items: Iterable[ConceptSample]):
        for s in items:
            if not first and s.ask_text:
                first.append(s)
            yield s

    _run_batches(predictor, remember(concepts), acc, skips, source="", desc=f"eval {predictor.name}")
    _run_batches(predictor, sa1b, acc, skips, source="sa1b_", desc="eval sa1b")
    presence = BinaryCounts.from_labels(acc.presence_pred, acc.presence_gt)
    metrics: dict[str, Any] = {
        "counts": dict(sorted(acc.counts.items())),
        "miou": {
            "text": mean_score(acc.instance_ious, what="GT instances of positive pairs").to_json(),
            "text_semantic": mean_score(acc.semantic_ious, what="positive pairs").to_json(),
        },
        "presence": {
            **{k: v.to_json() for k, v in precision_recall_f1(presence).items()},
            "tp": presence.tp,
            "fp": presence.fp,
            "fn": presence.fn,
            "tn": presence.tn,
        },
        "saco": {k: v.to_json() for k, v in saco_metrics(acc.saco).items()},
    }
    for kind in ("point", "box"):
        if kind in params.prompt_kinds:
            metrics["miou"][kind] = mean_score(acc.geometric[kind], what=f"{kind} prompts").to_json()
            if acc.counts.get(f"sa1b_{kind}_prompts"):
                metrics.setdefault("sa1b_miou", {})[kind] = mean_score(
                    acc.geometric[f"sa1b_{kind}"], what="prompts"
                ).to_json()
    true_iou, other_iou = acc.sensitivity()
    metrics["prompt_sensitivity"] = {
        "value": prompt_sensitivity(true_iou, other_iou).to_json(),
        "comparisons": len(true_iou),
    }
    if videos is None:
        metrics["video"] = {"status": "skipped", "reason": "no video index given"}
    else:
        metrics["video"] = _video_metrics(predictor, videos, params, skips)
    if latency:
        if first:
            s = first[0]
            metrics["latency"] = measure_latency(
                predictor,
                to_input(s.image, predictor.image_size)[None],
                Prompt(kind="text", text=s.text),
                warmup=params.latency_warmup,
                runs=params.latency_runs,
            )
        else:
            metrics["latency"] = {"status": "skipped", "reason": "no text-prompt sample to time"}
    metrics["skips"] = skips.to_json()
    if predictions_dir is not None:
        out = Path(predictions_dir)
        for key, entries in sorted(acc.results.items()):
            write_json(out / f"{key}.json", entries, indent=0)
    return metrics


def evaluate_predictor(
    predictor: Predictor,
    *,
    concept_index: str | Path,
    params: EvaluateParams,
    image_index: str | Path | None = None,
    video_index: str | Path | None = None,
    predictions_dir: str | Path | None = None,
    latency: bool = True,
) -> dict[str, Any]:
    """Score ``predictor`` on the val split given by the data index files (see :func:`evaluate_samples`)."""
    skips = Skips()
    size = predictor.image_size
    concepts = concept_samples(
        concept_index,
        image_size=size,
        kinds=params.prompt_kinds,
        seed=params.seed,
        max_pairs=params.max_pairs,
        skips=skips,
    )
    geometric = tuple(k for k in params.prompt_kinds if k != "text")
    sa1b: Iterable[ConceptSample] = ()
    if image_index is not None and geometric:
        sa1b = image_samples(
            image_index,
            image_size=size,
            kinds=geometric,
            max_images=params.max_images,
            max_instances=params.max_instances_per_image,
            skips=skips,
        )
    videos = video_samples(video_index, max_videos=params.max_videos, skips=skips) if video_index is not None else None
    metrics = evaluate_samples(
        predictor,
        concepts=concepts,
        params=params,
        sa1b=sa1b,
        videos=videos,
        predictions_dir=predictions_dir,
        latency=latency,
        skips=skips,
    )
    metrics["model"] = predictor.name
    return metrics
