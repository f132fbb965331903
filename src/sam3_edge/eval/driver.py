"""The evaluation driver: one function scores any :class:`~sam3_edge.types.Predictor` the same way.

``evaluate_predictor`` (index files in, resumable) and ``evaluate_samples`` (decoded samples in) return the
metrics dict written to ``metrics/eval/<model>.json`` and, when ``predictions_dir`` is given, COCO results json
there (``text.json``, ``point.json``, ``box.json`` for SA-Co pairs with ``image_id`` = pair id;
``sa1b_point.json``, ``sa1b_box.json`` with ``image_id`` = SA-1B image id; point/box entries carry
``target_index``, the GT instance prompted). Metric definitions: ``sam3_edge.core.metrics``, ``.saco``,
``.video``. Images are resized to the predictor's ``image_size`` exactly as in training; predicted masks are
upsampled back to the annotation resolution (bilinear on logits, then ``> 0``) before scoring.

Video protocol extension: a predictor with a video path implements
``predict_video(frames: Tensor [T, 3, S, S] in [0, 1], prompt: Prompt) -> list[Prediction]`` (T predictions of
batch 1), the prompt given on frame 0 of ``frames``. Per object the driver starts the clip at the object's first
annotated visible frame, prompts it there (``video_prompt`` kind, built from that frame's GT mask), and takes per
frame the mask of the top-scored query when that score >= ``score_threshold`` (else empty: the object left).
A predictor without ``predict_video`` (the teacher's image model) is tracked by :func:`propagate_box`
(each frame prompted with the box of its own previous mask), and the block's ``video_path`` says which it was.

Resume: ``evaluate_predictor(..., resume_dir=D, resume_key=K)`` saves each finished chunk of ``chunk_size``
records as ``D/<part>.json`` tagged with ``K`` (a fingerprint of model, params and data); a restarted run merges
the parts carrying the same key and evaluates only the rest. Latency is always measured afresh.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from sam3_edge.eval.accumulate import ConceptAccumulator, upsample_masks
from sam3_edge.eval.config import EvaluateParams
from sam3_edge.eval.latency import measure_latency
from sam3_edge.eval.samples import (
    ConceptSample,
    Skips,
    VideoSample,
    concept_samples,
    image_samples,
    limit,
    prompt_from_mask,
    video_samples,
)
from sam3_edge.eval.video import j_and_f, object_j_and_f
from sam3_edge.types import Prediction, Predictor, Prompt, follow_prompt
from sam3_edge.utils import LOG, progress_disabled, read_json, write_json


def to_input(image: np.ndarray, size: int) -> torch.Tensor:
    """uint8 [H, W, 3] -> float [3, S, S] in [0, 1], exactly as training sees images (``data.datasets.resize_image``)."""
    from sam3_edge.data.datasets import resize_image

    return resize_image(image, size)


def _cpu(pred: Prediction) -> Prediction:
    return Prediction(
        mask_logits=pred.mask_logits.detach().cpu(),
        boxes=pred.boxes.detach().cpu(),
        scores=pred.scores.detach().cpu(),
        presence=pred.presence.detach().cpu().reshape(-1),
    )


def run_concepts(
    predictor: Predictor, samples: Iterable[ConceptSample], acc: ConceptAccumulator, *, source: str, desc: str
) -> None:
    """Predict every prompt of ``samples`` in batches of ``batch_size`` and add the results to ``acc``."""
    p, size = acc.p, predictor.image_size
    batch: list[tuple[ConceptSample, Prompt, int | None]] = []

    def flush() -> None:
        if not batch:
            return
        images = torch.stack([to_input(s.image, size) for s, _, _ in batch])
        with torch.inference_mode():
            pred = _cpu(predictor.predict(images, [pr for _, pr, _ in batch]))
        for b, (s, prompt, target) in enumerate(batch):
            if target is None:
                acc.add_text(s, pred, b)
            else:
                acc.add_geometric(source, s, prompt, target, pred, b)
        batch.clear()

    for s in tqdm(samples, desc=desc, disable=progress_disabled(), unit="sample", leave=False):
        if s.ask_text:
            batch.append((s, Prompt(kind="text", text=s.text), None))
        batch.extend((s, prompt, target) for prompt, target in s.geometric_prompts)
        if len(batch) >= p.batch_size:
            flush()
    flush()


VIDEO_BASELINES = ("copy_first_mask", "no_memory", "box_propagation")
# has predict_video -> how the "model" J&F is made: the model's own video path (the student's memory, the image
# teacher's tracking by detection) or, without one, propagate_box
VIDEO_PATHS = {True: "predict_video", False: "box_propagation"}


def _top_mask(pred: Prediction, shape: tuple[int, int], threshold: float) -> np.ndarray:
    """The mask of the top-scored query when its score clears ``threshold``, else empty (the object left)."""
    pr = _cpu(pred)
    scores = pr.scores[0].float()
    top = int(torch.argmax(scores)) if scores.numel() else -1
    if top < 0 or float(scores[top]) < threshold:
        return np.zeros(shape, bool)
    return upsample_masks(pr.mask_logits[0], [top], shape)[0]


def propagate_box(predictor: Predictor, frames: torch.Tensor, prompt: Prompt, threshold: float) -> list[Prediction]:
    """The image path as a tracker: frame 0 of ``frames`` [T, 3, S, S] takes ``prompt``; every later frame takes a
    box prompt around the object's mask on the frame before (the top-scored query, when it clears ``threshold``;
    the phrase rides along), and keeps the last box while the object is lost. -> T predictions.

    The reference of a model without a memory path (the teacher: SAM 3's image model tracks this way in its
    detector-tracker loop), and a baseline of every model: it needs no memory, only the model's own masks."""
    side = frames.shape[-1]
    current, preds = prompt, []
    for t in range(frames.shape[0]):
        pred = predictor.predict(frames[t : t + 1], [current])
        preds.append(pred)
        mask = _top_mask(pred, (side, side), threshold)
        if mask.any():
            current = prompt_from_mask(mask, "box", image_size=side, text=prompt.text)
    return preds


