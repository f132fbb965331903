"""scripts/run_frozen.py: which frozen dvc.yaml stages a name selects, and what it refuses."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("run_frozen", ROOT / "scripts" / "run_frozen.py")
run_frozen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_frozen)


def test_real_size_stages_are_frozen_and_follow_params():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    picked = run_frozen.frozen_stages(ROOT, ["real_quantize", "real_export_fp32", "real_export"])
    names = [name for name, _ in picked]
    assert names == [  # the real-size pipeline's own dvc.yaml, off the default `dvc repro`
        *(f"real/dvc.yaml:real_quantize@{v}" for v in params["quantize"]["real_variants"]),
        "real/dvc.yaml:real_export_fp32",
        *(f"real/dvc.yaml:real_export@{v}" for v in params["export"]["real_variants"]),
    ]
    cmds = dict(picked)
    assert "--real-size" in cmds[names[0]] and "--reference" not in cmds["real/dvc.yaml:real_export_fp32"]
    assert all("--reference exports/pte/real/xnnpack_fp32" in cmds[n] for n in names if "real_export@" in n)
    assert [n for n, _ in run_frozen.frozen_stages(ROOT, ["teacher_fit"])] == ["teacher_fit"]  # the root dvc.yaml


def test_refuses_unknown_and_unfrozen_stages():
    with pytest.raises(SystemExit, match="no stage"):
        run_frozen.frozen_stages(ROOT, ["no_such_stage"])
    with pytest.raises(SystemExit, match="not frozen"):
        run_frozen.frozen_stages(ROOT, ["benchmark"])
