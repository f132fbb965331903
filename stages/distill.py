"""Stages `distill_phase1` / `distill_phase2` (`--phase 1|2`): the student from the cached teacher (never loaded
to train). Phase 1 aligns features with the cached teacher FPN levels, encoder tokens and phrase embeddings;
phase 2 refines outputs from the cached teacher logits + GT, starting from phase 1 (`--init`). Both add the
grouped phrase-set distillation (`--phrase-cache`) and end with the prompt-path check on val."""

from __future__ import annotations

from _common import parser, run
from _speedup import speedup
from _train import add_common_args, build_student, curves, finish, phrase_inputs, prompt_check, setup, train_run

from sam3_edge.cache import open_cache
from sam3_edge.cache.store import open_phrase_cache
from sam3_edge.train.phases import distill_phase1, distill_phase2


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--phase", type=int, choices=(1, 2), required=True, help="1: features, 2: outputs")
    p.add_argument("--cache", required=True, help="dep: teacher cache directory (cache/teacher/train)")
    p.add_argument("--init", help="dep: the phase-1 final checkpoint (phase 2)")
    p.add_argument("--teacher", help="dep: teacher directory, loaded only AFTER training to time it online")
    p.add_argument("--phrase-cache", help="dep: phrase-set cache (cache/phrases/distill), for phrase_set.weight > 0")
    p.add_argument("--val-index", help="dep: data/index/concepts_val.json, for the prompt-path check after training")
    add_common_args(p)
    args = p.parse_args()
    if (args.phase == 2) != (args.init is not None):
        p.error("--init is required by phase 2 and taken by phase 2 only")
    section = f"distill_phase{args.phase}"
    inputs = [args.cache, *([args.init] if args.init else []), *phrase_inputs(args)]
    student_params, params, digest, dist = setup(args.params, section, inputs)
    student = build_student(student_params)
    train = distill_phase1 if args.phase == 1 else distill_phase2
    phrases = open_phrase_cache(args.phrase_cache) if args.phrase_cache else None
    with curves(args.live, dist) as on_log:
        metrics = train(
            student, open_cache(args.cache), params, train_run(args, digest, dist, on_log), phrase_cache=phrases
        )
    o = params.optim
    metrics["speedup_vs_online_teacher"] = speedup(
        args.teacher, args.cache, metrics, o.batch_size, o.seed, params.prompt_mix, dist
    )
    metrics["prompt_check"] = prompt_check(student, args.val_index, dist)
    finish(args.metrics, metrics, dist)


if __name__ == "__main__":
    run(main)
