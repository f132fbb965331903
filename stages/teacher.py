"""Stage `teacher`: train the bootstrap teacher (embedded profile) or point at facebook/sam3 (real profile)."""

from __future__ import annotations

import sys

from _common import load, parser

from sam3_edge.teacher.build import build_teacher
from sam3_edge.teacher.load import TeacherWeightsMissing
from sam3_edge.utils import write_json


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--train-index", required=True, help="data/index/concepts_train.json")
    p.add_argument("--val-index", required=True, help="data/index/concepts_val.json")
    p.add_argument("--out", required=True, help="teacher directory (models/teacher)")
    p.add_argument("--metrics", required=True, help="metrics/teacher.json")
    args = p.parse_args()
    params = load(args.params, "teacher")
    try:
        metrics = build_teacher(params, train_index=args.train_index, val_index=args.val_index, out_dir=args.out)
    except TeacherWeightsMissing as err:
        sys.exit(f"teacher: {err}")
    write_json(args.metrics, metrics)


if __name__ == "__main__":
    main()
