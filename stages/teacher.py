"""Stage `teacher`: check, load and install the given teacher (the shipped bootstrap fit, or facebook/sam3)."""

from __future__ import annotations

import sys

from _common import load, parser, run

from sam3_edge.teacher.build import prepare_teacher
from sam3_edge.teacher.load import TeacherWeightsMissing
from sam3_edge.utils import write_json


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--shipped", required=True, help="dep: the shipped bootstrap teacher (teachers/bootstrap)")
    p.add_argument("--out", required=True, help="out: teacher directory (models/teacher)")
    p.add_argument("--metrics", required=True, help="out: metrics/teacher.json (identity and checks)")
    args = p.parse_args()
    params = load(args.params, "teacher")
    try:
        metrics = prepare_teacher(params, shipped_dir=args.shipped, out_dir=args.out)
    except (TeacherWeightsMissing, ValueError) as err:  # both name the file or the missing weights
        sys.exit(f"teacher: {err}")
    write_json(args.metrics, metrics)


if __name__ == "__main__":
    run(main)
