"""Stage smoke tests: every student stage end to end as a subprocess, torchrun with 2 CPU processes, and
`dvc exp run -S` in a temporary git repo. All read the fake caches of the session fixture."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.stages import stage_script

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
TINY_OPTIM = {"steps": 2, "batch_size": 2, "checkpoint_every": 1, "log_every": 1, "warmup_steps": 1, "mask_size": 32}


def _params(path: Path) -> Path:
    data = {  # dict(...) copies: a shared dict would be dumped as a yaml anchor that `dvc exp -S` edits once
        "student": {"variant": "tiny"},
        "distill_phase1": {"optim": dict(TINY_OPTIM), "gt_weight": 0.5},
        "distill_phase2": {"optim": dict(TINY_OPTIM)},
        "distill_video": {"optim": dict(TINY_OPTIM), "clip_frames": 2},
        "finetune_saco": {"optim": dict(TINY_OPTIM)},
        "qat": {"optim": dict(TINY_OPTIM)},
    }
    path.write_text(yaml.safe_dump(data))
    return path


def _run(args: list[str], cwd: Path, *, mlflow: bool = False, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "SAM3_EDGE_QUIET": "1", "OMP_NUM_THREADS": "1"}
    if mlflow:  # tests/conftest.py turns MLflow off for stage subprocesses; this run logs to <cwd>/mlflow.db
        env.pop("SAM3_EDGE_NO_MLFLOW", None)
    res = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, **kw)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def _stage(name: str, params: Path, tmp: Path, *, mlflow: bool = False, **paths: str) -> dict:
    script, select = stage_script(name)
    args = [
        PY,
        str(script),
        *select,
        "--params",
        str(params),
        "--out",
        str(tmp / "ck" / name),
        "--metrics",
        str(tmp / "metrics" / f"{name}.json"),
        "--live",
        str(tmp / "live" / name),
    ]
    for k, v in paths.items():
        args += [f"--{k}", v]
    _run(args, cwd=tmp, mlflow=mlflow)
    return json.loads((tmp / "metrics" / f"{name}.json").read_text())


@pytest.mark.slow
def test_every_student_stage_runs(train_data, tmp_path):
    index_dir, cache_dir, video_dir = train_data
    params = _params(tmp_path / "params.yaml")
    ck = tmp_path / "ck"
    from sam3_edge.data.datasets import load_concept_pairs
    from sam3_edge.teacher.config import TeacherParams
    from sam3_edge.teacher.train import init_bootstrap_dir

    phrases = sorted({p.text for p in load_concept_pairs(index_dir / "concepts_train.json")})
    teacher = init_bootstrap_dir(TeacherParams(), phrases=phrases, out_dir=tmp_path / "teacher")
    m = _stage("distill_phase1", params, tmp_path, mlflow=True, cache=str(cache_dir), teacher=str(teacher))
    assert m["steps"] == 2 and m["world_size"] == 1
    _assert_mlflow_run(tmp_path / "mlflow.db", "distill_phase1", m)
    sp = m["speedup_vs_online_teacher"]  # the teacher is timed after training, on one training batch
    assert sp["status"] == "measured" and sp["teacher_forward_s"] > 0 and sp["speedup"] > 0
    assert (tmp_path / "live" / "distill_phase1" / "plots" / "metrics" / "total.tsv").exists()  # dvclive curve
    m = _stage(
        "distill_phase2", params, tmp_path, cache=str(cache_dir), init=str(ck / "distill_phase1/final.safetensors")
    )
    assert m["speedup_vs_online_teacher"] == {"status": "skipped", "reason": "no --teacher given"}
    # the chain of dvc.yaml: the fine-tune starts from phase 2, the video memory trains on the fine-tuned
    # student, the QAT starts from the final student (image + memory)
    _stage(
        "finetune_saco",
        params,
        tmp_path,
        index=str(index_dir / "concepts_train.json"),
        init=str(ck / "distill_phase2/final.safetensors"),
    )
    _stage("distill_video", params, tmp_path, cache=str(video_dir), init=str(ck / "finetune_saco/final.safetensors"))
    m = _stage(
        "qat",
        params,
        tmp_path,
        index=str(index_dir / "concepts_train.json"),
        init=str(ck / "distill_video/final.safetensors"),
    )
    assert m["converted_linears"] > 0
    # DVC keeps `persist` checkpoints when a dep changes: the same inputs resume the finished run, another init
    # checkpoint (an upstream stage re-ran) must train afresh instead of reporting the old run as done
    index = str(index_dir / "concepts_train.json")
    again = _stage("finetune_saco", params, tmp_path, index=index, init=str(ck / "distill_phase2/final.safetensors"))
    assert again["resumed_from_step"] == 2
    curve = tmp_path / "live" / "finetune_saco" / "plots" / "metrics" / "total.tsv"
    assert _steps(curve) == [1, 2]  # resumed at its last step: the curve is kept whole, not emptied
    other = _stage("finetune_saco", params, tmp_path, index=index, init=str(ck / "distill_phase1/final.safetensors"))
    assert other["resumed_from_step"] == 0 and other["steps"] == 2
    assert _steps(curve) == [1, 2]  # a fresh start replaces the old curve instead of appending to it


def _steps(tsv: Path) -> list[int]:
    return [int(row.split("\t")[0]) for row in tsv.read_text().splitlines()[1:]]


def _assert_mlflow_run(db: Path, stage: str, metrics: dict) -> None:
    """The stage logged one MLflow run: its params, per-step curves, final metrics and its metrics JSON."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("sam3-edge")
    assert experiment is not None, f"no MLflow experiment in {db}"
    runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.stage = '{stage}'")
    assert len(runs) == 1, [r.info.run_name for r in runs]
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.params[f"{stage}.optim.steps"] == str(metrics["steps"])
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "total")]
    assert steps == [1, 2], steps  # log_every 1, two steps: one point per logged step
    assert run.data.metrics["final.steps"] == metrics["steps"]
    artifacts = [a.path for a in client.list_artifacts(run.info.run_id)]
    assert f"{stage}.json" in artifacts, artifacts


