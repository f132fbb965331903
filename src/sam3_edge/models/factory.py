"""One factory for every student variant, and loading a student back from a checkpoint."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from sam3_edge.models.config import VARIANTS, StudentConfig, StudentParams
from sam3_edge.models.student import Student

LOG = logging.getLogger(__name__)


def build_student(
    variant_or_config: str | StudentConfig | StudentParams,
    *,
    seed: int | None = None,
    image_encoder_weights: str | None = None,
    text_encoder_weights: str | None = None,
) -> Student:
    """Build a student from a variant name (``tiny``, ``es_rv_l_mc_s1``), a config, or the params section.

    With :class:`StudentParams`, its weight paths and ``init_seed`` are used unless given here. Parameter
    counts per part are logged.
    """
    if isinstance(variant_or_config, StudentParams):
        params = variant_or_config
        config = params.model_config()
        image_encoder_weights = image_encoder_weights or params.image_encoder_weights
        text_encoder_weights = text_encoder_weights or params.text_encoder_weights
        seed = params.init_seed if seed is None else seed
    elif isinstance(variant_or_config, str):
        if variant_or_config not in VARIANTS:
            raise ValueError(f"unknown student variant {variant_or_config!r} (known: {sorted(VARIANTS)})")
        config = VARIANTS[variant_or_config]
    else:
        config = variant_or_config
    if seed is not None:
        torch.manual_seed(seed)
    model = Student(
        config=config, image_encoder_weights=image_encoder_weights, text_encoder_weights=text_encoder_weights
    )
    counts = model.param_counts()
    LOG.info("student %s params: %s", config.name, ", ".join(f"{k}={v / 1e6:.2f}M" for k, v in counts.items()))
    return model


def load_student(path: str | Path, *, device: str | torch.device = "cpu") -> tuple[Student, dict]:
    """Rebuild a student from a checkpoint's ``model_config`` and load its weights strictly.

    Returns ``(model in eval mode, meta)`` where meta holds step, epoch, params_hash, format_version, stage.
    """
    from sam3_edge.core.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    config = StudentConfig.from_json(ckpt.model_config)
    model = Student(config=config)
    model.load_state_dict(ckpt.model_state, strict=True)
    meta = {k: v for k, v in ckpt.meta.items()}
    return model.to(device).eval(), meta
