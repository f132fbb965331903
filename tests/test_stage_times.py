"""Stage wall times: every stage run under `dvc repro` records its seconds in metrics/pipeline.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from stages._common import record_stage_time

ROOT = Path(__file__).resolve().parents[1]


def test_record_stage_time_keeps_other_stages_and_sums_them(tmp_path):
    path = tmp_path / "metrics" / "pipeline.json"
    record_stage_time(path, "data", 12.34)
    record_stage_time(path, "evaluate@student", 30.0)
    data = record_stage_time(path, "data", 10.0)  # a re-run replaces the stage's time
    assert data["stages"] == {"data": 10.0, "evaluate@student": 30.0} and data["total_s"] == 40.0
    assert json.loads(path.read_text()) == data
    path.write_text("{not json")  # an unreadable file starts over instead of failing a finished stage
    assert record_stage_time(path, "report", 1.0)["stages"] == {"report": 1.0}


def _stage_process(tmp_path: Path, env_extra: dict[str, str], body: str) -> subprocess.CompletedProcess:
    code = f"import sys\nfrom _common import run\n{body}"
    env = {k: v for k, v in os.environ.items() if k not in ("DVC_ROOT", "DVC_STAGE")}
    # the stage scripts import _common from their own folder
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "stages"), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={**env, **env_extra}, timeout=120)


def test_a_stage_under_dvc_records_its_time_only_when_it_succeeds(tmp_path):
    dvc = {"DVC_ROOT": str(tmp_path), "DVC_STAGE": "evaluate@student"}
    assert _stage_process(tmp_path, dvc, "import time\ndef main(): time.sleep(0.3)\nrun(main)").returncode == 0
    times = json.loads((tmp_path / "metrics" / "pipeline.json").read_text())
    assert list(times["stages"]) == ["evaluate@student"] and 0.3 <= times["stages"]["evaluate@student"] < 60
    failing = "def main(): sys.exit('bad input')\nrun(main)"
    assert _stage_process(tmp_path, {**dvc, "DVC_STAGE": "gates"}, failing).returncode == 1
    assert _stage_process(tmp_path, {}, "run(lambda: None)").returncode == 0  # outside dvc: not recorded
    assert list(json.loads((tmp_path / "metrics" / "pipeline.json").read_text())["stages"]) == ["evaluate@student"]


def test_pipeline_times_are_not_a_dvc_input():
    """The report depends on metrics/: a stage time must not re-run it, so the file is dvc-ignored."""
    assert "metrics/pipeline.json" in (ROOT / ".dvcignore").read_text().splitlines()