@pytest.mark.slow
@pytest.mark.distributed
def test_torchrun_two_cpu_processes(train_data, tmp_path):
    _, cache_dir, _ = train_data
    params = _params(tmp_path / "params.yaml")
    torchrun = str(Path(PY).parent / "torchrun")
    _run(
        [
            torchrun,
            "--standalone",
            "--nproc_per_node",
            "2",
            str(ROOT / "stages" / "distill.py"),
            "--phase",
            "1",
            "--params",
            str(params),
            "--cache",
            str(cache_dir),
            "--out",
            str(tmp_path / "ck"),
            "--metrics",
            str(tmp_path / "m.json"),
            "--live",
            str(tmp_path / "live"),
        ],
        cwd=tmp_path,
    )
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["world_size"] == 2 and m["steps"] == 2
    assert (tmp_path / "ck" / "final.safetensors").exists()


@pytest.mark.slow
def test_dvc_exp_run_set_param(train_data, tmp_path):
    """`dvc exp run -S distill_phase1.optim.steps=3` in a temporary git repo holding just that stage."""
    _, cache_dir, _ = train_data
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copytree(ROOT / "stages", repo / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(cache_dir, repo / "cache")
    _params(repo / "params.yaml")
    stage = {
        "cmd": f"{PY} stages/distill.py --phase 1 --params params.yaml --cache cache --out ck --metrics "
        "metrics/p1.json --live live",
        "deps": ["stages/distill.py", "cache"],
        "params": ["student", "distill_phase1"],
        "outs": [{"ck": {"persist": True}}],
        "metrics": [{"metrics/p1.json": {"cache": False}}],
    }
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"distill_phase1": stage}}))
    (repo / ".gitignore").write_text("live/\n")
    dvc = str(Path(PY).parent / "dvc")
    for cmd in (
        ["git", "init", "-q"],
        ["git", "config", "user.email", "t@t"],
        ["git", "config", "user.name", "t"],
        [dvc, "init", "-q"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "init"],
    ):
        _run(cmd, cwd=repo)
    res = _run([dvc, "exp", "run", "-S", "distill_phase1.optim.steps=3"], cwd=repo)
    m = json.loads((repo / "metrics" / "p1.json").read_text())
    assert m["steps"] == 3, (res.stdout[-2000:], (repo / "params.yaml").read_text())
