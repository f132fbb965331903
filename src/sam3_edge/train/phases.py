"""Phase 1 (feature alignment) and phase 2 (output refinement) distillation from the teacher cache.

Neither phase imports or loads the teacher: everything teacher-side comes from the cache (tested by making
``sam3_edge.teacher`` unimportable). Entry points return a metrics dict; the stages write it.
"""

from __future__ import annotations

import logging
import math
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sam3_edge.core.losses import LossWeights, set_prediction_loss
from sam3_edge.models.encoders import build_tokenizer
from sam3_edge.models.prompts import prepare_prompts
from sam3_edge.models.student import Student
from sam3_edge.train.config import IMAGE_PARTS, Phase1Params, Phase2Params
from sam3_edge.train.data import CachedBatches, MixSampler
from sam3_edge.train.distill_losses import (
    embedding_alignment_loss,
    feature_alignment_loss,
    output_distill_loss,
    tokens_to_map,
)
from sam3_edge.train.distributed import DistInfo
from sam3_edge.train.loop import LoopResult, run_loop
from sam3_edge.types import Prompt
from sam3_edge.utils import masked_mean, resize_logits

LOG = logging.getLogger(__name__)


def student_forward(
    student: Student, images: torch.Tensor, prompts: list, tokenizer, *, image_index: torch.Tensor | None = None
) -> dict:
    """Run the student on images [I, 3, S, S] with B prompts in pixels of S.

    ``image_index`` [B] int64 names the image of each prompt: the image encoder runs once per image and its
    features are shared by that image's prompts. None = one prompt per image (B = I).
    """
    pt = prepare_prompts(prompts, tokenizer=tokenizer, max_points=student.config.max_points)
    pt = pt.to(images.device)
    index = None if image_index is None else image_index.to(images.device)
    return student(images, pt.token_ids, pt.points, pt.box, pt.box_valid, image_index=index)


def contrast_presence_loss(student: Student, out: dict, batch: dict, tokenizer, count: int) -> torch.Tensor | None:
    """Presence BCE of up to ``count`` other phrases of each sample's image over that sample's image features.

    ``out`` is the student's output on the batch (its ``fpn`` is per sample); ``batch["image_phrases"]`` lists the
    (phrase, positive) pairs of each sample's image. The phrases are drawn from the batch keys (resumable). None
    when no sample's image has another phrase.
    """
    rng = np.random.default_rng(zlib.crc32("|".join(batch["keys"]).encode()))
    prompts, slots, targets = [], [], []
    for slot, phrases in enumerate(batch["image_phrases"]):
        for j in rng.permutation(len(phrases))[:count]:
            text, positive = phrases[j]
            prompts.append(Prompt(kind="text", text=text))
            slots.append(slot)
            targets.append(float(positive))
    if not prompts:
        return None
    device = out["presence_logit"].device
    pt = prepare_prompts(prompts, tokenizer=tokenizer, max_points=student.config.max_points).to(device)
    index = torch.tensor(slots, device=device)
    text, valid = student.encode_text(pt.token_ids)
    prompt, vec = student.encode_prompt(text, valid, pt.points, pt.box, pt.box_valid)
    _, dec = student.detect([level[index] for level in out["fpn"]], prompt, vec)  # presence only: no masks
    return F.binary_cross_entropy_with_logits(dec["presence_logit"], torch.tensor(targets, device=device))


def gt_loss(out: dict, batch: dict, weights: LossWeights, mask_size: int) -> dict[str, torch.Tensor]:
    """The teacher's set-prediction criterion against the GT of the batch (masks compared at ``mask_size``).

    Finer predictions are resized down to ``mask_size``; coarser ones stay as they are, and the criterion
    upsamples only the matched queries (``sam3_edge.core.losses.set_prediction_loss``).
    """
    masks, semantic = out["mask_logits"], out["semantic_logits"]
    if masks.shape[-1] > mask_size:
        masks, semantic = resize_logits(masks, mask_size), resize_logits(semantic, mask_size)
    return set_prediction_loss(
        mask_logits=masks,
        boxes=out["boxes"],
        class_logits=out["class_logits"],
        presence_logits=out["presence_logit"],
        target_masks=batch["gt_masks"],
        target_boxes=batch["gt_boxes"],
        semantic_logits=semantic[:, 0],
        weights=weights,
    )


