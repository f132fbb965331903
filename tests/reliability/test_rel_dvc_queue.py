"""Concurrency: two queued `dvc exp` runs executed in parallel (`dvc queue start -j 2`) in a throwaway DVC project
whose one stage logs through our MLflow helper (stages/_tracking.py) into a relative sqlite store. Both results
and both MLflow runs must come back intact: the temp workspaces resolve the store to the project root."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.reliability import ROOT, stage_env

pytestmark = pytest.mark.slow

STAGE = """
import json, time
from pathlib import Path
import yaml
from _tracking import mlflow_run
from sam3_edge.report.config import TrackingParams

x = yaml.safe_load(Path("params.yaml").read_text())["x"]
Path("out").mkdir(exist_ok=True)
tracking = TrackingParams(mlflow=True, uri="sqlite:///mlflow.db", experiment="queue-test")
with mlflow_run(tracking, "toy", {"x": x}) as run:
    for step in range(3):
        run.log_metrics({"y": x * 10 + step}, step=step)
        time.sleep(0.2)  # keep both experiments inside the store at the same time
Path("out/result.txt").write_text(f"x={x}\\n")
Path("metrics.json").write_text(json.dumps({"y": x * 10 + 2}))
"""

DVC_YAML = """stages:
  toy:
    cmd: python stage.py
    deps: [stage.py]
    params: [x]
    outs: [out]
    metrics:
      - metrics.json:
          cache: false
"""


def _run(cmd: list[str], cwd: Path, env: dict, timeout: float = 300) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_two_queued_experiments_in_parallel_keep_outputs_and_mlflow_runs_apart(tmp_path):
    proj = tmp_path / "proj"
    proj.mkdir()
    venv_bin = str(Path(os.sys.executable).parent)
    env = stage_env(
        SAM3_EDGE_NO_MLFLOW="",
        PATH=f"{venv_bin}:{os.environ.get('PATH', '')}",
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@localhost",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@localhost",
        DVC_NO_ANALYTICS="1",
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT / "stages")]),  # stage.py imports _tracking
    )
    env.pop("SAM3_EDGE_NO_MLFLOW")
    dvc = [str(Path(venv_bin) / "dvc")]
    (proj / "stage.py").write_text(STAGE)
    (proj / "dvc.yaml").write_text(DVC_YAML)
    (proj / "params.yaml").write_text("x: 0\n")
    (proj / ".gitignore").write_text("mlflow.db\nmlruns/\n")
    _run(["git", "init", "-q"], proj, env)
    _run([*dvc, "init", "-q"], proj, env)
    _run(["git", "add", "-A"], proj, env)
    _run(["git", "commit", "-qm", "toy"], proj, env)
    for name, x in (("exp-a", 1), ("exp-b", 2)):
        _run([*dvc, "exp", "run", "--queue", "-S", f"x={x}", "--name", name], proj, env)
    # `queue start` exits within seconds, but its daemonised workers inherit its stdout / stderr: with pipes,
    # subprocess.run waits for the workers to exit too (measured: exit 2 s, pipes closed 18 s), and a worker
    # that idles on made the call time out. Its output goes to a file; the status loop below is the wait.
    start_log = tmp_path / "queue-start.log"
    with start_log.open("w") as log:
        proc = subprocess.run(
            [*dvc, "queue", "start", "-j", "2"], cwd=proj, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=120
        )
    assert proc.returncode == 0, f"dvc queue start failed:\n{start_log.read_text()[-3000:]}"
    deadline = time.monotonic() + 400
    while True:
        status = _run([*dvc, "queue", "status"], proj, env)
        if "Queued" not in status and "Running" not in status:
            break
        assert time.monotonic() < deadline, f"queue did not finish:\n{status}"
        time.sleep(3)
    if status.count("Success") != 2:
        logs = "\n".join(_run([*dvc, "queue", "logs", n], proj, env)[-3000:] for n in ("exp-a", "exp-b"))
        pytest.fail(f"queued experiments failed:\n{status}\n{logs}")
    shown = json.loads(_run([*dvc, "exp", "show", "--json"], proj, env))
    results = {}

    def collect(node) -> None:  # exp show nests experiments under their baseline; find them by name
        if isinstance(node, dict):
            data = node.get("data")
            if isinstance(data, dict) and node.get("name") in ("exp-a", "exp-b") and data.get("metrics"):
                metrics = data["metrics"]["metrics.json"]["data"]
                results[node["name"]] = (data["params"]["params.yaml"]["data"]["x"], metrics["y"])
            for v in node.values():
                collect(v)
        elif isinstance(node, list):
            for v in node:
                collect(v)

    collect(shown)
    assert results == {"exp-a": (1, 12), "exp-b": (2, 22)}, shown
    # one MLflow store at the project root (not in the temp workspaces), holding both runs complete
    assert (proj / "mlflow.db").is_file() and not list((proj / ".dvc" / "tmp").rglob("mlflow.db"))
    db = sqlite3.connect(proj / "mlflow.db")
    runs = db.execute(
        "select r.run_uuid, r.status, p.value from runs r join params p on p.run_uuid = r.run_uuid and p.key = 'x'"
    ).fetchall()
    assert sorted((status, x) for _, status, x in runs) == [("FINISHED", "1"), ("FINISHED", "2")], runs
    for run_id, _, x in runs:
        ys = [
            v
            for (v,) in db.execute(
                "select value from metrics where run_uuid = ? and key = 'y' order by step", (run_id,)
            )
        ]
        assert ys == [int(x) * 10 + s for s in range(3)], (x, ys)
