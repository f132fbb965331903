from __future__ import annotations

from sam3_edge.report.config import TrackingParams
from stages._tracking import mlflow_run, project_root, resolve_uri


def test_project_root_from_dvc_exp_workspace(tmp_path):
    inner = tmp_path / "repo" / ".dvc" / "tmp" / "exps" / "tmpabc"
    assert project_root(inner) == tmp_path / "repo"
    assert project_root(tmp_path / "repo") == tmp_path / "repo"
    assert resolve_uri("sqlite:///mlflow.db", inner) == f"sqlite:///{tmp_path / 'repo' / 'mlflow.db'}"
    assert resolve_uri("sqlite:////abs/m.db", inner) == "sqlite:////abs/m.db"


def test_mlflow_run_logs_to_sqlite(tmp_path, monkeypatch):
    import mlflow

    monkeypatch.delenv("SAM3_EDGE_NO_MLFLOW", raising=False)  # conftest turns tracking off for the suite

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    params = TrackingParams(mlflow=True, uri=uri, experiment="t")
    with mlflow_run(params, "unit", run_params=params) as run:
        run.log_metrics({"eval": {"miou": 0.5}, "status": "ok"})
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["t"])
    assert len(runs) == 1 and runs["metrics.eval.miou"][0] == 0.5
    assert runs["params.experiment"][0] == "t"


def test_mlflow_disabled_is_a_noop(tmp_path):
    with mlflow_run(TrackingParams(mlflow=False, uri=f"sqlite:///{tmp_path / 'x.db'}"), "unit") as run:
        run.log_metrics({"a": 1.0})
    assert not (tmp_path / "x.db").exists()