def _level_for(student_sides: list[int], student_size: int, teacher_side: int, teacher_size: int) -> int:
    """Student FPN level whose relative resolution is closest (in log) to the teacher level's."""
    rel = teacher_side / teacher_size
    return min(range(len(student_sides)), key=lambda i: abs(math.log(student_sides[i] / student_size / rel)))


def build_adapters(student: Student, cache: Any) -> tuple[nn.ModuleDict, dict[str, int]]:
    """1x1 adapters student dim -> teacher channels for each cached ``fpn_*``, the ``encoder`` tokens and ``text``."""
    sample = cache.load(cache.keys()[0])
    d = student.config.dim
    s = student.config.image_size
    sides = [-(-s // (4 * 2**i)) for i in range(4)]
    adapters = nn.ModuleDict()
    levels: dict[str, int] = {}
    for name, t in sorted(sample.items()):
        if name.startswith("fpn_"):
            adapters[name] = nn.Conv2d(d, t.shape[0], 1)
            levels[name] = _level_for(sides, s, t.shape[-1], int(cache.manifest["image_size"]))
    if "encoder" in sample:
        adapters["encoder"] = nn.Linear(d, sample["encoder"].shape[-1])
    if "text" in sample:  # caches written before the text embedding was cached lack it
        adapters["text"] = nn.Linear(d, sample["text"].shape[-1])
    LOG.info("feature adapters (teacher name -> student FPN level): %s", levels)
    return adapters, levels


def feature_loss(out: dict, teacher: dict, adapters: nn.ModuleDict, levels: dict[str, int]) -> dict[str, torch.Tensor]:
    terms: dict[str, torch.Tensor] = {}
    fpn = [feature_alignment_loss(adapters[n](out["fpn"][lv]), teacher[n]) for n, lv in levels.items()]
    terms["align_fpn"] = torch.stack(fpn).mean() if fpn else out["mask_logits"].sum() * 0
    if "encoder" in adapters:
        t = tokens_to_map(teacher["encoder"])
        terms["align_encoder"] = feature_alignment_loss(tokens_to_map(adapters["encoder"](out["encoder"])), t)
    if "text" in adapters:
        phrase = masked_mean(out["text_tokens"], out["text_valid"])  # [B, D], as the teacher's cached `text`
        terms["align_text"] = embedding_alignment_loss(adapters["text"](phrase), teacher["text"])
    return terms


def _init_student(student: Student, init_from: str | Path | None) -> None:
    if init_from is None:
        return
    from sam3_edge.core.checkpoint import load_checkpoint

    ckpt = load_checkpoint(init_from)
    if ckpt.model_config != student.config.to_json():
        raise ValueError(f"{init_from}: checkpoint is a {ckpt.model_config.get('name')} student with another config")
    student.load_state_dict(ckpt.model_state, strict=True)
    LOG.info("initialised student from %s (stage %s, step %d)", init_from, ckpt.stage, ckpt.step)


def _metrics(result: LoopResult, sampler: MixSampler, batches: CachedBatches, extra: dict | None = None) -> dict:
    return {
        "steps": result.steps,
        "resumed_from_step": result.resumed_from,
        "final_losses": result.final_losses,
        "samples_per_s": result.samples_per_s,
        "wall_s": result.wall_s,
        "data_s_per_step": result.data_s_per_step,
        "compute_s_per_step": result.compute_s_per_step,
        "prompt_mix_skipped": sampler.skipped,
        "cache_samples": len(sampler.keys),
        **(extra or {}),
    }


def _prepare(
    student: Student, cache: Any, mix: dict[str, float], mask_size: int, seed: int, *, with_phrases: bool = False
):
    batches = CachedBatches(cache, image_size=student.config.image_size, mask_size=mask_size, with_phrases=with_phrases)
    keys = cache.keys()
    sampler = MixSampler(keys=keys, kinds=batches.kinds(keys), mix=mix, seed=seed)
    return batches, sampler


def distill_phase1(
    student: Student,
    cache: Any,
    params: Phase1Params,
    *,
    out_dir: str | Path,
    params_hash: str,
    dist: DistInfo | None = None,
    on_log=None,
    stop_after: int | None = None,
) -> dict[str, Any]:
    """Align student features with the teacher's cached FPN levels, DETR-encoder tokens and phrase embeddings."""
    o = params.optim
    batches, sampler = _prepare(student, cache, params.prompt_mix, o.mask_size, o.seed)
    adapters, levels = build_adapters(student, cache)
    tokenizer = build_tokenizer(student.config.context_length)

    def loss_fn(model: Student, extra: nn.ModuleDict, batch: dict) -> dict[str, torch.Tensor]:
        out = student_forward(model, batch["image"], batch["prompts"], tokenizer)
        terms = feature_loss(out, batch["teacher"], extra, levels)
        total = (
            params.fpn_weight * terms["align_fpn"]
            + params.encoder_weight * terms.get("align_encoder", 0.0)
            + params.text_weight * terms.get("align_text", 0.0)
        )
        if params.gt_weight > 0:
            gt = gt_loss(out, batch, params.loss, o.mask_size)
            terms.update({f"gt_{k}": v for k, v in gt.items()})
            total = total + params.gt_weight * gt["total"]
        return {**terms, "total": total}

    result = run_loop(
        stage="distill_phase1",
        student=student,
        trainable=IMAGE_PARTS,
        loss_fn=loss_fn,
        batch_fn=lambda step, rank, world: batches.load(sampler.batch(step, o.batch_size, rank=rank, world_size=world)),
        optim=o,
        out_dir=out_dir,
        params_hash=params_hash,
        extra=adapters,
        dist=dist,
        on_log=on_log,
        stop_after=stop_after,
    )
    return _metrics(result, sampler, batches, {"feature_levels": levels})


def distill_phase2(
    student: Student,
    cache: Any,
    params: Phase2Params,
    *,
    out_dir: str | Path,
    params_hash: str,
    init_from: str | Path | None = None,
    dist: DistInfo | None = None,
    on_log=None,
    stop_after: int | None = None,
) -> dict[str, Any]:
    """Refine outputs: teacher logit distillation + GT set loss (+ a small feature-alignment regulariser)."""
    o = params.optim
    _init_student(student, init_from)
    batches, sampler = _prepare(
        student, cache, params.prompt_mix, o.mask_size, o.seed, with_phrases=params.contrast_phrases > 0
    )
    adapters, levels = build_adapters(student, cache)
    if init_from is not None:  # phase-1 adapters continue, when the checkpoint carries them
        from sam3_edge.core.checkpoint import load_checkpoint

        saved = load_checkpoint(init_from).extra_state
        if saved and set(saved) == set(adapters.state_dict()):
            adapters.load_state_dict(saved, strict=True)
    tokenizer = build_tokenizer(student.config.context_length)

    def loss_fn(model: Student, extra: nn.ModuleDict, batch: dict) -> dict[str, torch.Tensor]:
        out = student_forward(model, batch["image"], batch["prompts"], tokenizer)
        t = batch["teacher"]
        kd = output_distill_loss(
            mask_logits=resize_logits(out["mask_logits"], o.mask_size),
            boxes=out["boxes"],
            class_logits=out["class_logits"],
            presence_logits=out["presence_logit"],
            teacher_mask_logits=t["mask_logits"],
            teacher_boxes=t["boxes"],
            teacher_class_logits=t["class_logits"],
            teacher_presence_logits=t["presence_logit"],
            score_threshold=params.teacher_score_threshold,
            temperature=params.temperature,
            matcher=params.loss.matcher,
        )
        w = params.loss
        kd_total = (
            w.mask_bce * kd["kd_mask"]
            + w.box_l1 * kd["kd_box"]
            + w.cls * kd["kd_class"]
            + w.presence * kd["kd_presence"]
        )
        gt = gt_loss(out, batch, params.loss, o.mask_size)
        total = params.gt_weight * gt["total"] + params.distill_weight * kd_total
        terms = {**kd, **{f"gt_{k}": v for k, v in gt.items()}}
        if params.contrast_phrases > 0:
            contrast = contrast_presence_loss(model, out, batch, tokenizer, params.contrast_phrases)
            if contrast is not None:
                terms["contrast_presence"] = contrast
                total = total + params.gt_weight * params.loss.presence * contrast
        if params.feature_weight > 0:
            feat = feature_loss(out, t, extra, levels)
            terms.update(feat)
            total = total + params.feature_weight * sum(feat.values())
        return {**terms, "total": total}

    result = run_loop(
        stage="distill_phase2",
        student=student,
        trainable=IMAGE_PARTS,
        loss_fn=loss_fn,
        batch_fn=lambda step, rank, world: batches.load(sampler.batch(step, o.batch_size, rank=rank, world_size=world)),
        optim=o,
        out_dir=out_dir,
        params_hash=params_hash,
        extra=adapters,
        dist=dist,
        on_log=on_log,
        stop_after=stop_after,
    )
    return _metrics(result, sampler, batches)
