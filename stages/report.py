"""Stage `report`: reports/report.{md,html}, dvc plots data and the README results block, from metrics JSON."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from _common import load, parser, run

from sam3_edge.report.build import write_report
from sam3_edge.utils import LOG


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--metrics-dir", required=True, help="metrics/ (every stage's metrics JSON)")
    p.add_argument("--lock", default="dvc.lock", help="dvc.lock, for the artifact list (read, not a dep)")
    p.add_argument("--out-dir", required=True, help="out: reports/ (report.md, report.html)")
    p.add_argument("--plots-dir", required=True, help="out: reports/plots/*.json for `dvc plots`")
    p.add_argument("--gallery", help="the visual QA page, linked from the report")
    p.add_argument("--live-dir", help="dep: dvclive/ (the training stages' curves, drawn in report.html)")
    p.add_argument("--readme", help="README.md whose results block is refreshed (report.readme_results)")
    args = p.parse_args()
    params = load(args.params, "report")
    lock_path = Path(args.lock)
    lock = yaml.safe_load(lock_path.read_text()) if lock_path.exists() else None
    written = write_report(
        args.metrics_dir,
        params,
        lock=lock,
        out_dir=args.out_dir,
        plots_dir=args.plots_dir,
        gallery=args.gallery,
        readme=args.readme if params.readme_results else None,
        root=os.getcwd(),
        live_dir=args.live_dir,
    )
    LOG.info("report: wrote %s", ", ".join(str(w) for w in written))


if __name__ == "__main__":
    run(main)