def video_objects(
    predictor: Predictor, videos: Iterable[VideoSample], p: EvaluateParams, skips: Skips
) -> dict[str, list[tuple[float, float]]]:
    """Per-object (J, F) of every object of ``videos`` (see the module docstring for the protocol), for the model
    (``"model"``: its ``predict_video``, or :func:`propagate_box` when it has none) and for the baselines,
    measured on the same objects and frames:

    - ``copy_first_mask``: the ground-truth mask of the prompted frame, copied to every later frame (no model);
    - ``no_memory``: the predictor's image path on each frame alone, the prompt on the first frame only and on
      later frames what ``predict_video`` gives them (``follow_prompt``: the phrase, nothing for a box / point);
    - ``box_propagation``: the predictor's image path prompted on each frame with the box of its own previous
      mask (:func:`propagate_box`).
    """
    track = getattr(predictor, "predict_video", None)
    out: dict[str, list[tuple[float, float]]] = {"model": [], **{b: [] for b in VIDEO_BASELINES}}
    jf_args = {"skip_first_and_last": p.skip_first_and_last, "tolerance": p.boundary_tolerance}
    for video in videos:
        frames = torch.stack([to_input(f, predictor.image_size) for f in video.frames])
        for obj in video.objects:
            where = f"{video.video_id}: object {obj.object_id}"
            annotated = sorted(obj.masks)
            visible = [t for t in annotated if obj.masks[t].any()]
            if not visible:
                skips.add("video_object_never_visible", where)
                continue
            if p.video_prompt == "text" and not obj.text:
                skips.add("video_object_without_phrase", where)
                continue
            t0 = visible[0]
            prompt = prompt_from_mask(obj.masks[t0], p.video_prompt, image_size=predictor.image_size, text=obj.text)
            evaluated = [t for t in annotated if t >= t0]
            shape = obj.masks[t0].shape
            with torch.inference_mode():
                propagated = propagate_box(predictor, frames[t0:], prompt, p.score_threshold)
                preds = propagated if track is None else track(frames[t0:], prompt)
                if len(preds) != len(frames) - t0:
                    raise ValueError(
                        f"{predictor.name}.predict_video gave {len(preds)} predictions for {len(frames) - t0}"
                    )
                alone = [
                    predictor.predict(frames[t : t + 1], [prompt if t == t0 else follow_prompt(prompt)])
                    for t in evaluated
                ]
            gt_masks = [obj.masks[t] for t in evaluated]
            jf = object_j_and_f(
                [_top_mask(preds[t - t0], shape, p.score_threshold) for t in evaluated], gt_masks, **jf_args
            )
            if jf is None:
                skips.add("video_object_too_few_frames", f"{where}: {len(evaluated)} annotated frames from the prompt")
                continue
            out["model"].append(jf)
            out["copy_first_mask"].append(object_j_and_f([obj.masks[t0]] * len(evaluated), gt_masks, **jf_args))
            no_memory = [_top_mask(pred, shape, p.score_threshold) for pred in alone]
            out["no_memory"].append(object_j_and_f(no_memory, gt_masks, **jf_args))
            boxed = [_top_mask(propagated[t - t0], shape, p.score_threshold) for t in evaluated]
            out["box_propagation"].append(object_j_and_f(boxed, gt_masks, **jf_args))
    return out


