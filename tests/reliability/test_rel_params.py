"""Invalid params fail before any work starts, naming the key: the real stage entrypoints exit non-zero with the
key in the message and create no output."""

from __future__ import annotations

import runpy
import subprocess
import sys

import pytest
import yaml

from sam3_edge.config import ParamsError
from sam3_edge.params import validate_params_file
from tests.support.reliability import ROOT, stage_cmd, stage_env
from tests.support.stages import stage_script

OPTIM = {"steps": 2, "batch_size": 1}
# (stage, its params sections, the key the error must name)
BAD = {
    "unknown_key": ("cache_teacher", {"cache": {"prompts_per_imag": 2}}, "cache.prompts_per_imag"),
    "wrong_type": ("export", {"export": {"parity_samples": "two"}}, "export.parity_samples"),
    "negative_lr": (
        "distill_phase1",
        {"student": {}, "distill_phase1": {"optim": {**OPTIM, "lr": -0.1}}},
        "distill_phase1.optim.lr",
    ),
    "prompt_mix_sum": (
        "distill_phase2",
        {"student": {}, "distill_phase2": {"optim": OPTIM, "prompt_mix": {"text": 0.5, "point": 0.2, "box": 0.2}}},
        "distill_phase2.prompt_mix",
    ),
    "unknown_section": ("export", {"exports": {}}, "exports"),
}


def _args(stage: str, tmp) -> list[str]:
    out, metrics = tmp / "out", tmp / "metrics" / f"{stage}.json"
    common = ["--out", str(out), "--metrics", str(metrics)]
    return {
        "cache_teacher": ["--teacher", str(tmp / "teacher"), "--index", str(tmp / "index.json"), *common],
        "export": ["--backend", "xnnpack", "--quantized", str(tmp / "q"), *common],
        "distill_phase1": ["--cache", str(tmp / "cache"), *common, "--live", str(tmp / "live")],
        "distill_phase2": [
            "--cache",
            str(tmp / "cache"),
            "--init",
            str(tmp / "init.safetensors"),
            *common,
            "--live",
            str(tmp / "live"),
        ],
    }[stage]


def _write(tmp, sections) -> str:
    path = tmp / "bad.yaml"
    path.write_text(yaml.safe_dump(sections))
    return str(path)


def _nothing_written(tmp) -> list[str]:
    return sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.name != "bad.yaml")


@pytest.mark.parametrize("case", sorted(BAD))
def test_stage_entrypoint_rejects_bad_params_before_work(case, tmp_path, monkeypatch):
    """In-process run of the real `stages/<x>.py` (fast): SystemExit naming the key, nothing written."""
    stage, sections, key = BAD[case]
    params = _write(tmp_path, sections)
    script, select = stage_script(stage)
    monkeypatch.syspath_prepend(str(ROOT / "stages"))
    monkeypatch.setattr(sys, "argv", [str(script), *select, "--params", params, *_args(stage, tmp_path)])
    with pytest.raises(SystemExit) as info:
        runpy.run_path(str(script), run_name="__main__")
    assert info.value.code not in (0, None)
    assert key in str(info.value.code) and params in str(info.value.code)
    assert _nothing_written(tmp_path) == []


@pytest.mark.slow
@pytest.mark.parametrize("case", ["negative_lr", "unknown_key"])
def test_stage_subprocess_exits_nonzero_with_the_key_in_stderr(case, tmp_path):
    stage, sections, key = BAD[case]
    params = _write(tmp_path, sections)
    cmd = stage_cmd(stage, params, *_args(stage, tmp_path))  # type: ignore[arg-type]
    proc = subprocess.run(cmd, cwd=ROOT, env=stage_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and key in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert _nothing_written(tmp_path) == []


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("cache: {prompt_mix: {text: 0.6, point: 0.6}}", "cache.prompt_mix"),
        ("teacher: {train: {prompt_mix: {text: 0.2, point: 0.2, box: 0.2}}}", "teacher.train.prompt_mix"),
        ("distill_phase1: {prompt_mix: {text: 2.0}}", "distill_phase1.prompt_mix"),
        ("distill_phase1: {optim: {lr: 0}}", "distill_phase1.optim.lr"),
        ("cache: {images_per_shard: 1.5}", "cache.images_per_shard"),
        ("data: {max_image_pixels: -1}", "data.max_image_pixels"),
    ],
)
def test_impossible_values_name_their_key(tmp_path, text, key):
    path = tmp_path / "p.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ParamsError, match=key.replace(".", r"\.")):
        validate_params_file(path)


def test_shares_summing_to_one_with_float_noise_are_accepted(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("cache: {prompt_mix: {text: 0.1, point: 0.2, box: 0.7}}\n")  # 0.1 + 0.2 + 0.7 != 1.0 exactly
    validate_params_file(path)
