"""MLflow logging for stages (the library never imports mlflow). Off with `tracking.mlflow: false`."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from sam3_edge.config import to_dict
from sam3_edge.report.config import TrackingParams

LOG = logging.getLogger("sam3_edge.tracking")


def project_root(cwd: Path | None = None) -> Path:
    """The project root, also from inside a `dvc exp` temp workspace (<root>/.dvc/tmp/exps/...)."""
    cwd = (cwd or Path.cwd()).resolve()
    parts = cwd.parts
    for i in range(len(parts) - 2):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    return cwd


def resolve_uri(uri: str, cwd: Path | None = None) -> str:
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        return f"sqlite:///{project_root(cwd) / uri.removeprefix('sqlite:///')}"
    return uri


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


@contextlib.contextmanager
def _store_lock(uri: str) -> Iterator[None]:
    """Exclusive lock next to a sqlite store: two `dvc queue start -j 2` workers opening a fresh mlflow.db race in
    MLflow's schema migration (alembic) and both fail. Other stores (http, file) need no lock here."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    db = Path(uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(f"{db}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@contextlib.contextmanager
def mlflow_run(params: TrackingParams, stage: str, run_params: Any = None) -> Iterator[Any]:
    """Yield an object with ``log_metrics(dict)`` and ``log_artifact(path)``; a no-op when disabled."""
    if not params.mlflow or os.environ.get("SAM3_EDGE_NO_MLFLOW"):
        LOG.info("mlflow tracking disabled (tracking.mlflow=false or SAM3_EDGE_NO_MLFLOW set)")
        yield _NoRun()
        return
    import mlflow

    uri = resolve_uri(params.uri)
    mlflow.set_tracking_uri(uri)
    with _store_lock(uri):  # creating / migrating the store and the experiment are not safe in parallel
        mlflow.set_experiment(params.experiment)
    with mlflow.start_run(run_name=stage) as run:
        _log_run_params(mlflow, stage, run_params)
        yield _Run(mlflow)
        LOG.info("mlflow run %s logged to %s", run.info.run_id, resolve_uri(params.uri))


def tracking_params(params_file: str | Path) -> TrackingParams:
    """The ``tracking`` section of a params file, or its defaults when the file has none (test profiles)."""
    from sam3_edge.params import load_section, read_params_file

    return load_section(params_file, "tracking") if "tracking" in read_params_file(params_file) else TrackingParams()


def start_stage_run(params: TrackingParams, stage: str, run_params: Any = None) -> _NoRun | _Run:
    """Open ``stage``'s MLflow run outside a ``with`` block (a training stage spans setup -> curves -> finish);
    the returned object's ``end(metrics_file)`` logs the final metrics and the metrics JSON, and closes it."""
    if not params.mlflow or os.environ.get("SAM3_EDGE_NO_MLFLOW"):
        LOG.info("mlflow tracking disabled (tracking.mlflow=false or SAM3_EDGE_NO_MLFLOW set)")
        return _NoRun()
    import mlflow

    uri = resolve_uri(params.uri)
    mlflow.set_tracking_uri(uri)
    with _store_lock(uri):
        mlflow.set_experiment(params.experiment)
    mlflow.start_run(run_name=stage)
    _log_run_params(mlflow, stage, run_params)
    return _Run(mlflow)


def _log_run_params(mlflow: Any, stage: str, run_params: Any) -> None:
    flat: dict[str, Any] = {}
    _flatten("", to_dict(run_params) if run_params is not None else {}, flat)
    if flat:
        mlflow.log_params({k: str(v)[:500] for k, v in flat.items()})
    mlflow.set_tag("stage", stage)


class _NoRun:
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        pass

    def log_artifact(self, path: str | Path) -> None:
        pass

    def end(self, metrics_file: str | Path | None = None) -> None:
        pass


class _Run:
    def __init__(self, mlflow: Any) -> None:
        self._mlflow = mlflow

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        flat: dict[str, Any] = {}
        _flatten("", metrics, flat)
        numeric = {k: float(v) for k, v in flat.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if numeric:
            self._mlflow.log_metrics(numeric, step=step)

    def log_artifact(self, path: str | Path) -> None:
        if Path(path).exists():
            self._mlflow.log_artifact(str(path))

    def end(self, metrics_file: str | Path | None = None) -> None:
        """Log the stage's final metrics (the numbers of ``metrics_file``) and the file itself; close the run."""
        if metrics_file is not None and Path(metrics_file).is_file():
            import json

            self.log_metrics({"final": json.loads(Path(metrics_file).read_text())})
            self.log_artifact(metrics_file)
        run = self._mlflow.active_run()
        self._mlflow.end_run()
        if run is not None:
            LOG.info("mlflow run %s closed", run.info.run_id)