def video_block(per_object: dict[str, list[tuple[float, float]]], predictor: Predictor) -> dict[str, Any]:
    """The ``video`` block of the metrics: J, F, J_and_F, the object count and ``video_path`` (how the model's
    masks were made: its own ``predict_video`` or ``box_propagation``), then each baseline's J / F / J&F."""
    return {
        **{k: v.to_json() for k, v in j_and_f(per_object["model"]).items()},
        "objects": len(per_object["model"]),
        "video_path": VIDEO_PATHS[hasattr(predictor, "predict_video")],
        "baselines": {b: {k: v.to_json() for k, v in j_and_f(per_object[b]).items()} for b in VIDEO_BASELINES},
    }


def _finish(
    predictor: Predictor,
    acc: ConceptAccumulator,
    video: dict[str, Any],
    first: ConceptSample | None,
    params: EvaluateParams,
    predictions_dir: str | Path | None,
    latency: bool,
) -> dict[str, Any]:
    metrics = acc.metrics()
    metrics["video"] = video
    if latency and first is not None:
        image = to_input(first.image, predictor.image_size)[None]
        prompt = Prompt(kind="text", text=first.text)
        metrics["latency"] = measure_latency(
            predictor, image, prompt, warmup=params.latency_warmup, runs=params.latency_runs
        )
    elif latency:
        metrics["latency"] = {"status": "skipped", "reason": "no text-prompt sample to time"}
    metrics["skips"] = acc.skips.to_json()
    metrics["model"] = predictor.name
    if predictions_dir is not None:
        out = Path(predictions_dir)
        written = {f"{key}.json" for key in acc.results}
        for key, entries in sorted(acc.results.items()):
            write_json(out / f"{key}.json", entries, indent=0)
        for stale in out.glob("*.json"):  # from an earlier run with other prompt kinds (persisted out)
            if stale.name not in written:
                stale.unlink()
    return metrics


def evaluate_samples(
    predictor: Predictor,
    *,
    concepts: Iterable[ConceptSample],
    params: EvaluateParams,
    sa1b: Iterable[ConceptSample] = (),
    videos: Iterable[VideoSample] | None = None,
    predictions_dir: str | Path | None = None,
    latency: bool = True,
) -> dict[str, Any]:
    """Score ``predictor`` on decoded samples; returns the metrics dict (numbers, plus status/reason strings)."""
    if hasattr(predictor, "eval"):
        predictor.eval()  # type: ignore[attr-defined]
    acc = ConceptAccumulator(params)
    concepts = list(concepts)
    run_concepts(predictor, concepts, acc, source="", desc=f"eval {predictor.name}")
    run_concepts(predictor, sa1b, acc, source="sa1b_", desc="eval sa1b")
    if videos is None:
        video: dict[str, Any] = {"status": "skipped", "reason": "no video index given"}
    else:
        video = video_block(video_objects(predictor, videos, params, acc.skips), predictor)
    first = next((s for s in concepts if s.ask_text), None)
    return _finish(predictor, acc, video, first, params, predictions_dir, latency)


