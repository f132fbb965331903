"""SA-Co fine-tune (text prompts, negatives through the presence loss) and the optional QAT stage (torchao)."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sam3_edge.core.losses import LossWeights
from sam3_edge.models.encoders import build_tokenizer
from sam3_edge.models.student import Student
from sam3_edge.train.config import IMAGE_PARTS, FinetuneParams, PhraseSetParams, QatParams
from sam3_edge.train.loop import FINAL, LoopResult, TrainRun, run_loop
from sam3_edge.train.phases import (
    _add_phrase_set,
    _init_student,
    add_phrase_adapter,
    gt_loss,
    phrase_batches,
    student_forward,
    with_phrase_set,
)

LOG = logging.getLogger(__name__)


class GroupBatches:
    """Deterministic per-step batches: ``batch_size`` SA-Co train images, ``prompts_per_image`` prompts on each.

    The image encoder runs once per image and the prompts share its features (``student_forward`` with
    ``image_index``), as in the bootstrap teacher's recipe: positive and negative phrases of one image in the same
    step are what teaches the presence head and the text conditioning (one prompt per image did not learn).
    Point / box prompts drawn on a negative pair fall back to its phrase (``draw_prompt``).
    """

    def __init__(
        self,
        index_file: str | Path,
        *,
        image_size: int,
        mask_size: int,
        max_pairs: int,
        prompts_per_image: int,
        prompt_mix: dict[str, float],
        seed: int,
    ) -> None:
        from sam3_edge.data.groups import load_groups

        self.groups = load_groups(index_file, image_size=image_size, mask_size=mask_size, max_pairs=max_pairs)
        self.n = sum(len(g.pairs) for g in self.groups)
        self.negatives = sum(1 for g in self.groups for p in g.pairs if p.negative)
        self.image_size = image_size
        self.prompts_per_image = prompts_per_image
        self.prompt_mix = prompt_mix
        self.seed = seed

    @classmethod
    def from_params(cls, index_file: str | Path, params: FinetuneParams | QatParams, image_size: int) -> GroupBatches:
        """The batches a fine-tune / QAT stage with ``params`` trains on (also what the step profiler replays)."""
        return cls(
            index_file,
            image_size=image_size,
            mask_size=params.optim.mask_size,
            max_pairs=params.max_pairs,
            prompts_per_image=params.prompts_per_image,
            prompt_mix=params.prompt_mix,
            seed=params.optim.seed,
        )

    def __call__(self, step: int, batch_size: int, rank: int, world_size: int) -> dict[str, Any]:
        from sam3_edge.data.groups import sample_group_prompts

        rng = np.random.default_rng([self.seed, step])
        total = batch_size * world_size
        picks = rng.choice(len(self.groups), size=total, replace=len(self.groups) < total)
        # every rank draws the global batch (same rng stream), then keeps its share: a 2-rank step sees the
        # same images and prompts as a 1-rank step of twice the batch
        images, prompts, index, masks, boxes = sample_group_prompts(
            self.groups,
            picks,
            prompts_per_image=self.prompts_per_image,
            prompt_mix=self.prompt_mix,
            rng=rng,
            image_size=self.image_size,
        )
        mine = {slot: k for k, slot in enumerate(range(rank, total, world_size))}  # global slot -> local
        keep = [i for i, slot in enumerate(index) if slot in mine]
        return {
            "image": images[list(mine)],
            "image_index": torch.tensor([mine[index[i]] for i in keep], dtype=torch.long),
            "prompts": [prompts[i] for i in keep],
            "gt_masks": [masks[i] for i in keep],
            "gt_boxes": [boxes[i] for i in keep],
        }


def _gt_loss_fn(weights: LossWeights, mask_size: int, tokenizer, phrase_set: PhraseSetParams | None = None):
    """The GT set criterion on the grouped pairs, + the weighted phrase-set loss of ``batch["phrase_set"]``."""

    def loss_fn(model: Student, extra: nn.ModuleDict, batch: dict) -> dict[str, torch.Tensor]:
        out = student_forward(model, batch["image"], batch["prompts"], tokenizer, image_index=batch["image_index"])
        terms = gt_loss(out, batch, weights, mask_size)
        terms["total"] = _add_phrase_set(model, extra, batch, phrase_set, tokenizer, terms, terms["total"])
        return terms

    return loss_fn


def _train_on_pairs(
    stage: str,
    student: Student,
    index_file,
    params: FinetuneParams | QatParams,
    trainable: tuple[str, ...],
    run: TrainRun,
    *,
    phrase_set: PhraseSetParams | None = None,
    phrase_cache: Any | None = None,
) -> tuple[Any, GroupBatches]:
    """Train ``trainable`` on the grouped SA-Co pairs; ``phrase_set`` (weight > 0) adds the phrase-set distillation
    on ``phrase_cache`` at every step (the fine-tune; QAT passes none and trains on the GT pairs only)."""
    optim = params.optim
    data = GroupBatches.from_params(index_file, params, student.config.image_size)
    tokenizer = build_tokenizer(student.config.context_length)
    phrases = phrase_batches(student, phrase_cache, phrase_set, optim.seed) if phrase_set is not None else None
    extra = nn.ModuleDict()
    add_phrase_adapter(extra, student, phrases)

    def batch_fn(step: int, rank: int, world: int) -> dict:
        return with_phrase_set(data(step, optim.batch_size, rank, world), phrases, phrase_set, step, rank, world)

    result = run_loop(
        stage=stage,
        student=student,
        trainable=trainable,
        loss_fn=_gt_loss_fn(params.loss, optim.mask_size, tokenizer, phrase_set),
        batch_fn=batch_fn,
        optim=optim,
        run=run,
        extra=extra,
    )
    return result, data


def _metrics(result: LoopResult, data: GroupBatches) -> dict[str, Any]:
    return result.metrics(
        pairs=data.n, negative_pairs=data.negatives, images=len(data.groups), prompts_per_image=data.prompts_per_image
    )


def finetune_saco(
    student: Student, index_file: str | Path, params: FinetuneParams, run: TrainRun, *, phrase_cache: Any | None = None
) -> dict[str, Any]:
    """Fine-tune ``params.trainable`` parts on the SA-Co train images (grouped prompts) with the GT set criterion,
    + the grouped phrase-set distillation on the unlabeled distill images (``phrase_cache``) when
    ``params.phrase_set.weight`` > 0."""
    _init_student(student, run.init_from)
    result, data = _train_on_pairs(
        "finetune_saco",
        student,
        index_file,
        params,
        params.trainable,
        run,
        phrase_set=params.phrase_set,
        phrase_cache=phrase_cache,
    )
    metrics = _metrics(result, data)
    metrics["phrase_set_weight"] = params.phrase_set.weight
    return metrics


def _qat_base_config(params: QatParams):
    from torchao.quantization import Int8DynamicActivationIntxWeightConfig, Int8WeightOnlyConfig
    from torchao.quantization.granularity import PerGroup

    if params.scheme == "8da4w":
        return Int8DynamicActivationIntxWeightConfig(
            weight_dtype=torch.int4, weight_granularity=PerGroup(params.group_size)
        )
    return Int8WeightOnlyConfig()


def qat_filter(group_size: int):
    """Linear layers torchao can fake-quantize: in_features divisible by the group; not MHA's out_proj (the
    open_clip text tower's ``nn.MultiheadAttention`` reads that weight directly)."""

    def keep(module: nn.Module, fqn: str) -> bool:
        return isinstance(module, nn.Linear) and module.in_features % group_size == 0 and not fqn.endswith("out_proj")

    return keep


