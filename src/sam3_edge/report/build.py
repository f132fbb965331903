"""What the `report` stage calls: tables -> report.md + report.html, dvc plots data, the README results block."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from sam3_edge.report.config import ReportParams
from sam3_edge.report.figures import report_figures
from sam3_edge.report.plots import plot_data
from sam3_edge.report.render import ReportPage, results_snippet, update_readme_results, write_text
from sam3_edge.report.tables import pipeline_summary, report_tables
from sam3_edge.utils import write_json

LOG = logging.getLogger("sam3_edge.report")


def write_report(
    metrics_dir: str | Path,
    params: ReportParams,
    *,
    lock: dict[str, Any] | None,
    out_dir: str | Path,
    plots_dir: str | Path,
    gallery: str | Path | None = None,
    readme: str | Path | None = None,
    root: str | Path = ".",
    live_dir: str | Path | None = None,
) -> list[Path]:
    """Write ``out_dir/report.md``, ``out_dir/report.html`` (with its figures; the training curves from
    ``live_dir``, the dvclive folder), ``out_dir/results.md`` (the README block), ``plots_dir/{variants,presence}
    .json``, ``out_dir/pipeline.json`` (the declared pipeline-time metric); refresh ``readme``'s results block
    when given. Returns the paths."""
    out_dir, plots_dir = Path(out_dir), Path(plots_dir)
    sections = report_tables(metrics_dir, params, lock=lock, root=root)
    links: list[tuple[str, str]] = []
    if gallery is not None:
        rel = os.path.relpath(gallery, out_dir)
        state = "" if Path(gallery).exists() else " (missing: stage visual_qa not run)"
        links.append((f"Visual QA gallery{state}", rel))
    links.append(("Plot data (dvc plots show): size vs latency vs mIoU, presence precision/recall", "plots/"))
    written = [out_dir / "report.md", out_dir / "report.html", out_dir / "results.md"]
    plots = plot_data(metrics_dir, params)
    figures = report_figures(plots, live_dir, params.training_stages)
    page = ReportPage(sections, title=params.title, digits=params.digits, links=links, figures=figures)
    write_text(written[0], page.markdown())
    write_text(written[1], page.html())
    snippet = results_snippet(sections, digits=params.digits)
    note = (
        "_Produced by the `report` stage from `metrics/*.json` (reports/results.md), copied here by `make repro`"
        " (`sam3-edge readme`); do not edit by hand._\n\n"
    )
    write_text(written[2], note + snippet)
    written.append(out_dir / "pipeline.json")
    write_json(written[-1], pipeline_summary(Path(metrics_dir), lock))
    for name, data in plots.items():
        path = plots_dir / f"{name}.json"
        write_json(path, data["rows"])
        for reason in data["skipped"]:
            LOG.info("plot %s: left out %s", name, reason)
        written.append(path)
    if readme is not None:
        try:
            changed = update_readme_results(readme, note + snippet)
            LOG.info("README results block %s", "updated" if changed else "unchanged")
        except ValueError as err:  # no markers yet: recorded, the report itself is still written
            LOG.warning("README results block not updated: %s", err)
    return written