def _cached(resume_dir: Path | None, part: str, key: str, compute: Callable[[], dict]) -> dict:
    """``compute()`` a chunk's state, or reuse the saved one of a killed run when it carries the same key."""
    if resume_dir is None:
        return compute()
    path = resume_dir / f"{part}.json"
    if path.exists():
        try:
            saved = read_json(path)
            if saved.get("resume_key") == key:
                return saved["state"]
            LOG.info("resume: %s was made for another model/params/data; recomputing", path)
        except ValueError as err:
            LOG.warning("resume: ignoring unreadable %s (%s)", path, err)
    state = compute()
    write_json(path, {"resume_key": key, "state": state}, indent=0)
    return state


def _chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)] if items else []


def evaluate_predictor(
    predictor: Predictor,
    *,
    concept_index: str | Path,
    params: EvaluateParams,
    image_index: str | Path | None = None,
    video_index: str | Path | None = None,
    predictions_dir: str | Path | None = None,
    latency: bool = True,
    resume_dir: str | Path | None = None,
    resume_key: str = "",
) -> dict[str, Any]:
    """Score ``predictor`` on the val split given by the data index files (see the module docstring)."""
    from sam3_edge.data.datasets import load_concept_pairs, load_image_records, load_video_records

    if hasattr(predictor, "eval"):
        predictor.eval()  # type: ignore[attr-defined]
    rdir = Path(resume_dir) if resume_dir is not None else None
    size, kinds = predictor.image_size, params.prompt_kinds
    acc = ConceptAccumulator(params)

    def concept_part(chunk: list) -> dict:
        a = ConceptAccumulator(params)
        samples = concept_samples(concept_index, chunk, image_size=size, kinds=kinds, seed=params.seed, skips=a.skips)
        run_concepts(predictor, samples, a, source="", desc="pairs")
        return a.to_state()

    pairs = limit(load_concept_pairs(concept_index), params.max_pairs)
    for i, chunk in enumerate(
        tqdm(
            _chunks(pairs, params.chunk_size), desc=f"eval {predictor.name}", unit="chunk", disable=progress_disabled()
        )
    ):
        acc.merge_state(_cached(rdir, f"concepts-{i:05d}", resume_key, lambda c=chunk: concept_part(c)))

    geometric = tuple(k for k in kinds if k != "text")
    if image_index is not None and geometric:

        def image_part(chunk: list) -> dict:
            a = ConceptAccumulator(params)
            samples = image_samples(
                image_index,
                chunk,
                image_size=size,
                kinds=geometric,
                max_instances=params.max_instances_per_image,
                skips=a.skips,
            )
            run_concepts(predictor, samples, a, source="sa1b_", desc="sa1b images")
            return a.to_state()

        records = limit(load_image_records(image_index), params.max_images)
        for i, chunk in enumerate(_chunks(records, params.chunk_size)):
            acc.merge_state(_cached(rdir, f"sa1b-{i:05d}", resume_key, lambda c=chunk: image_part(c)))

    if video_index is None:
        video: dict[str, Any] = {"status": "skipped", "reason": "no video index given"}
    else:

        def video_part(rec: Any) -> dict:
            skips = Skips()
            objects = video_objects(predictor, video_samples(video_index, [rec], skips=skips), params, skips)
            return {"objects": {k: [list(o) for o in v] for k, v in objects.items()}, "skips": skips.to_json()}

        per_object: dict[str, list[tuple[float, float]]] = {"model": [], **{b: [] for b in VIDEO_BASELINES}}
        videos = limit(load_video_records(video_index), params.max_videos)
        for i, rec in enumerate(tqdm(videos, desc="video", unit="clip", disable=progress_disabled())):
            state = _cached(rdir, f"video-{i:05d}", resume_key, lambda r=rec: video_part(r))
            if set(state["objects"]) != set(per_object):  # a part saved by code with other baselines
                state = video_part(rec)
            for k, objects in state["objects"].items():
                per_object[k] += [tuple(o) for o in objects]  # type: ignore[misc]
            acc.skips.counts.update(state["skips"])
        video = video_block(per_object, predictor)

    first = None
    if latency and pairs:
        probe = Skips()
        first = next(
            concept_samples(concept_index, pairs[:1], image_size=size, kinds=("text",), seed=0, skips=probe), None
        )
    return _finish(predictor, acc, video, first, params, predictions_dir, latency)
