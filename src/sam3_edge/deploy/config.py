"""Params of the deploy stages: sections ``quantize``, ``export`` and ``benchmark`` of params.yaml.

Variant names (``fp32``, ``fp16``, ``int8``, ``8da4w``, ``qat``) and backend names (``xnnpack``, ``coreml``,
``qnn``) are shared by the three stages; the lists here are what the dvc.yaml ``matrix`` entries expand to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sam3_edge.config import check

Variant = Literal["fp32", "fp16", "int8", "8da4w", "qat", "coreml_int8", "coreml_w4"]
# made from the trained student (qat: own stage); coreml_*: Core ML's recipes (export.backend_variants.coreml)
BuiltVariant = Literal["fp32", "fp16", "int8", "8da4w", "coreml_int8", "coreml_w4"]
Backend = Literal["xnnpack", "coreml", "qnn"]
QUANTIZED_VARIANTS = ("int8", "8da4w", "qat", "coreml_int8", "coreml_w4")


@dataclass(frozen=True)
class QuantizeParams:
    """How each variant is made from the float student (``fp32`` is the reference every variant is sized against).

    * ``int8``: PT2E static quantization with the XNNPACK quantizer (per-channel weights, calibrated
      activations) for convolutions, linears and element-wise ops.
    * ``8da4w``: torchao int8 dynamic activations + int4 grouped weights for ``nn.Linear`` layers.
    * ``qat``: the student's QAT checkpoint, converted with ``qat_recipe`` (a recorded skip when absent).
    * ``sensitive_layers``: dotted module paths (matched as a dotted sub-path of a layer's name, e.g.
      ``mask_decoder`` or ``detr_decoder.class_head``) kept in float by every integer recipe.
    """

    variants: tuple[BuiltVariant, ...] = ("fp32", "fp16", "int8", "8da4w")  # quantize@<variant>
    convert_qat: bool = True  # quantize_qat: convert the QAT checkpoint (false = recorded skip)
    real_variants: tuple[BuiltVariant, ...] = ("fp32", "int8")  # for the random-weight real-size student
    real_size_variant: str = "es_rv_l_mc_s1"  # student factory variant exported with random weights
    calibration_samples: int = 16  # image-phrase pairs of the calibration index run through the observers (int8)
    sensitive_layers: tuple[str, ...] = ()
    int8_per_channel: bool = True
    linear_group_size: int = 32  # 8da4w weight group size (0 = one scale per output channel)
    embedding_bits: Literal[0, 4, 8] = 8  # weight-only token-embedding quantization in integer variants (0 = float)
    qat_recipe: Literal["int8", "8da4w"] = "8da4w"
    # the text program of every integer variant: "8da4w" = int4 grouped weights + text_embedding_bits embeddings
    # (it runs once per phrase: its size counts, its latency does not); "variant" = the variant's own recipe
    text_recipe: Literal["variant", "8da4w"] = "variant"
    text_group_size: int = 32
    text_embedding_bits: Literal[0, 4, 8] = 8
    seed: int = 0

    def __post_init__(self) -> None:
        check(len(self.variants) > 0, "variants", "must list at least one variant")
        check("fp32" in self.variants, "variants", "must include fp32 (the reference every variant is sized against)")
        check(len(set(self.variants)) == len(self.variants), "variants", "has duplicates")
        check("fp32" in self.real_variants or not self.real_variants, "real_variants", "must include fp32")
        check(self.calibration_samples >= 1, "calibration_samples", "must be >= 1")
        check(self.linear_group_size >= 0, "linear_group_size", "must be >= 0 (0 = per channel)")
        check(self.text_group_size >= 0, "text_group_size", "must be >= 0 (0 = per channel)")
        check(
            all(s.strip(".") == s and s for s in self.sensitive_layers), "sensitive_layers", "empty or dotted-edge name"
        )


@dataclass(frozen=True)
class ExportParams:
    """Lowering to ExecuTorch per backend; ``variants`` are the non-reference variants (fp32 is always exported).

    ``max_size_ratio[v]`` bounds ``pte_bytes(v) / pte_bytes(fp32)`` on the same backend; a variant over it (and
    any variant larger than its float source, whatever the ratio) fails the stage.
    """

    backends: tuple[Backend, ...] = ("xnnpack", "coreml", "qnn")
    variants: tuple[Variant, ...] = ("fp16", "int8", "8da4w", "qat")
    real_variants: tuple[Variant, ...] = ("int8",)
    max_size_ratio: dict[str, float] = field(
        default_factory=lambda: {"fp16": 0.75, "int8": 0.75, "8da4w": 0.75, "qat": 0.75}
    )
    coreml_deployment_target: Literal["iOS16", "iOS17", "iOS18"] = "iOS17"
    qnn_soc: str = "SM8650"
    parity_samples: int = 2  # inputs on which the executed .pte is compared with its eager program
    min_parity_mask_iou: float = 0.5  # .pte vs eager program of the same variant (lowering correctness)
    min_parity_cosine: float = 0.98  # cosine of the .pte's and the eager program's mask logits
    parity_min_foreground: float = 0.001  # an IoU counts where the eager mask covers at least this pixel fraction
    jobs: int = 2  # variants of one backend lowered side by side, in processes of their own (export stage)
    backend_variants: dict[str, tuple[Variant, ...]] = field(default_factory=dict)  # more variants for one backend

    def variants_for(self, backend: str) -> tuple[str, ...]:
        """What export@<backend> lowers after fp32: ``variants``, then that backend's ``backend_variants``."""
        return (*self.variants, *(v for v in self.backend_variants.get(backend, ()) if v not in self.variants))

    def __post_init__(self) -> None:
        check(len(self.backends) > 0, "backends", "must list at least one backend")
        check(self.jobs >= 1, "jobs", "must be >= 1")
        for b, vs in self.backend_variants.items():
            check(b in ("xnnpack", "coreml", "qnn"), f"backend_variants.{b}", "unknown backend")
            check("fp32" not in vs, f"backend_variants.{b}", "fp32 is the reference, always exported first")
        check("fp32" not in self.variants, "variants", "fp32 is the reference, always exported first")
        check("fp32" not in self.real_variants, "real_variants", "fp32 is the reference, always exported first")
        for k, v in self.max_size_ratio.items():
            check(k in ("fp16", *QUANTIZED_VARIANTS), f"max_size_ratio.{k}", "unknown variant")
            check(0.0 < v <= 1.0, f"max_size_ratio.{k}", "must be in (0, 1]: a variant never grows past fp32")
        check(self.parity_samples >= 1, "parity_samples", "must be >= 1")
        check(0.0 <= self.min_parity_mask_iou <= 1.0, "min_parity_mask_iou", "must be in [0, 1]")
        check(-1.0 <= self.min_parity_cosine <= 1.0, "min_parity_cosine", "must be in [-1, 1]")
        check(0.0 <= self.parity_min_foreground < 1.0, "parity_min_foreground", "must be in [0, 1)")


