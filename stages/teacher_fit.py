"""Stage `teacher_fit` (frozen): fit the bootstrap teacher of the embedded profile into the shipped directory.

Not part of a default `dvc repro`: the fitted teacher is committed (teachers/bootstrap) and the `teacher` stage
loads it. Refit on purpose with `make teacher-fit` (3098 s of training on 2 CPU cores at 8000 steps).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from _common import load, parser, run

from sam3_edge.teacher.build import fit_teacher
from sam3_edge.utils import sources_digest, write_json


def _code_record() -> dict:
    """The commit the fit ran from (and whether the tree had uncommitted changes), plus a digest of the code."""
    root = Path(__file__).resolve().parents[1]
    record = {"sources_sha256": sources_digest(root / "src" / "sam3_edge", root / "stages")}
    try:
        git = ["git", "-C", str(root)]
        record["git_commit"] = subprocess.run(
            [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            [*git, "status", "--porcelain", "--", "src", "stages"], capture_output=True, text=True, check=True
        )
        record["uncommitted_code_changes"] = bool(status.stdout.strip())
    except (OSError, subprocess.CalledProcessError) as err:
        record["git_commit"] = f"unknown: {err}"
    return record


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--train-index", required=True, help="data/index/concepts_train.json")
    p.add_argument("--val-index", required=True, help="data/index/concepts_val.json")
    p.add_argument("--out", required=True, help="out: the fitted teacher directory (teachers/bootstrap)")
    p.add_argument("--metrics", required=True, help="out: the fit's record (metrics/teacher_fit.json)")
    args = p.parse_args()
    params = load(args.params, "teacher")
    try:
        metrics = fit_teacher(params, train_index=args.train_index, val_index=args.val_index, out_dir=args.out)
    except ValueError as err:
        sys.exit(f"teacher_fit: {err}")
    metrics["command"] = " ".join(["python", *sys.argv])
    metrics["code"] = _code_record()
    write_json(args.metrics, metrics)


if __name__ == "__main__":
    run(main)
