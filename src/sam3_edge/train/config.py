"""Params of the student training stages: ``distill_phase1``, ``distill_phase2``, ``distill_video``,
``finetune_saco`` and ``qat`` (one section each; the architecture lives in the ``student`` section)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sam3_edge.config import check
from sam3_edge.core.losses import LossWeights
from sam3_edge.models.student import PARTS, VIDEO_PARTS

# the student's image-model parts (the trainable default of the image stages): every part but the video memory
IMAGE_PARTS = tuple(p for p in PARTS if p not in VIDEO_PARTS)


@dataclass(frozen=True)
class OptimParams:
    """Shared loop knobs. ``steps`` counts optimizer steps; a global batch is ``batch_size`` x world size."""

    steps: int = 100
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 10
    grad_clip: float = 1.0
    checkpoint_every: int = 50  # steps between resume checkpoints (a killed run redoes at most this many)
    log_every: int = 10
    seed: int = 0
    mask_size: int = 32  # masks are compared at this side (GT and teacher masks are resized to it)
    min_lr_ratio: float = 0.1  # the cosine after warmup ends at lr x this (at steps - cooldown_steps)
    cooldown_steps: int = 0  # the last steps: a second cosine from lr x min_lr_ratio down to lr x final_lr_ratio
    final_lr_ratio: float = 0.01

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "checkpoint_every", "log_every", "mask_size"):
            check(getattr(self, name) > 0, name, "must be > 0")
        check(0.0 <= self.min_lr_ratio <= 1.0, "min_lr_ratio", "must be in [0, 1]")
        check(0.0 <= self.final_lr_ratio <= self.min_lr_ratio, "final_lr_ratio", "must be in [0, min_lr_ratio]")
        check(
            self.cooldown_steps == 0 or 0 < self.cooldown_steps <= self.steps - self.warmup_steps,
            "cooldown_steps",
            "must be in [0, steps - warmup_steps]",
        )
        check(self.lr > 0, "lr", "must be > 0")
        check(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        check(self.warmup_steps >= 0, "warmup_steps", "must be >= 0")
        check(self.grad_clip >= 0, "grad_clip", "must be >= 0 (0 = no clipping)")


def _check_mix(mix: dict[str, float]) -> None:
    check(set(mix) <= {"text", "point", "box"}, "prompt_mix", f"keys must be text, point, box, got {sorted(mix)}")
    check(all(v >= 0 for v in mix.values()) and sum(mix.values()) > 0, "prompt_mix", "weights >= 0, positive sum")
    check(abs(sum(mix.values()) - 1.0) <= 1e-6, "prompt_mix", f"shares must sum to 1, got {sum(mix.values()):g}")


@dataclass(frozen=True)
class PhraseSetParams:
    """Grouped multi-phrase distillation from the phrase-set cache (stage ``cache_phrases``).

    Each step draws ``images_per_step`` unlabeled images and ``phrases_per_image`` phrases on each (up to
    ``positive_fraction`` of them phrases the teacher finds present, the rest absent ones), runs the student on
    all of them over shared image features and distils the teacher's probabilities, negatives included
    (``sam3_edge.train.distill_losses.phrase_set_distill_loss``).
    """

    weight: float = 0.0  # 0 = off (no phrase-set cache needed)
    images_per_step: int = 4
    phrases_per_image: int = 8
    positive_fraction: float = 0.5
    temperature: float = 2.0  # soft targets sigmoid(teacher / T) and softmax over an image's phrases at T
    presence_weight: float = 5.0  # per-phrase presence BCE against the teacher's probability
    rank_weight: float = 1.0  # KL between the teacher's and the student's presence softmax over an image's phrases
    class_weight: float = 2.0  # per-query class BCE (student queries matched to the teacher's by box)
    box_weight: float = 5.0  # L1 of matched boxes
    score_threshold: float = 0.5  # teacher queries with sigmoid(class) x sigmoid(presence) >= this are matched
    # phrase contrast: the student's phrase embeddings (text tower, pooled, through an adapter) must pick out the
    # teacher's embedding of the same phrase among text_phrases vocabulary phrases (InfoNCE both ways at
    # text_tau). Unlike an MSE through a free adapter it cannot be met by phrases collapsed onto one vector.
    text_weight: float = 1.0
    text_phrases: int = 256
    text_tau: float = 0.07

    def __post_init__(self) -> None:
        for name in ("weight", "presence_weight", "rank_weight", "class_weight", "box_weight", "text_weight"):
            check(getattr(self, name) >= 0, name, "must be >= 0")
        for name in ("images_per_step", "phrases_per_image"):
            check(getattr(self, name) > 0, name, "must be > 0")
        check(0.0 <= self.positive_fraction <= 1.0, "positive_fraction", "must be in [0, 1]")
        check(self.temperature > 0, "temperature", "must be > 0")
        check(0 < self.score_threshold < 1, "score_threshold", "must be in (0, 1)")
        check(self.text_phrases >= 2, "text_phrases", "must be >= 2 (a contrast needs two phrases)")
        check(self.text_tau > 0, "text_tau", "must be > 0")


@dataclass(frozen=True)
class Phase1Params:
    """Feature alignment: student FPN / encoder features (through 1x1 adapters) vs the teacher's cached ones."""

    optim: OptimParams = field(default_factory=OptimParams)
    prompt_mix: dict[str, float] = field(default_factory=lambda: {"text": 0.5, "point": 0.25, "box": 0.25})
    fpn_weight: float = 1.0
    encoder_weight: float = 1.0
    text_weight: float = 1.0  # student phrase embedding (text tower) vs the teacher's, when the cache holds it
    gt_weight: float = 0.0  # optional GT set loss already in phase 1 (0 = pure feature alignment)
    phrase_set: PhraseSetParams = field(default_factory=PhraseSetParams)
    loss: LossWeights = field(default_factory=LossWeights)

    def __post_init__(self) -> None:
        _check_mix(self.prompt_mix)
        for name in ("fpn_weight", "encoder_weight", "text_weight", "gt_weight"):
            check(getattr(self, name) >= 0, name, "must be >= 0")


