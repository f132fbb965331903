"""Stage `export_fp32@…` / `export@…` / `export_real@…`: one variant's programs -> a `.pte` for one backend."""

from __future__ import annotations

import sys

from _common import load, parser, run

from sam3_edge.deploy.pipeline import SizeCheckError, run_export
from sam3_edge.deploy.report import stage_metrics
from sam3_edge.utils import LOG, write_json


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--backend", required=True, help="xnnpack | coreml | qnn")
    p.add_argument("--quantized", required=True, help="dep: the quantize stage's folder of this variant")
    p.add_argument("--reference", help="dep: the fp32 export folder of the same backend (size check)")
    p.add_argument("--out", required=True, help="out: folder with text.pte + image.pte + meta.json")
    p.add_argument("--metrics", required=True, help="out: metrics/export/<backend>_<variant>.json")
    args = p.parse_args()
    params = load(args.params, "export")
    try:
        meta = run_export(args.quantized, args.out, backend=args.backend, params=params, reference_dir=args.reference)
    except SizeCheckError as err:
        sys.exit(f"export failed: {err}")
    write_json(args.metrics, stage_metrics(meta))
    LOG.info("export %s/%s: %s %s", args.backend, meta["variant"], meta["status"], meta.get("reason", ""))


if __name__ == "__main__":
    run(main)
