"""Stage `distill_phase1`: align student features with the cached teacher features (teacher never loaded)."""

from __future__ import annotations

from _common import parser, run
from _speedup import speedup
from _train import (
    add_common_args,
    build_student,
    curves,
    finish,
    phrase_inputs,
    prompt_check,
    setup,
)

from sam3_edge.cache import open_cache
from sam3_edge.cache.store import open_phrase_cache
from sam3_edge.train.phases import distill_phase1


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--cache", required=True, help="dep: teacher cache directory (cache/teacher/train)")
    p.add_argument("--teacher", help="dep: teacher directory, loaded only AFTER training to time it online")
    p.add_argument("--phrase-cache", help="dep: phrase-set cache (cache/phrases/distill), for phrase_set.weight > 0")
    p.add_argument("--val-index", help="dep: data/index/concepts_val.json, for the prompt-path check after training")
    add_common_args(p)
    args = p.parse_args()
    student_params, params, digest, dist = setup(args.params, "distill_phase1", [args.cache, *phrase_inputs(args)])
    student = build_student(student_params)
    with curves(args.live, dist) as on_log:
        metrics = distill_phase1(
            student,
            open_cache(args.cache),
            params,
            out_dir=args.out,
            params_hash=digest,
            dist=dist,
            on_log=on_log,
            phrase_cache=open_phrase_cache(args.phrase_cache) if args.phrase_cache else None,
        )
    o = params.optim
    metrics["speedup_vs_online_teacher"] = speedup(
        args.teacher, args.cache, metrics, o.batch_size, o.seed, params.prompt_mix, dist
    )
    metrics["prompt_check"] = prompt_check(student, args.val_index, dist)
    finish(args.metrics, metrics, dist)


if __name__ == "__main__":
    run(main)
