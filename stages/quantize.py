"""Stage `quantize@<variant>` / `quantize_real@<variant>`: student -> one variant's torch.export programs."""

from __future__ import annotations

from _common import load, parser, run

from sam3_edge.deploy.pipeline import run_quantize
from sam3_edge.deploy.report import stage_metrics
from sam3_edge.utils import LOG, write_json


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--model", required=True, help="model name in paths and metrics (student | real)")
    p.add_argument("--variant", required=True, help="fp32 | fp16 | int8 | 8da4w | qat")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="dep: trained student checkpoint")
    src.add_argument("--real-size", action="store_true", help="random weights of quantize.real_size_variant")
    p.add_argument("--qat-checkpoint", help="dep (may be absent: recorded skip): the student's QAT checkpoint")
    p.add_argument(
        "--calib-index",
        "--val-index",  # the name until 2026-12-05 (the real-size stages still calibrate on val: random weights)
        dest="calib_index",
        required=True,
        help="dep: a concept index whose pairs calibrate the int8 observers and are the export's parity inputs "
        "(data/index/concepts_train.json: the val split is what the quantized students are scored on)",
    )
    p.add_argument("--out", required=True, help="out: folder of <program>.pt2 + inputs.safetensors + meta.json")
    p.add_argument("--metrics", required=True, help="out: metrics/quantize/<model>_<variant>.json")
    args = p.parse_args()
    params = load(args.params, "quantize")
    meta = run_quantize(
        args.out,
        model=args.model,
        variant=args.variant,
        params=params,
        checkpoint=args.checkpoint,
        random_variant=params.real_size_variant if args.real_size else None,
        qat_checkpoint=args.qat_checkpoint,
        calib_index=args.calib_index,
    )
    write_json(args.metrics, stage_metrics(meta))
    LOG.info("quantize %s/%s: %s", args.model, args.variant, meta["status"])


if __name__ == "__main__":
    run(main)
