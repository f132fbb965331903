"""Stage `qat`: torchao QATConfig prepare -> train -> convert; writes the QAT-trained float checkpoint."""

from __future__ import annotations

from _common import parser, run
from _train import add_common_args, build_student, curves, finish, setup

from sam3_edge.train.finetune import qat


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--index", required=True, help="dep: data/index/concepts_train.json")
    p.add_argument("--init", required=True, help="dep: finetune_saco final checkpoint")
    add_common_args(p)
    args = p.parse_args()
    student_params, params, digest, dist = setup(args.params, "qat", [args.index, args.init])
    student = build_student(student_params)
    with curves(args.live, dist) as on_log:
        metrics = qat(
            student,
            args.index,
            params,
            out_dir=args.out,
            params_hash=digest,
            init_from=args.init,
            dist=dist,
            on_log=on_log,
        )
    finish(args.metrics, metrics, dist)


if __name__ == "__main__":
    run(main)
