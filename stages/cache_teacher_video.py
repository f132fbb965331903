"""Stage `cache_teacher_video`: per-frame teacher FPN features [T, C, h, w] fp16 of the SA-V train clips."""

from __future__ import annotations

from _common import load, parser, run

from sam3_edge.cache.distributed import rank_context
from sam3_edge.cache.run import cache_teacher_video
from sam3_edge.utils import write_json


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--teacher", required=True, help="teacher directory (models/teacher)")
    p.add_argument("--index", required=True, help="data/index/videos_train.json")
    p.add_argument("--out", required=True, help="cache/teacher_video/train")
    p.add_argument("--metrics", required=True, help="metrics/cache_video.json")
    args = p.parse_args()
    params = load(args.params, "cache")
    with rank_context() as (rank, world, barrier):
        metrics = cache_teacher_video(
            teacher_dir=args.teacher,
            index_file=args.index,
            out_dir=args.out,
            params=params,
            rank=rank,
            world_size=world,
            barrier=barrier,
        )
        if rank == 0:
            write_json(args.metrics, metrics)


if __name__ == "__main__":
    run(main)
