"""Params of the ``evaluate`` stage (section ``evaluate``) and the ``gates`` stage (section ``gates``)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from sam3_edge.config import check

PromptKindName = Literal["text", "point", "box"]


@dataclass(frozen=True)
class IntermediateScope:
    """Val subset for checkpoints of intermediate training phases (``evaluate.py --scope intermediate``): they
    are diagnostics (where along the recipe a figure is lost), not results, so they need not cost a full pass.
    0 = the full scope's value."""

    max_pairs: int = 0
    max_images: int = 0
    max_videos: int = 0

    def __post_init__(self) -> None:
        for name in ("max_pairs", "max_images", "max_videos"):
            check(getattr(self, name) >= 0, name, "must be >= 0 (0 = as the full evaluation)")


@dataclass(frozen=True)
class EvaluateParams:
    batch_size: int = 8
    score_threshold: float = 0.5  # a query is a predicted instance when its final score >= this (SAM 3: 0.5)
    presence_threshold: float = 0.5  # a pair is predicted present when Prediction.presence >= this
    prompt_kinds: tuple[PromptKindName, ...] = ("text", "point", "box")
    max_pairs: int = 0  # SA-Co val pairs evaluated, 0 = all
    max_images: int = 0  # SA-1B val images for point/box prompts, 0 = all
    max_instances_per_image: int = 4  # SA-1B instances prompted per image
    max_videos: int = 0  # SA-V val clips, 0 = all
    video_prompt: PromptKindName = "box"  # prompt given on the object's first annotated frame
    skip_first_and_last: bool = True  # SA-V / DAVIS semi-supervised protocol
    boundary_tolerance: float = 0.008  # DAVIS boundary F tolerance (fraction of the image diagonal)
    results_min_score: float = 0.05  # COCO results json keeps queries scoring at least this
    results_max_per_pair: int = 100  # ... and at most this many per pair (COCO maxDets)
    latency_warmup: int = 2
    latency_runs: int = 10
    num_threads: int = 1  # torch CPU threads while evaluating and timing
    seed: int = 0  # point/box prompt sampling: the same prompts for every model
    chunk_size: int = 200  # records per resumable chunk (a killed run redoes at most one chunk)
    intermediate: IntermediateScope = field(default_factory=IntermediateScope)

    def scoped(self, scope: str) -> EvaluateParams:
        """These params for ``scope`` ``full`` (unchanged) or ``intermediate`` (its limits replace the full ones)."""
        if scope == "full":
            return self
        if scope != "intermediate":
            raise ValueError(f"unknown evaluation scope {scope!r} (full | intermediate)")
        limits = {k: v for k, v in vars(self.intermediate).items() if v > 0}
        return replace(self, **limits)

    def __post_init__(self) -> None:
        check(self.batch_size > 0, "batch_size", "must be > 0")
        for name in ("score_threshold", "presence_threshold", "results_min_score"):
            check(0.0 <= getattr(self, name) <= 1.0, name, "must be in [0, 1]")
        check(len(self.prompt_kinds) > 0, "prompt_kinds", "must name at least one kind")
        check(len(set(self.prompt_kinds)) == len(self.prompt_kinds), "prompt_kinds", "has duplicates")
        for name in ("max_pairs", "max_images", "max_videos", "latency_warmup"):
            check(getattr(self, name) >= 0, name, "must be >= 0 (0 = all / none)")
        check(self.max_instances_per_image > 0, "max_instances_per_image", "must be > 0")
        check(self.boundary_tolerance > 0, "boundary_tolerance", "must be > 0")
        check(self.results_max_per_pair > 0, "results_max_per_pair", "must be > 0")
        check(self.latency_runs > 0, "latency_runs", "must be > 0")
        check(self.num_threads > 0, "num_threads", "must be > 0")
        check(self.chunk_size > 0, "chunk_size", "must be > 0")


def _default_benchmark_keys() -> dict[str, str]:
    return {
        "pte_size_mb": "summary.int8.xnnpack.size_mb",
        "image_latency_ms": "summary.int8.xnnpack.image_latency_ms",
        "video_fps": "summary.int8.xnnpack.video_fps",
        "peak_memory_mb": "summary.int8.xnnpack.peak_memory_mb",
        "delegated_fraction": "summary.int8.xnnpack.delegated_fraction",
        "image_pte_mb": "summary.int8.xnnpack.image_pte_mb",
        "text_pte_mb": "summary.int8.xnnpack.text_pte_mb",
        "speedup_vs_eager": "summary.int8.xnnpack.speedup_vs_eager",
        "speedup_vs_teacher": "summary.int8.xnnpack.speedup_vs_teacher",
    }


@dataclass(frozen=True)
class GatesParams:
    teacher: str = "teacher"  # model names = keys of the evaluate foreach (metrics/eval/<name>.json)
    student: str = "student"
    miou_kinds: tuple[PromptKindName, ...] = ("text", "point", "box")
    min_miou_ratio: float = 0.85  # student / teacher mIoU, per prompt kind
    min_prompt_sensitivity: float = 0.3
    min_presence_f1: float = 0.8
    max_pte_size_mb: float = 50.0  # text.pte + image.pte
    max_image_pte_mb: float = 45.0  # image.pte alone: what an app keeps loaded
    max_text_pte_mb: float = 35.0  # text.pte alone: loaded when the phrase changes
    max_image_latency_ms: float = 100.0
    min_video_fps: float = 15.0
    max_peak_memory_mb: float = 500.0
    min_delegated_fraction: float = 0.9
    min_speedup_vs_eager: float = 1.5  # the real-size .pte image latency against the same student eager
    min_speedup_vs_teacher: float = 50.0  # against SAM 3's real architecture eager at 1008 px (same threads)
    # gate figure -> dotted key path inside the benchmark metrics json (written by the deploy benchmark stage)
    benchmark_keys: dict[str, str] = field(default_factory=_default_benchmark_keys)
    # exports that must lower (status ok) for the ``lowered`` gate: dotted keys of the benchmark json's export rows
    # (Core ML runs only on an Apple OS, so lowering is what can be checked here); empty = no such gate
    required_lowerings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check(self.teacher != self.student, "student", "must differ from teacher")
        check(0 < self.min_miou_ratio, "min_miou_ratio", "must be > 0")
        check(-1 <= self.min_prompt_sensitivity <= 1, "min_prompt_sensitivity", "must be in [-1, 1]")
        check(0 <= self.min_presence_f1 <= 1, "min_presence_f1", "must be in [0, 1]")
        check(0 <= self.min_delegated_fraction <= 1, "min_delegated_fraction", "must be in [0, 1]")
        for name in (
            "max_pte_size_mb",
            "max_image_pte_mb",
            "max_text_pte_mb",
            "max_image_latency_ms",
            "min_video_fps",
            "max_peak_memory_mb",
            "min_speedup_vs_eager",
            "min_speedup_vs_teacher",
        ):
            check(getattr(self, name) > 0, name, "must be > 0")
        unknown = sorted(set(self.benchmark_keys) - set(_default_benchmark_keys()))
        check(
            not unknown, "benchmark_keys", f"unknown figure(s) {unknown} (known: {sorted(_default_benchmark_keys())})"
        )
