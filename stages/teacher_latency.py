"""Stage `real_teacher_latency` (frozen, `make bench-real`): SAM 3's real architecture, eager, at 1008 px."""

from __future__ import annotations

from _common import load, parser, run

from sam3_edge.deploy.teacher_latency import real_teacher_latency
from sam3_edge.utils import LOG, write_json


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--metrics", required=True, help="out: metrics/benchmark_teacher.json")
    args = p.parse_args()
    params = load(args.params, "benchmark")
    result = real_teacher_latency(runs=params.teacher_runs, warmup=params.teacher_warmup, threads=params.threads)
    write_json(args.metrics, result)
    LOG.info("real-size teacher: p50 %.0f ms over %d runs", result["p50_ms"], len(result["runs_ms"]))


if __name__ == "__main__":
    run(main)
