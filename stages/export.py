"""Stage `export@<backend>` (every variant of one backend: fp32 first, the size reference) and the frozen
`real_export_fp32` / `real_export@<variant>` (one variant each): quantized programs -> `.pte` files.

One backend: ``--backend B --quantized-root exports/quantized/student --out-root exports/pte/student/B
--metrics-dir metrics/export/student/B``; the variants come from ``export.variants``, lowered ``export.jobs`` at a
time, then the backend's ``export.backend_variants`` entry. One variant: ``--quantized <dir> --out <dir> --metrics <json> [--reference <fp32 dir>]``.
"""

from __future__ import annotations

import sys

from _common import load, parser, run

from sam3_edge.deploy.pipeline import ExportError, SizeCheckError, export_backend, run_export
from sam3_edge.deploy.report import stage_metrics
from sam3_edge.utils import LOG, write_json


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--backend", required=True, help="xnnpack | coreml | qnn")
    p.add_argument("--quantized-root", help="dep: the quantize stages' folder, one sub-folder per variant")
    p.add_argument("--out-root", help="out: one folder per variant (text.pte + image.pte + meta.json)")
    p.add_argument("--metrics-dir", help="out: one <variant>.json per variant")
    p.add_argument(
        "--backend-variants-only", action="store_true", help="fp32 and export.backend_variants.<backend> only"
    )
    p.add_argument("--quantized", help="dep: the quantize stage's folder of one variant")
    p.add_argument("--reference", help="dep: the fp32 export folder of the same backend (size check)")
    p.add_argument("--out", help="out: folder with text.pte + image.pte + meta.json")
    p.add_argument("--metrics", help="out: metrics/export/<model>/<backend>_<variant>.json")
    args = p.parse_args()
    params = load(args.params, "export")
    backend_mode = [args.quantized_root, args.out_root, args.metrics_dir]
    variant_mode = [args.quantized, args.out, args.metrics]
    if all(backend_mode) and not any(variant_mode):
        try:
            export_backend(
                args.quantized_root,
                args.out_root,
                args.metrics_dir,
                backend=args.backend,
                variants=params.backend_variants.get(args.backend, ())
                if args.backend_variants_only
                else params.variants_for(args.backend),
                params=params,
            )
        except ExportError as err:
            sys.exit(f"export failed: {err}")
        return
    if not all(variant_mode) or any(backend_mode):
        p.error("give --quantized-root/--out-root/--metrics-dir (a backend) or --quantized/--out/--metrics (a variant)")
    try:
        meta = run_export(args.quantized, args.out, backend=args.backend, params=params, reference_dir=args.reference)
    except SizeCheckError as err:
        sys.exit(f"export failed: {err}")
    write_json(args.metrics, stage_metrics(meta))
    LOG.info("export %s/%s: %s %s", args.backend, meta["variant"], meta["status"], meta.get("reason", ""))


if __name__ == "__main__":
    run(main)
