"""Stage `distill_video`: train only the video memory from the cached per-frame teacher features + SA-V GT."""

from __future__ import annotations

from _common import parser, run
from _train import add_common_args, build_student, curves, finish, setup, train_run

from sam3_edge.cache import open_cache
from sam3_edge.train.video import distill_video


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--cache", required=True, help="dep: video teacher cache (cache/teacher_video/train)")
    p.add_argument("--init", required=True, help="dep: phase-2 final checkpoint")
    add_common_args(p)
    args = p.parse_args()
    student_params, params, digest, dist = setup(args.params, "distill_video", [args.cache, args.init])
    student = build_student(student_params)
    with curves(args.live, dist) as on_log:
        metrics = distill_video(student, open_cache(args.cache), params, train_run(args, digest, dist, on_log))
    finish(args.metrics, metrics, dist)


if __name__ == "__main__":
    run(main)
