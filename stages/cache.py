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
from sam3_edge.cache.run import KINDS, cache_teacher
from sam3_edge.utils import write_json

PATHS = {
    "teacher": "teacher directory (models/teacher)",
    "index": "concepts_train.json | videos_train.json | images_distill.json",
    "out": "the cache directory",
    "metrics": "metrics/cache*.json",
}


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--kind", choices=KINDS, required=True)
    p.add_argument("--vocab", help="phrases: data/index/concepts_train.json (the noun-phrase vocabulary)")
    for flag, what in PATHS.items():
        p.add_argument(f"--{flag}", required=True, help=what)
    args = p.parse_args()
    if (args.kind == "phrases") != (args.vocab is not None):
        p.error("--vocab is required by --kind phrases and taken by it only")
    params = load(args.params, "cache")
    paths = {"teacher_dir": args.teacher, "index_file": args.index, "out_dir": args.out, "vocab_index": args.vocab}
    with rank_context() as ranks:
        metrics = cache_teacher(args.kind, params=params, ranks=ranks, **paths)
        if ranks.rank == 0:
            write_json(args.metrics, metrics)


if __name__ == "__main__":
    run(main)