@dataclass(frozen=True)
class Phase2Params:
    """Output refinement: masks/boxes/class/presence vs teacher outputs (logit distillation) and the GT."""

    optim: OptimParams = field(default_factory=OptimParams)
    prompt_mix: dict[str, float] = field(default_factory=lambda: {"text": 0.3, "point": 0.35, "box": 0.35})
    gt_weight: float = 1.0
    distill_weight: float = 1.0
    feature_weight: float = 0.1  # keep the phase-1 alignment as a regulariser
    teacher_score_threshold: float = 0.5  # teacher queries above this are distillation targets
    temperature: float = 1.0
    phrase_set: PhraseSetParams = field(default_factory=PhraseSetParams)
    loss: LossWeights = field(default_factory=LossWeights)

    def __post_init__(self) -> None:
        _check_mix(self.prompt_mix)
        for name in ("gt_weight", "distill_weight", "feature_weight"):
            check(getattr(self, name) >= 0, name, "must be >= 0")
        check(0 < self.teacher_score_threshold < 1, "teacher_score_threshold", "must be in (0, 1)")
        check(self.temperature > 0, "temperature", "must be > 0")


@dataclass(frozen=True)
class VideoParams:
    """Memory training on clips: only ``memory_attention`` and ``memory`` train (tested)."""

    optim: OptimParams = field(default_factory=OptimParams)
    clip_frames: int = 4  # consecutive cached frames per training clip
    prompt_kind: str = "point"  # first-frame prompt: box / point (of the masklet) or text (its phrase, if known)
    feature_weight: float = 0.1  # memory-conditioned encoder tokens vs the teacher's frames_fpn
    loss: LossWeights = field(default_factory=LossWeights)

    def __post_init__(self) -> None:
        check(self.clip_frames >= 2, "clip_frames", "needs >= 2 frames (one prompted, one tracked)")
        check(self.prompt_kind in ("box", "point", "text"), "prompt_kind", "must be box, point or text")
        check(self.feature_weight >= 0, "feature_weight", "must be >= 0")


@dataclass(frozen=True)
class FinetuneParams:
    """SA-Co fine-tune on the concepts train split (text prompts, negatives through the presence loss)."""

    optim: OptimParams = field(default_factory=OptimParams)  # optim.batch_size counts images per step
    trainable: tuple[str, ...] = IMAGE_PARTS
    max_pairs: int = 0  # 0 = every train pair
    prompts_per_image: int = 6  # prompts over one image's features per step (its phrases, positive and negative)
    prompt_mix: dict[str, float] = field(default_factory=lambda: {"text": 0.8, "point": 0.1, "box": 0.1})
    loss: LossWeights = field(default_factory=LossWeights)
    # phase 1's grouped phrase-set distillation on the unlabeled distill images, beside the GT loss at every step
    # (weight 0 = off): it keeps the presence head recognising phrases instead of memorising the train pairs
    phrase_set: PhraseSetParams = field(default_factory=PhraseSetParams)

    def __post_init__(self) -> None:
        bad = sorted(set(self.trainable) - set(PARTS))
        check(not bad and len(self.trainable) > 0, "trainable", f"unknown parts {bad}; known: {PARTS}")
        check(self.max_pairs >= 0, "max_pairs", "must be >= 0")
        check(self.prompts_per_image > 0, "prompts_per_image", "must be > 0")
        _check_mix(self.prompt_mix)


@dataclass(frozen=True)
class QatParams:
    """torchao QAT (``QATConfig`` prepare -> train -> convert), an optional stage with its own checkpoint."""

    enabled: bool = True
    scheme: str = "8da4w"  # int8 dynamic activations + int4 weights (XNNPACK) or "int8" weight-only
    group_size: int = 32
    optim: OptimParams = field(default_factory=OptimParams)  # optim.batch_size counts images per step
    max_pairs: int = 0
    prompts_per_image: int = 6
    prompt_mix: dict[str, float] = field(default_factory=lambda: {"text": 0.8, "point": 0.1, "box": 0.1})
    loss: LossWeights = field(default_factory=LossWeights)

    def __post_init__(self) -> None:
        check(self.prompts_per_image > 0, "prompts_per_image", "must be > 0")
        _check_mix(self.prompt_mix)
        check(self.scheme in ("8da4w", "int8"), "scheme", "must be 8da4w or int8")
        check(self.group_size > 0, "group_size", "must be > 0")