def qat(student: Student, index_file: str | Path, params: QatParams, run: TrainRun) -> dict[str, Any]:
    """torchao ``QATConfig`` prepare -> train (fake-quant) -> convert; saves the QAT-trained float weights.

    The checkpoint holds plain float weights (same keys as the student) trained under fake quantization, so
    the deploy stage quantizes them with the same scheme. Convert is run here to check it works and to record
    how far the converted model's outputs are from the fake-quantized ones.
    """
    from torchao.quantization import quantize_
    from torchao.quantization.qat import QATConfig

    from sam3_edge.core.checkpoint import save_checkpoint

    if run.init_from is None:
        raise ValueError("qat fine-tunes a trained student: its run needs init_from (the fine-tuned checkpoint)")
    _init_student(student, run.init_from)
    if not params.enabled:
        return {"status": "skipped", "reason": "qat.enabled is false"}
    base = _qat_base_config(params)
    keep = qat_filter(params.group_size)
    wrapped = [n for n, m in student.named_modules() if keep(m, n)]
    quantize_(student, QATConfig(base, step="prepare"), filter_fn=keep)
    result, data = _train_on_pairs(
        "qat", student, index_file, params, IMAGE_PARTS, replace(run, out_dir=Path(run.out_dir) / "train")
    )
    float_student = Student(config=student.config)
    float_student.load_state_dict(student.state_dict(), strict=True)
    metrics = _metrics(result, data)
    ex = student.example_inputs(1)
    student.eval()
    with torch.no_grad():
        fake = student(**ex)["mask_logits"]
        quantize_(student, QATConfig(base, step="convert"), filter_fn=keep)
        quantized = student(**ex)["mask_logits"]
    converted = sum(
        1 for m in student.modules() if isinstance(m, nn.Linear) and type(m.weight.data) is not torch.Tensor
    )
    metrics.update(
        scheme=params.scheme,
        group_size=params.group_size,
        fake_quantized_linears=len(wrapped),
        converted_linears=converted,
        convert_max_abs_diff=float((fake - quantized).abs().max()),
        fake_quant_mask_logit_abs_mean=float(fake.abs().mean()),
    )
    if run.dist is None or run.dist.is_main:
        save_checkpoint(
            Path(run.out_dir) / FINAL,
            model=float_student,
            model_config=student.config.to_json(),
            step=result.steps,
            epoch=0,
            params_hash=run.params_hash,
            stage="qat",
            meta={"qat_scheme": params.scheme, "group_size": params.group_size, "quantized_modules": wrapped},
        )
    return metrics
