"""Params of the reporting side: experiment tracking, visual QA and the report (sections `tracking`, ...)."""

from __future__ import annotations

from dataclasses import dataclass

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
