"""Stage `finetune_saco`: fine-tune trunk + text on the SA-Co train pairs (negatives via presence)."""

from __future__ import annotations

from _common import parser, run
from _train import add_common_args, build_student, curves, finish, prompt_check, setup

from sam3_edge.train.finetune import finetune_saco


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--index", required=True, help="dep: data/index/concepts_train.json")
    p.add_argument("--init", required=True, help="dep: distill_video final checkpoint")
    p.add_argument("--val-index", help="dep: data/index/concepts_val.json, for the prompt-path check after training")
    add_common_args(p)
    args = p.parse_args()
    student_params, params, digest, dist = setup(args.params, "finetune_saco", [args.index, args.init])
    student = build_student(student_params)
    with curves(args.live, dist) as on_log:
        metrics = finetune_saco(
            student,
            args.index,
            params,
            out_dir=args.out,
            params_hash=digest,
            init_from=args.init,
            dist=dist,
            on_log=on_log,
        )
    metrics["prompt_check"] = prompt_check(student, args.val_index, dist)
    finish(args.metrics, metrics, dist)


if __name__ == "__main__":
    run(main)
