"""Phase 1 (feature alignment) and phase 2 (output refinement) distillation from the teacher cache.

Neither phase imports or loads the teacher: everything teacher-side comes from the cache (tested by making
``sam3_edge.teacher`` unimportable). Entry points return a metrics dict; the stages write it.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sam3_edge.core.losses import LossWeights, set_prediction_loss
from sam3_edge.models.encoders import build_tokenizer
from sam3_edge.models.prompts import prepare_prompts
from sam3_edge.models.student import Student
from sam3_edge.train.config import IMAGE_PARTS, Phase1Params, Phase2Params, PhraseSetParams
from sam3_edge.train.data import CachedBatches, MixSampler, PhraseBatches
from sam3_edge.train.distill_losses import (
    embedding_alignment_loss,
    feature_alignment_loss,
    output_distill_loss,
    phrase_contrast_loss,
    phrase_set_distill_loss,
    tokens_to_map,
)
from sam3_edge.train.loop import LoopResult, TrainRun, run_loop
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


def phrase_set_loss(
    student: Student, batch: dict, params: PhraseSetParams, tokenizer, text_adapter: nn.Module | None = None
) -> dict[str, torch.Tensor]:
    """The student on a :class:`PhraseBatches` batch (image features shared by each image's phrases; the DETR part
    only, no masks) against the teacher's phrase-set outputs, + the phrase contrast of the text tower against the
    teacher's vocabulary embeddings (through ``text_adapter``). Returns the ``ps_*`` terms and their weighted
    ``ps_total``."""
    device = batch["image"].device
    pt = prepare_prompts(batch["prompts"], tokenizer=tokenizer, max_points=student.config.max_points).to(device)
    fpn = student.image_encoder(batch["image"])
    index = batch["image_index"].to(device)
    text, valid = student.encode_text(pt.token_ids)
    prompt = student.encode_prompt(text, valid, pt.points, pt.box, pt.box_valid)
    _, dec = student.detect(fpn, prompt, image_index=index)
    t = batch["teacher"]
    terms = phrase_set_distill_loss(
        presence_logits=dec["presence_logit"],
        class_logits=dec["class_logits"],
        boxes=dec["boxes"],
        group=batch["group"].to(device),
        teacher_presence_logits=t["presence_logit"].to(device),
        teacher_class_logits=t["class_logits"].to(device),
        teacher_boxes=t["boxes"].to(device),
        temperature=params.temperature,
        score_threshold=params.score_threshold,
    )
    terms["ps_total"] = (
        params.presence_weight * terms["ps_presence"]
        + params.rank_weight * terms["ps_rank"]
        + params.class_weight * terms["ps_class"]
        + params.box_weight * terms["ps_box"]
    )
    if text_adapter is not None and batch.get("vocab_text") is not None:
        ids = tokenizer(batch["vocab_phrases"]).long().to(device)
        tokens, tvalid = student.encode_text(ids)
        phrase = text_adapter(masked_mean(tokens, tvalid))
        terms["ps_text"] = phrase_contrast_loss(phrase, batch["vocab_text"].to(device), tau=params.text_tau)
        terms["ps_total"] = terms["ps_total"] + params.text_weight * terms["ps_text"]
    return terms


def phrase_batches(student: Student, phrase_cache: Any | None, params: PhraseSetParams, seed: int):
    """The phrase-set batches of a stage, or None when its ``phrase_set.weight`` is 0."""
    if params.weight <= 0:
        return None
    if phrase_cache is None:
        raise ValueError("phrase_set.weight > 0 needs the phrase-set cache (stage cache_phrases, --phrase-cache)")
    return PhraseBatches(
        phrase_cache,
        image_size=student.config.image_size,
        phrases=params.phrases_per_image,
        positive_fraction=params.positive_fraction,
        seed=seed,
        vocab_phrases=params.text_phrases if params.text_weight > 0 else 0,
    )


def add_phrase_adapter(adapters: nn.ModuleDict, student: Student, phrases: PhraseBatches | None) -> None:
    """The phrase-contrast adapter (student dim -> the teacher's text dim), when the stage distils a phrase set."""
    if phrases is None or not phrases.vocab_phrases:
        return
    _, text = phrases.vocabulary(0, 2)
    adapters["phrase_text"] = nn.Linear(student.config.dim, text.shape[-1])


def with_phrase_set(batch: dict, phrases, params: PhraseSetParams | None, step: int, rank: int, world: int) -> dict:
    """``batch`` + the step's phrase-set batch under ``"phrase_set"`` (``phrases`` None: unchanged)."""
    if phrases is not None:
        batch["phrase_set"] = phrases.batch(step, params.images_per_step, rank=rank, world_size=world)
    return batch


def _batch_fn(batches: CachedBatches, sampler: MixSampler, batch_size: int, phrases, params: PhraseSetParams):
    def fn(step: int, rank: int, world: int) -> dict:
        batch = batches.load(sampler.batch(step, batch_size, rank=rank, world_size=world))
        return with_phrase_set(batch, phrases, params, step, rank, world)

    return fn


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
    # compared as configs: a checkpoint written before a config field existed holds that field's default
    if type(student.config).from_json(ckpt.model_config) != student.config:
        raise ValueError(f"{init_from}: checkpoint is a {ckpt.model_config.get('name')} student with another config")
    student.load_state_dict(ckpt.model_state, strict=True)
    LOG.info("initialised student from %s (stage %s, step %d)", init_from, ckpt.stage, ckpt.step)


def _metrics(result: LoopResult, sampler: MixSampler, **extra: Any) -> dict:
    return result.metrics(prompt_mix_skipped=sampler.skipped, cache_samples=len(sampler.keys), **extra)


def _add_phrase_set(model, extra, batch: dict, ps_params, tokenizer, terms: dict, total):
    """``total`` + the weighted grouped phrase-set loss of ``batch`` (its terms go into ``terms``), when present."""
    if "phrase_set" not in batch:
        return total
    adapter = extra["phrase_text"] if "phrase_text" in extra else None
    ps = phrase_set_loss(model, batch["phrase_set"], ps_params, tokenizer, adapter)
    terms.update(ps)
    return total + ps_params.weight * ps["ps_total"]


def _prepare(student: Student, cache: Any, mix: dict[str, float], mask_size: int, seed: int):
    batches = CachedBatches(cache, image_size=student.config.image_size, mask_size=mask_size)
    keys = cache.keys()
    sampler = MixSampler(keys=keys, kinds=batches.kinds(keys), mix=mix, seed=seed)
    return batches, sampler


def distill_phase1(
    student: Student, cache: Any, params: Phase1Params, run: TrainRun, *, phrase_cache: Any | None = None
) -> dict[str, Any]:
    """Align student features with the teacher's cached FPN levels, DETR-encoder tokens and phrase embeddings
    (+ the grouped phrase-set distillation when ``params.phrase_set.weight`` > 0)."""
    o = params.optim
    _init_student(student, run.init_from)
    batches, sampler = _prepare(student, cache, params.prompt_mix, o.mask_size, o.seed)
    phrases = phrase_batches(student, phrase_cache, params.phrase_set, o.seed)
    adapters, levels = build_adapters(student, cache)
    add_phrase_adapter(adapters, student, phrases)
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
        total = _add_phrase_set(model, extra, batch, params.phrase_set, tokenizer, terms, total)
        return {**terms, "total": total}

    result = run_loop(
        stage="distill_phase1",
        student=student,
        trainable=IMAGE_PARTS,
        loss_fn=loss_fn,
        batch_fn=_batch_fn(batches, sampler, o.batch_size, phrases, params.phrase_set),
        optim=o,
        run=run,
        extra=adapters,
    )
    return _metrics(result, sampler, feature_levels=levels)


def distill_phase2(
    student: Student, cache: Any, params: Phase2Params, run: TrainRun, *, phrase_cache: Any | None = None
) -> dict[str, Any]:
    """Refine outputs: teacher logit distillation + GT set loss (+ a small feature-alignment regulariser, + the
    grouped phrase-set distillation when ``params.phrase_set.weight`` > 0)."""
    o = params.optim
    init_from = run.init_from
    _init_student(student, init_from)
    batches, sampler = _prepare(student, cache, params.prompt_mix, o.mask_size, o.seed)
    phrases = phrase_batches(student, phrase_cache, params.phrase_set, o.seed)
    adapters, levels = build_adapters(student, cache)
    add_phrase_adapter(adapters, student, phrases)
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
        total = _add_phrase_set(model, extra, batch, params.phrase_set, tokenizer, terms, total)
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
        batch_fn=_batch_fn(batches, sampler, o.batch_size, phrases, params.phrase_set),
        optim=o,
        run=run,
        extra=adapters,
    )
    return _metrics(result, sampler)
