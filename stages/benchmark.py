"""Stage `benchmark`: latency, peak memory, video FPS and parity of every .pte vs eager, through executorch.runtime."""

from __future__ import annotations

from _common import load, parser, run

from sam3_edge.deploy.benchmark import run_benchmark
from sam3_edge.utils import LOG, write_json


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--checkpoint", required=True, help="dep: the trained student checkpoint (eager reference)")
    p.add_argument("--quantized", required=True, help="dep: exports/quantized (fp32 folders hold the inputs)")
    p.add_argument("--pte", required=True, help="dep: exports/pte (one folder per model, backend and variant)")
    p.add_argument("--video-index", required=True, help="dep: data/index/videos_val.json (video FPS clip)")
    p.add_argument("--teacher-latency", help="dep: metrics/benchmark_teacher.json (frozen real_teacher_latency)")
    p.add_argument("--metrics", required=True, help="out: metrics/benchmark.json")
    args = p.parse_args()
    params = load(args.params, "benchmark")
    quantize = load(args.params, "quantize")
    metrics = run_benchmark(
        quantized_root=args.quantized,
        pte_root=args.pte,
        sources={
            "student": {"checkpoint": args.checkpoint},
            "real": {"random_variant": quantize.real_size_variant, "seed": quantize.seed},
        },
        params=params,
        video_index=args.video_index,
        teacher_latency=args.teacher_latency,
    )
    write_json(args.metrics, metrics)
    LOG.info("benchmark: %s", metrics.get("summary"))


if __name__ == "__main__":
    run(main)