@dataclass(frozen=True)
class BenchmarkParams:
    """On-host measurements through ``executorch.runtime``; each in a fresh subprocess (peak RSS is its own)."""

    warmup: int = 3
    iters: int = 20
    threads: int = 1
    video_frames: int = 8  # frames of the first val SA-V clip run through the video_step (memory) path
    video_passes: int = 5  # timed passes of that clip; fps = the median pass (one pass read 147 / 300 FPS)
    parity_samples: int = 4
    max_pte_mb: float = 50.0  # mobile targets, reported as pass/fail for the real-size student
    max_peak_rss_mb: float = 500.0
    timeout_s: int = 1800  # per measurement subprocess
    teacher_runs: int = 2  # real_teacher_latency: timed forwards of SAM 3's real architecture (1008 px, eager)
    teacher_warmup: int = 1

    def __post_init__(self) -> None:
        check(self.warmup >= 0, "warmup", "must be >= 0")
        check(self.iters >= 2, "iters", "must be >= 2 (p50/p90)")
        check(self.threads >= 1, "threads", "must be >= 1")
        check(self.video_frames >= 1, "video_frames", "must be >= 1")
        check(self.video_passes >= 1, "video_passes", "must be >= 1")
        check(self.parity_samples >= 1, "parity_samples", "must be >= 1")
        check(self.timeout_s > 0, "timeout_s", "must be > 0")
        check(self.teacher_runs >= 1, "teacher_runs", "must be >= 1")
        check(self.teacher_warmup >= 0, "teacher_warmup", "must be >= 0")
