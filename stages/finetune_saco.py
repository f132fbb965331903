"""Stages `finetune_saco` and `qat` (`--section finetune_saco|qat`): train the student on the SA-Co train pairs
(negatives via presence), from `--init`. `finetune_saco` fine-tunes trunk + text; `qat` prepares torchao QAT,
trains and converts, writing the QAT-trained float checkpoint. They differ only in their params section."""

from __future__ import annotations

from _common import parser, run
from _train import add_common_args, build_student, curves, finish, prompt_check, setup, train_run

from sam3_edge.cache.store import open_phrase_cache
from sam3_edge.train.finetune import finetune_saco, qat

TRAIN = ("finetune_saco", "qat")


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--section", choices=sorted(TRAIN), default="finetune_saco", help="params section = stage")
    p.add_argument("--index", required=True, help="dep: data/index/concepts_train.json")
    p.add_argument("--init", required=True, help="dep: the previous stage's final checkpoint")
    p.add_argument("--val-index", help="dep: data/index/concepts_val.json, for the prompt-path check after training")
    p.add_argument("--phrase-cache", help="dep: cache/phrases/distill, when finetune_saco.phrase_set.weight > 0")
    add_common_args(p)
    args = p.parse_args()
    inputs = [args.index, args.init] + ([args.phrase_cache] if args.phrase_cache else [])
    student_params, params, digest, dist = setup(args.params, args.section, inputs)
    student = build_student(student_params)
    phrases = open_phrase_cache(args.phrase_cache) if args.phrase_cache else None
    with curves(args.live, dist) as on_log:
        run_ = train_run(args, digest, dist, on_log)
        if args.section == "finetune_saco":
            metrics = finetune_saco(student, args.index, params, run_, phrase_cache=phrases)
        else:
            metrics = qat(student, args.index, params, run_)
    if args.val_index:
        metrics["prompt_check"] = prompt_check(student, args.val_index, dist)
    finish(args.metrics, metrics, dist)


if __name__ == "__main__":
    run(main)
