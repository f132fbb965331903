"""Stage `gates`: Go/No-Go from the evaluation and benchmark metrics; a missed gate never fails the stage."""

from __future__ import annotations

from pathlib import Path

from _common import load, parser, run

from sam3_edge.eval.gates import evaluate_gates, headline
from sam3_edge.utils import LOG, read_json, write_json

REQUIRED = {
    "eval-dir": "metrics/eval (reads <teacher>.json and <student>.json)",
    "benchmark": "deploy benchmark metrics json (may not exist yet)",
    "out": "out: metrics/gates.json",
}


def main() -> None:
    p = parser(__doc__)
    for flag, what in REQUIRED.items():
        p.add_argument(f"--{flag}", required=True, help=what)
    p.add_argument("--summary-dir", help="out: metrics/summary/<model>.json, the headline rows (dvc metrics show)")
    p.add_argument(
        "--summary-models",
        nargs="*",
        default=[],
        help="more evaluated models (metrics/eval/<name>.json) in the summary",
    )
    args = p.parse_args()
    params = load(args.params, "gates")
    eval_metrics = {}
    for name in dict.fromkeys([params.teacher, params.student, *args.summary_models]):
        path = Path(args.eval_dir) / f"{name}.json"
        if path.exists():
            eval_metrics[name] = read_json(path)
        else:
            LOG.warning("gates: %s not found; its figures are unknown", path)
    benchmark, reason = None, ""
    if Path(args.benchmark).exists():
        benchmark = read_json(args.benchmark)
    else:
        reason = f"{args.benchmark} not found (no benchmark stage output yet)"
    gated = {k: v for k, v in eval_metrics.items() if k in (params.teacher, params.student)}
    out = evaluate_gates(params, eval_metrics=gated, benchmark=benchmark, benchmark_reason=reason)
    write_json(args.out, out)
    if args.summary_dir:
        for row, figures in headline(eval_metrics, out).items():
            write_json(Path(args.summary_dir) / f"{row}.json", figures)
    LOG.info("gates: %s (%s)", out["decision"].upper(), out["decision_reason"])


if __name__ == "__main__":
    run(main)
