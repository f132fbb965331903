"""Run frozen dvc.yaml stages on purpose, as `dvc repro` would run them, then record them in dvc.lock.

    python scripts/run_frozen.py teacher_fit                      (make teacher-fit)
    python scripts/run_frozen.py real_quantize real_export_fp32 real_export real_export_coreml real_benchmark
                                                                  (make bench-real)

`dvc repro` never runs a frozen stage (the shipped teacher's fit, the half-hour real-size exports), and `dvc
unfreeze` would rewrite the hand-written dvc.yaml. A name selects a stage or every item of a foreach / matrix stage
(``real_quantize`` = ``real_quantize@fp32``, ``@8da4w``, ...). Names run in the order given, the items of one name
in dvc.yaml order; each command runs from the repo root with ``DVC_STAGE`` set (not ``DVC_ROOT``: a frozen stage's
time is not part of ``metrics/pipeline.json``, the last ``dvc repro``), and each stage is committed (``dvc commit
--force``) as soon as its command succeeds, so a failure keeps what finished.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIPELINES = ("dvc.yaml", "real/dvc.yaml")  # the default pipeline (teacher_fit) and the real-size one


def frozen_stages(root: Path, names: list[str]) -> list[tuple[str, str]]:
    """``(addressing, cmd)`` of the frozen stages the names select, in the order described above."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        stages = [s for s in repo.index.stages if s.path_in_repo in PIPELINES]
    picked = []
    for name in names:
        found = [s for s in stages if s.name == name or s.name.startswith(f"{name}@")]
        if not found:
            raise SystemExit(f"dvc.yaml has no stage {name!r}")
        thawed = [s.addressing for s in found if not s.frozen]
        if thawed:
            raise SystemExit(f"{thawed}: not frozen; `dvc repro` runs them")
        picked += [(s.addressing, s.cmd if isinstance(s.cmd, str) else " && ".join(s.cmd)) for s in found]
    # a stage of real/dvc.yaml is addressed "real/dvc.yaml:<name>" (what `dvc commit` takes)
    return picked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stages", nargs="+", help="frozen stage names (a foreach / matrix name selects every item)")
    args = parser.parse_args()
    dvc = Path(sys.executable).with_name("dvc")
    env = {k: v for k, v in os.environ.items() if k != "DVC_ROOT"}
    env = {**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    for addressing, cmd in frozen_stages(ROOT, args.stages):
        print(f"run_frozen: {addressing}: {' '.join(cmd.split())}", flush=True)
        start = time.perf_counter()
        subprocess.run(cmd, shell=True, cwd=ROOT, check=True, env={**env, "DVC_STAGE": addressing})
        subprocess.run([str(dvc), "commit", "--force", "--quiet", addressing], cwd=ROOT, check=True, env=env)
        print(
            f"run_frozen: {addressing}: done in {time.perf_counter() - start:.0f} s, recorded in dvc.lock", flush=True
        )


if __name__ == "__main__":
    main()
