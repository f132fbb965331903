"""Student architecture config (one frozen dataclass), its named variants, and the ``student`` params section.

:class:`StudentConfig` is everything needed to rebuild a student (it is what a checkpoint stores as
``model_config``); :data:`VARIANTS` names the shipped sizes. The params section :class:`StudentParams` picks a
variant, may override a few knobs and names local pretrained weight files (never downloaded).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from sam3_edge.config import check, from_dict, to_dict


@dataclass(frozen=True)
class StudentConfig:
    """Architecture of an EfficientSAM3-style student (RepViT image encoder + open_clip text tower + DETR)."""

    name: str
    image_size: int  # square input side, pixels
    backbone: str  # timm RepViT model name (features_only)
    backbone_embed_dim: tuple[int, ...] | None = None  # override the timm variant's stage widths (tiny)
    backbone_depth: tuple[int, ...] | None = None  # override the timm variant's stage depths (tiny)
    dim: int = 256  # common width of FPN, prompt tokens, DETR and mask decoder
    num_heads: int = 8
    ffn_dim: int = 2048
    text_width: int = 512  # open_clip TextTransformer (MobileCLIP-S1 text tower: 512 wide, 12 layers, 8 heads)
    text_heads: int = 8
    text_layers: int = 12
    text_mlp_ratio: float = 4.0
    context_length: int = 77
    vocab_size: int = 49408  # open_clip SimpleTokenizer vocabulary
    enc_layers: int = 3
    dec_layers: int = 3
    num_queries: int = 100
    max_points: int = 8  # point-prompt slots (static shape for export); unused slots are padded
    memory_latents: int = 64  # Perceiver memory size for video (the state holds one more row: the object pointer)
    memory_pointer_threshold: float = 0.5  # a frame moves the object pointer when its top score reaches this
    # the latents also join the prompt tokens (off: on SA-V val they cost J&F, 0.29 vs 0.69, docs/experiments.md)
    memory_prompt_tokens: bool = False
    dropout: float = 0.0
    # per-head strengths of the box-locality bias on the DETR decoder's image cross-attention (detr.box_locality_bias)
    decoder_locality: tuple[float, ...] = ()
    presence_grounding: bool = True  # presence also reads image tokens x pooled prompt (detr.DetrDecoder)

    @property
    def memory_slots(self) -> int:
        """Rows of the video memory state: the Perceiver latents + the object-pointer row."""
        return self.memory_latents + 1

    def __post_init__(self) -> None:
        check(0.0 <= self.memory_pointer_threshold <= 1.0, "memory_pointer_threshold", "must be in [0, 1]")
        check(self.image_size >= 32 and self.image_size % 8 == 0, "image_size", "must be a multiple of 8, >= 32")
        check(self.dim % self.num_heads == 0, "dim", f"{self.dim} not divisible by num_heads {self.num_heads}")
        check(self.text_width % self.text_heads == 0, "text_width", "not divisible by text_heads")
        check(self.dim % 4 == 0, "dim", "must be a multiple of 4 (sine position encoding)")
        for key in ("enc_layers", "dec_layers", "num_queries", "max_points", "memory_latents"):
            check(getattr(self, key) >= 1, key, "must be >= 1")
        check(self.context_length >= 2, "context_length", "must hold at least start and end tokens")
        check(0.0 <= self.dropout < 1.0, "dropout", "must be in [0, 1)")
        check(
            len(self.decoder_locality) in (0, self.num_heads) and all(k >= 0 for k in self.decoder_locality),
            "decoder_locality",
            f"needs one strength >= 0 per attention head ({self.num_heads}) or none",
        )
        if self.backbone_embed_dim is not None or self.backbone_depth is not None:
            check(
                self.backbone_embed_dim is not None
                and self.backbone_depth is not None
                and len(self.backbone_embed_dim) == len(self.backbone_depth) == 4,
                "backbone_embed_dim",
                "override needs both backbone_embed_dim and backbone_depth with 4 stages each",
            )

    @property
    def mask_size(self) -> int:
        """Side of the mask logits (stride 4 of the input, as the pixel decoder ends at P2)."""
        return -(-self.image_size // 4)

    def to_json(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StudentConfig:
        return from_dict(cls, data, prefix="model_config")


VARIANTS: dict[str, StudentConfig] = {
    # Embedded profile: real timm RepViT / open_clip classes at a narrow width; well under 50 ms on one CPU core.
    "tiny": StudentConfig(
        name="tiny",
        image_size=224,
        backbone="repvit_m0_9",
        backbone_embed_dim=(24, 48, 96, 192),
        backbone_depth=(1, 1, 2, 1),
        dim=64,
        num_heads=4,
        ffn_dim=128,
        text_width=64,
        text_heads=2,
        text_layers=2,
        context_length=16,
        enc_layers=2,
        dec_layers=2,
        num_queries=16,
        max_points=4,
        memory_latents=8,
        decoder_locality=(10.0, 10.0, 2.0, 2.0),
    ),
    # EfficientSAM3 ES-RV-L + MobileCLIP-S1 text: RepViT-M2.3, 256-d, 3+3 DETR layers, 100 queries.
    "es_rv_l_mc_s1": StudentConfig(
        name="es_rv_l_mc_s1",
        image_size=504,
        backbone="repvit_m2_3",
        dim=256,
        num_heads=8,
        ffn_dim=2048,
        text_width=512,
        text_heads=8,
        text_layers=12,
        context_length=77,
        enc_layers=3,
        dec_layers=3,
        num_queries=100,
        max_points=8,
        memory_latents=64,
        decoder_locality=(10.0,) * 4 + (2.0,) * 4,
    ),
}


@dataclass(frozen=True)
class StudentParams:
    """``student`` params section: which variant, optional overrides, optional local pretrained weights."""

    variant: str = "tiny"
    image_size: int | None = None
    dim: int | None = None
    num_queries: int | None = None
    decoder_locality: tuple[float, ...] | None = None  # () switches the decoder's box-locality bias off
    image_encoder_weights: str | None = None  # local timm RepViT state dict (.safetensors / .pth); None = random
    text_encoder_weights: str | None = None  # local open_clip text tower state dict; None = random
    init_seed: int = 0

    def __post_init__(self) -> None:
        check(self.variant in VARIANTS, "variant", f"{self.variant!r} is not one of {sorted(VARIANTS)}")

    def model_config(self) -> StudentConfig:
        """The architecture this section describes (variant with overrides applied)."""
        overrides = {
            k: getattr(self, k)
            for k in ("image_size", "dim", "num_queries", "decoder_locality")
            if getattr(self, k) is not None
        }
        return dataclasses.replace(VARIANTS[self.variant], **overrides)
