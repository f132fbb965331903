"""Params of the `teacher` stage (section ``teacher`` of params.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sam3_edge.config import check
from sam3_edge.core.losses import LossWeights


@dataclass(frozen=True)
class TinySam3Params:
    """Architecture of the bootstrap teacher: the transformers ``Sam3Model`` class at a tiny size."""

    vit_hidden: int = 96
    vit_layers: int = 2
    vit_heads: int = 2
    vit_mlp: int = 384
    patch_size: int = 14
    hidden: int = 64  # FPN / DETR / mask decoder width
    heads: int = 2
    ffn: int = 128
    text_hidden: int = 64
    text_layers: int = 1
    text_heads: int = 2
    geometry_layers: int = 1
    detr_encoder_layers: int = 1
    detr_decoder_layers: int = 1
    num_queries: int = 20
    scale_factors: tuple[float, ...] = (2.0, 1.0, 0.5)
    # Per decoder head: the box relative-position bias starts as -strength x (log-distance outside the query's
    # reference box), so each query first looks at its own region. () = xavier like every other layer.
    rpb_locality: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        for name in (
            "vit_hidden",
            "vit_layers",
            "vit_heads",
            "hidden",
            "heads",
            "text_hidden",
            "text_layers",
            "num_queries",
            "detr_encoder_layers",
            "detr_decoder_layers",
            "geometry_layers",
        ):
            check(getattr(self, name) > 0, name, "must be > 0")
        check(self.hidden % self.heads == 0, "hidden", f"must be divisible by heads ({self.heads})")
        check(self.vit_hidden % self.vit_heads == 0, "vit_hidden", "must be divisible by vit_heads")
        check(
            len(self.rpb_locality) in (0, self.heads) and all(k >= 0 for k in self.rpb_locality),
            "rpb_locality",
            f"give one strength >= 0 per decoder head ({self.heads}) or none",
        )
        check(
            len(self.scale_factors) >= 2 and all(s in (4.0, 2.0, 1.0, 0.5) for s in self.scale_factors),
            "scale_factors",
            "need >= 2 levels, each one of 4, 2, 1, 0.5 (Sam3Model drops the last one)",
        )


@dataclass(frozen=True)
class TeacherTrainParams:
    """Bootstrap training on the synthetic train split with ground-truth supervision."""

    steps: int = 1200
    images_per_step: int = 8
    prompts_per_image: int = 2  # vision features are computed once and reused for these prompts
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    grad_clip: float = 1.0
    mask_size: int = 32  # GT masks are loaded at this side; finer than the model's masks, the loss upsamples them
    prompt_mix: dict[str, float] = field(default_factory=lambda: {"text": 0.6, "point": 0.2, "box": 0.2})
    checkpoint_every: int = 200  # steps between resume checkpoints
    loss: LossWeights = field(default_factory=LossWeights)

    def __post_init__(self) -> None:
        for name in ("steps", "images_per_step", "prompts_per_image", "mask_size", "checkpoint_every"):
            check(getattr(self, name) > 0, name, "must be > 0")
        check(self.lr > 0, "lr", "must be > 0")
        check(self.warmup_steps >= 0, "warmup_steps", "must be >= 0")
        check(set(self.prompt_mix) <= {"text", "point", "box"}, "prompt_mix", "keys must be text, point, box")
        check(
            all(v >= 0 for v in self.prompt_mix.values()) and sum(self.prompt_mix.values()) > 0,
            "prompt_mix",
            "weights must be >= 0 with a positive sum",
        )
        check(
            abs(sum(self.prompt_mix.values()) - 1.0) <= 1e-6,
            "prompt_mix",
            f"shares must sum to 1, got {sum(self.prompt_mix.values()):g}",
        )


@dataclass(frozen=True)
class TeacherEvalParams:
    max_pairs: int = 0  # 0 = every val pair
    batch_size: int = 8
    point_box_prompts_per_pair: int = 1  # point and box prompts scored per positive pair

    def __post_init__(self) -> None:
        check(self.max_pairs >= 0, "max_pairs", "must be >= 0")
        check(self.batch_size > 0, "batch_size", "must be > 0")


@dataclass(frozen=True)
class TeacherParams:
    """``source``: ``bootstrap`` (train the tiny Sam3Model here) or a local dir / hub id of facebook/sam3."""

    source: str = "bootstrap"
    image_size: int = 224  # model input side (1008 for facebook/sam3)
    fpn_levels: tuple[int, ...] = (0, 1)  # indices into the vision FPN exposed as fpn_<i> (and cached)
    point_box_size: float = 0.04  # a point prompt enters the geometry encoder as a box of this side (normalised)
    seed: int = 0
    model: TinySam3Params = field(default_factory=TinySam3Params)
    train: TeacherTrainParams = field(default_factory=TeacherTrainParams)
    eval: TeacherEvalParams = field(default_factory=TeacherEvalParams)

    def __post_init__(self) -> None:
        check(bool(self.source), "source", "must be 'bootstrap' or a facebook/sam3 directory / hub id")
        check(self.image_size > 0, "image_size", "must be > 0")
        check(
            len(self.fpn_levels) > 0 and all(i >= 0 for i in self.fpn_levels),
            "fpn_levels",
            "need at least one level index >= 0",
        )
        check(0 < self.point_box_size < 1, "point_box_size", "must be in (0, 1)")
