"""Stages `cache_teacher`, `cache_teacher_video` and `cache_phrases` (`--kind image|video|phrases`): the teacher's
outputs the student distils from, sharded, verified, resumable (a killed run keeps every verified shard).

- image: outputs + FPN features of K prompts per train image (`cache/teacher/train`);
- video: per-frame FPN features [T, C, h, w] fp16 of the SA-V train clips (`cache/teacher_video/train`);
- phrases: presence / class / boxes for every vocabulary phrase (`--vocab`) on each unlabeled image.

Scale out with `torchrun --nproc_per_node=N stages/cache.py --kind ...` (gloo; shards split by rank).
"""

from __future__ import annotations

from _common import load, parser, run

from sam3_edge.cache.distributed import rank_context
from sam3_edge.cache.phrases import cache_phrases
from sam3_edge.cache.run import cache_teacher, cache_teacher_video
from sam3_edge.utils import write_json


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--kind", choices=("image", "video", "phrases"), required=True)
    p.add_argument("--teacher", required=True, help="teacher directory (models/teacher)")
    p.add_argument("--index", required=True, help="concepts_train.json | videos_train.json | images_distill.json")
    p.add_argument("--vocab", help="phrases: data/index/concepts_train.json (the noun-phrase vocabulary)")
    p.add_argument("--out", required=True, help="the cache directory")
    p.add_argument("--metrics", required=True, help="metrics/cache*.json")
    args = p.parse_args()
    if (args.kind == "phrases") != (args.vocab is not None):
        p.error("--vocab is required by --kind phrases and taken by it only")
    params = load(args.params, "cache")
    with rank_context() as (rank, world, barrier):
        common = {"teacher_dir": args.teacher, "out_dir": args.out, "rank": rank, "world_size": world}
        if args.kind == "phrases":
            metrics = cache_phrases(
                **common, images_index=args.index, vocab_index=args.vocab, params=params.phrases, barrier=barrier
            )
        else:
            build = cache_teacher if args.kind == "image" else cache_teacher_video
            metrics = build(**common, index_file=args.index, params=params, barrier=barrier)
        if rank == 0:
            write_json(args.metrics, metrics)


if __name__ == "__main__":
    run(main)
