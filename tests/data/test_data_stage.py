"""Smoke test of `stages/data.py` on a shrunken params file, as dvc runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PARAMS = """
data:
  source: synthetic
  seed: 3
  synthetic:
    num_train_images: 4
    num_val_images: 3
    image_size: 96
    num_train_videos: 1
    num_val_videos: 1
    video_frames: 8
    video_size: 64
    small_size: [10, 16]
    large_size: [22, 30]
"""


def _run(tmp_path: Path, params: str) -> subprocess.CompletedProcess:
    (tmp_path / "params.yaml").write_text(params)
    cmd = [
        sys.executable,
        str(ROOT / "stages/data.py"),
        "--params",
        "params.yaml",
        "--synthetic-dir",
        "data/synthetic",
        "--index-dir",
        "data/index",
        "--extract-dir",
        "data/extracted",
        "--metrics",
        "metrics/data.json",
    ]
    env = {**os.environ, "SAM3_EDGE_QUIET": "1"}
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=120)


def test_data_stage_smoke(tmp_path):
    done = _run(tmp_path, PARAMS)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "metrics/data.json").read_text())
    assert metrics["sa1b"]["train"]["images"] == 4 and metrics["sav"]["val"]["videos"] == 1
    assert metrics["saco"]["val"]["negative_fraction"] >= 0.3 and metrics["skipped"]["total"] == 0
    assert (tmp_path / "data/index/concepts_val.json").is_file()
    assert not list((tmp_path / "data").glob("*.partial"))
    first = (tmp_path / "data/index/concepts_train.json").read_bytes()
    again = _run(tmp_path, PARAMS)  # complete synthetic data is reused, the index is identical
    assert again.returncode == 0 and "reusing it" in again.stderr
    assert (tmp_path / "data/index/concepts_train.json").read_bytes() == first


def test_data_stage_rejects_bad_params_and_missing_real_dirs(tmp_path):
    done = _run(tmp_path, PARAMS.replace("seed: 3", "sede: 3"))
    assert done.returncode != 0 and "unknown key data.sede" in done.stderr and "Traceback" not in done.stderr
    done = _run(tmp_path, "data:\n  source: real\n  real:\n    train:\n      sav: [/no/such/sav]\n")
    assert done.returncode != 0 and "data.real.train.sav[0]: folder /no/such/sav does not exist" in done.stderr
    assert "Traceback" not in done.stderr
