"""Stages `benchmark` (the embedded student) and the frozen `real_benchmark` (the real-size student and SAM 3's
real-architecture latency, `make bench-real`): latency, peak memory, video FPS and parity of every .pte vs eager,
through executorch.runtime. `benchmark` copies the real-size figures of `--real-benchmark` into its json, so the
gates and the report read one file."""

from __future__ import annotations

from _common import load, parser, run

from sam3_edge.deploy.benchmark import merge_real, run_benchmark
from sam3_edge.utils import LOG, write_json


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--models", nargs="+", choices=["student", "real"], default=["student", "real"])
    p.add_argument("--checkpoint", help="dep: the trained student checkpoint (eager reference of `student`)")
    p.add_argument("--quantized", required=True, help="dep: exports/quantized (fp32 folders hold the inputs)")
    p.add_argument("--pte", required=True, help="dep: exports/pte (one folder per model, backend and variant)")
    p.add_argument("--video-index", required=True, help="dep: data/index/videos_val.json (video FPS clip)")
    p.add_argument("--teacher-latency", help="dep: metrics/benchmark_teacher.json (frozen real_teacher_latency)")
    p.add_argument("--real-benchmark", help="dep: metrics/benchmark_real.json (frozen real_benchmark), merged in")
    p.add_argument("--metrics", required=True, help="out: metrics/benchmark.json")
    args = p.parse_args()
    if "student" in args.models and not args.checkpoint:
        p.error("--models student needs --checkpoint")
    if "real" in args.models and args.real_benchmark:
        p.error("--real-benchmark merges a real-size run measured elsewhere: not with --models real")
    params = load(args.params, "benchmark")
    quantize = load(args.params, "quantize")
    sources = {
        "student": {"checkpoint": args.checkpoint},
        "real": {"random_variant": quantize.real_size_variant, "seed": quantize.seed},
    }
    metrics = run_benchmark(
        quantized_root=args.quantized,
        pte_root=args.pte,
        sources={m: s for m, s in sources.items() if m in args.models},
        params=params,
        video_index=args.video_index,
        teacher_latency=args.teacher_latency,
    )
    if "real" not in args.models:
        metrics = merge_real(metrics, args.real_benchmark)
    write_json(args.metrics, metrics)
    LOG.info("benchmark: %s", metrics.get("summary"))


if __name__ == "__main__":
    run(main)
