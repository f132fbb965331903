"""Shared plumbing of the student training stages: params, student, torchrun, dvclive curves, metrics."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _common import load, stage_name
from _tracking import start_stage_run, tracking_params

import sam3_edge
from sam3_edge.config import params_hash
from sam3_edge.models import StudentParams, build_student
from sam3_edge.train.distributed import DistInfo, init_distributed, shutdown_distributed
from sam3_edge.train.loop import TrainRun
from sam3_edge.utils import atomic_path, sha256_file, sources_digest, write_json

LOG = logging.getLogger("sam3_edge.stages")
# The stage's MLflow run (rank 0): opened by setup(), fed per step by curves(), closed by finish(). A training
# stage is one process running one stage, so one module-level run is all there is to hold.
_RUN: Any = None


def add_common_args(p) -> None:
    p.add_argument("--out", required=True, help="out: checkpoint directory (last.safetensors, final.safetensors)")
    p.add_argument("--metrics", required=True, help="out: metrics/train/<stage>.json")
    p.add_argument("--live", required=True, help="out: dvclive directory of the training curves")


def input_fingerprints(paths: list[str]) -> dict[str, str]:
    """sha256 of each input: a file's bytes, a cache folder's ``manifest.json`` (which holds every shard's sha256)."""
    out = {}
    for p in paths:
        path = Path(p)
        target = path / "manifest.json" if path.is_dir() else path
        if not target.is_file():
            raise SystemExit(f"input {p}: {target} not found (run the stage that builds it first)")
        out[p] = sha256_file(target)
    return out


def code_fingerprint() -> str:
    """sha256 of the training code: every source of the ``sam3_edge`` package and of the stage scripts."""
    return sources_digest(Path(sam3_edge.__file__).parent, Path(__file__).parent)


def setup(params_file: str, section: str, inputs: list[str]) -> tuple[StudentParams, Any, str, DistInfo]:
    """Load ``student`` + the stage section. The hash of both, of the input files (``inputs``: cache folders,
    init checkpoints, index files) *and* of the code decides whether a checkpoint resumes: DVC keeps ``persist``
    outs when a dep changes, so a finished run over an older cache, init checkpoint or code (a loss fix) must
    start fresh, not be "resumed" as done. A code change restarts even an unfinished run: resuming across it would
    mix two versions of the training in one checkpoint.
    """
    student_params = load(params_file, "student")
    stage_params = load(params_file, section)
    digest = params_hash(
        {
            "student": student_params,
            section: stage_params,
            "inputs": input_fingerprints(inputs),
            "code": code_fingerprint(),
        }
    )
    dist = init_distributed()
    if dist.is_main:
        global _RUN
        _RUN = start_stage_run(
            tracking_params(params_file), stage_name(section), {"student": student_params, section: stage_params}
        )
    return student_params, stage_params, digest, dist


class _Curves:
    """``on_log(step, {name: value})`` writing dvclive curves, and ``start(step)``, which the training loop calls
    once it knows where it starts: rows after that step are dropped (all of them on a fresh start), so a run
    resumed from its checkpoint continues its own curves, and one resumed at its last step keeps them whole. The
    curve folders are ``persist`` outs in dvc.yaml, so dvc leaves them to this."""

    def __init__(self, live_dir: str) -> None:
        self.live_dir = Path(live_dir)
        self.live = None

    def start(self, step: int) -> None:
        from dvclive import Live

        if self.live is not None:
            return
        for tsv in sorted((self.live_dir / "plots" / "metrics").rglob("*.tsv")):
            lines = tsv.read_text().splitlines()
            col = lines[0].split("\t").index("step") if lines else 0
            kept = [row for row in lines[1:] if step > 0 and row and float(row.split("\t")[col]) <= step]
            if kept:
                with atomic_path(tsv) as tmp:
                    tmp.write_text("\n".join([lines[0], *kept]) + "\n")
            else:
                tsv.unlink()
        if step == 0:
            (self.live_dir / "metrics.json").unlink(missing_ok=True)
        self.live = Live(dir=str(self.live_dir), resume=step > 0, save_dvc_exp=False, dvcyaml=None, report=None)

    def __call__(self, step: int, row: dict[str, float]) -> None:
        if self.live is None:
            self.start(0)
        self.live.step = step
        for name, value in row.items():
            self.live.log_metric(name, value)
        self.live.next_step()
        if _RUN is not None:
            _RUN.log_metrics(row, step=step)

    def end(self) -> None:
        if self.live is not None:
            self.live.end()


@contextlib.contextmanager
def curves(live_dir: str, dist: DistInfo) -> Iterator[Any]:
    """Yield the :class:`_Curves` logger of the stage (rank 0; None on other ranks)."""
    if not dist.is_main:
        yield None
        return
    logger = _Curves(live_dir)
    try:
        yield logger
    finally:
        logger.end()


def train_run(args, digest: str, dist: DistInfo, on_log) -> TrainRun:
    """The stage's :class:`~sam3_edge.train.loop.TrainRun`: ``--out``, the resume key, ``--init`` if the stage takes
    one, its ranks and curve callback."""
    start = getattr(on_log, "start", None)
    return TrainRun(args.out, digest, init_from=getattr(args, "init", None), dist=dist, on_log=on_log, on_start=start)


def finish(metrics_file: str, metrics: dict[str, Any], dist: DistInfo) -> None:
    if dist.is_main:
        write_json(metrics_file, {**metrics, "world_size": dist.world_size})
        LOG.info("metrics written to %s", metrics_file)
        if _RUN is not None:
            _RUN.end(metrics_file)
    shutdown_distributed(dist)


__all__ = [
    "add_common_args",
    "build_student",
    "curves",
    "finish",
    "phrase_inputs",
    "prompt_check",
    "setup",
    "train_run",
]


def phrase_inputs(args) -> list[str]:
    """The phrase-set cache as a resume-key input, when the stage was given one."""
    return [args.phrase_cache] if getattr(args, "phrase_cache", None) else []


def prompt_check(student, val_index: str | None, dist: DistInfo) -> dict[str, Any]:
    """The prompt-path check of the trained student on val (``sam3_edge.train.diagnostics``), rank 0 only."""
    if not dist.is_main:
        return {}
    if not val_index:
        return {"status": "skipped", "reason": "no --val-index given"}
    from sam3_edge.train.diagnostics import prompt_diagnostics

    return prompt_diagnostics(student, val_index)
