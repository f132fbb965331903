"""Params of the reporting side: experiment tracking, visual QA and the report (`tracking`, `visual_qa`, `report`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sam3_edge.config import check


@dataclass(frozen=True)
class TrackingParams:
    """MLflow logging of params, metrics and artifacts from training and evaluation stages.

    ``uri`` is an MLflow tracking URI; a relative ``sqlite:///mlflow.db`` is resolved against the project root
    (also from inside a `dvc exp` temporary workspace, so queued experiments share one store).
    """

    mlflow: bool = True
    uri: str = "sqlite:///mlflow.db"
    experiment: str = "sam3-edge"

    def __post_init__(self) -> None:
        check(bool(self.experiment), "experiment", "must be a non-empty name")
        check("://" in self.uri or self.uri.startswith("sqlite:"), "uri", f"not a tracking URI: {self.uri!r}")


ColumnName = Literal["teacher", "student", "quantized"]


@dataclass(frozen=True)
class VisualQAParams:
    """The visual QA gallery: ``num_prompts`` prompts on each of ``num_images`` val images (SA-Co pairs).

    Prompts of an image are drawn (seeded) from its (pair, kind) combinations; point/box prompts exist only for
    positive pairs and target one instance (the GT mask's most interior pixel / its box). Rows are sorted by the
    tile IoU of ``sort_by`` (worst first); a missing column falls back to the next one in ``columns``.
    """

    num_images: int = 25
    num_prompts: int = 15
    prompt_kinds: tuple[Literal["text", "point", "box"], ...] = ("text", "point", "box")
    columns: tuple[ColumnName, ...] = ("teacher", "student", "quantized")
    sort_by: ColumnName = "student"
    score_threshold: float = 0.5  # an instance is a query with final score >= this (SAM 3: 0.5)
    tile_size: int = 192  # pixels of the longer side of each embedded image
    image_format: Literal["png", "jpeg"] = "png"  # jpeg keeps a 15 x 25 gallery of photos to tens of MB
    batch_size: int = 8
    seed: int = 0
    num_threads: int = 1

    def __post_init__(self) -> None:
        for name in ("num_images", "num_prompts", "tile_size", "batch_size", "num_threads"):
            check(getattr(self, name) > 0, name, "must be > 0")
        check(len(self.prompt_kinds) > 0, "prompt_kinds", "must name at least one kind")
        check(len(set(self.prompt_kinds)) == len(self.prompt_kinds), "prompt_kinds", "has duplicates")
        check(len(self.columns) > 0, "columns", "must name at least one model column")
        check(len(set(self.columns)) == len(self.columns), "columns", "has duplicates")
        check(0.0 <= self.score_threshold <= 1.0, "score_threshold", "must be in [0, 1]")


@dataclass(frozen=True)
class ReportParams:
    """``reports/report.{md,html}`` from the metrics JSON. Model names are the stems of metrics/eval/<name>.json.

    ``quality_models`` maps a row label to an evaluated model name; ``quantized`` maps a quantize metrics file
    stem (metrics/quantize/<model>_<variant>.json) to the evaluated model name of its ``.pte`` (its mIoU and drop
    vs ``baseline``). ``readme_results`` replaces the README block between the results markers; ``training_stages`` are the dvclive
    folders whose loss curves the report draws.
    """

    title: str = "sam3-edge report"
    quality_models: dict[str, str] = field(default_factory=lambda: {"teacher": "teacher", "student": "student"})
    baseline: str = "student"
    quantized: dict[str, str] = field(default_factory=dict)
    digits: int = 3
    readme_results: bool = True
    training_stages: tuple[str, ...] = ("distill_phase1", "distill_phase2", "distill_video", "finetune_saco", "qat")

    def __post_init__(self) -> None:
        check(bool(self.quality_models), "quality_models", "must name at least one model")
        check(0 <= self.digits <= 8, "digits", "must be in [0, 8]")
