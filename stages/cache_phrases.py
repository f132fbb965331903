"""Stage `cache_phrases`: the teacher's presence / class / boxes for a phrase set on every unlabeled image.

Scale out with `torchrun --nproc_per_node=N stages/cache_phrases.py ...` (gloo; shards split by rank).
"""

from __future__ import annotations

from _common import load, parser, run

from sam3_edge.cache.distributed import rank_context
from sam3_edge.cache.phrases import cache_phrases
from sam3_edge.utils import write_json


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--teacher", required=True, help="teacher directory (models/teacher)")
    p.add_argument("--images", required=True, help="data/index/images_distill.json (unlabeled images)")
    p.add_argument("--vocab", required=True, help="data/index/concepts_train.json (the noun-phrase vocabulary)")
    p.add_argument("--out", required=True, help="cache/phrases/distill")
    p.add_argument("--metrics", required=True, help="metrics/cache_phrases.json")
    args = p.parse_args()
    params = load(args.params, "cache")
    with rank_context() as (rank, world, barrier):
        metrics = cache_phrases(
            teacher_dir=args.teacher,
            images_index=args.images,
            vocab_index=args.vocab,
            out_dir=args.out,
            params=params.phrases,
            rank=rank,
            world_size=world,
            barrier=barrier,
        )
        if rank == 0:
            write_json(args.metrics, metrics)


if __name__ == "__main__":
    run(main)
