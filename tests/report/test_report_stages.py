"""Smoke tests of the `visual_qa` and `report` stage entrypoints (subprocesses, tiny params)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fakes import write_report_index
from tests.support.train import save_student

ROOT = Path(__file__).resolve().parents[2]
PARAMS = """
visual_qa:
  num_images: 2
  num_prompts: 3
  tile_size: 96
report:
  title: smoke
  readme_results: true
"""


def _stage(name: str, *, cwd: Path, **flags: str | Path) -> subprocess.CompletedProcess:
    """Run ``stages/<name>.py`` in ``cwd`` with ``--<flag> value`` for each of ``flags`` (``out_dir`` -> ``--out-dir``)."""
    env = {**os.environ, "SAM3_EDGE_QUIET": "1", "SAM3_EDGE_NO_MLFLOW": "1"}
    args = [part for k, v in flags.items() for part in (f"--{k.replace('_', '-')}", str(v))]
    return subprocess.run(
        [sys.executable, str(ROOT / "stages" / f"{name}.py"), "--params", "params.yaml", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_visual_qa_stage_with_a_student_checkpoint(tmp_path):
    import torch

    torch.set_num_threads(1)
    (tmp_path / "params.yaml").write_text(PARAMS)
    index = write_report_index(tmp_path / "data")
    save_student(tmp_path / "student.safetensors")
    specs = {"teacher": "teacher:models/teacher", "student": "student:student.safetensors"}
    outs = {"out": "reports/visual_qa/index.html", "metrics": "metrics/visual_qa.json"}
    r = _stage("visual_qa", concept_index=index, **specs, **outs, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((tmp_path / "metrics" / "visual_qa.json").read_text())
    assert summary["tiles"] == 6 and summary["sorted_by"] == "student"
    assert summary["columns"]["teacher"]["reason"] == "missing (stage teacher not run: models/teacher absent)"
    assert summary["columns"]["quantized"]["reason"] == "missing (no --quantized model given)"
    assert summary["columns"]["student"]["tiles"] == 6
    html = (tmp_path / "reports" / "visual_qa" / "index.html").read_text()
    assert html.count("data:image/png;base64,") == 6 * 2


def test_report_stage_without_any_metrics_and_with_readme(tmp_path):
    (tmp_path / "params.yaml").write_text(PARAMS)
    (tmp_path / "README.md").write_text("# x\n<!-- results:start -->\nold\n<!-- results:end -->\n")
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "data.json").write_text(json.dumps({"saco": {"val": {"pairs": 12}}}))
    (tmp_path / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  data:\n    outs:\n    - path: metrics/data.json\n      size: 40\n"
    )
    outs = {"out_dir": "reports", "plots_dir": "reports/plots", "gallery": "reports/visual_qa/index.html"}
    r = _stage("report", metrics_dir="metrics", lock="dvc.lock", **outs, readme="README.md", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    md = (tmp_path / "reports" / "report.md").read_text()
    assert "| saco.val.pairs | 12 |" in md and "| data | metrics/data.json | 40 B | 1 | yes |" in md
    assert "missing (stage evaluate@teacher not run)" in md
    readme = (tmp_path / "README.md").read_text()
    assert "\nold\n" not in readme and "### Quality (val split)" in readme
    assert json.loads((tmp_path / "reports" / "plots" / "variants.json").read_text()) == []


def test_report_stage_rejects_unknown_param(tmp_path):
    (tmp_path / "params.yaml").write_text("report:\n  titel: x\n")
    r = _stage("report", metrics_dir="m", out_dir="r", plots_dir="p", cwd=tmp_path)
    assert r.returncode != 0 and "unknown key report.titel" in r.stderr
