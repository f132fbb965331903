"""Data files for `dvc plots`: size vs latency vs mIoU per exported variant, presence precision/recall per model.

Rows are built from the same tables as the report (so the plot and the table cannot disagree); a variant or model
whose figures are missing is left out of the plot and listed in ``skipped`` with the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sam3_edge.report.config import ReportParams
from sam3_edge.report.tables import deployment_table, quantization_table
from sam3_edge.report.values import MetricsFile


def variant_rows(metrics_dir: str | Path, params: ReportParams) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per exported (backend, variant): size_mb, latency_ms, fps, miou (mIoU of the variant)."""
    metrics_dir = Path(metrics_dir)
    quant = {(r[1].value, r[0].value): r for r in quantization_table(metrics_dir, params).rows if r[0].present}
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    for row in deployment_table(metrics_dir).rows:
        backend, model, variant, _status, size, latency, fps = row[:7]
        if not backend.present:
            skipped.append(backend.text())
            continue
        label = f"{model.value}/{variant.value}@{backend.value}"
        key = (model.value, variant.value)
        miou = quant[key][5] if key in quant else None  # the quantization table's mIoU column
        figures = {"size_mb": size, "latency_ms": latency}
        absent = [f"{k}: {c.text()}" for k, c in figures.items() if c.number() is None]
        if absent:
            skipped.append(f"{label}: " + "; ".join(absent))
            continue
        rows.append(
            {
                "variant": label,
                "backend": backend.value,
                "size_mb": size.number(),
                "latency_ms": latency.number(),
                "fps": fps.number(),
                "miou": miou.number() if miou is not None else None,
            }
        )
    return rows, skipped


def presence_rows(metrics_dir: str | Path, params: ReportParams) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per evaluated model of the quality table: presence precision, recall, F1 at the eval threshold."""
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    for label, model in params.quality_models.items():
        f = MetricsFile.read(Path(metrics_dir) / "eval" / f"{model}.json", stage=f"evaluate@{model}")
        cells = {k: f.cell(f"presence.{k}") for k in ("precision", "recall", "f1")}
        absent = [f"{k}: {c.text()}" for k, c in cells.items() if c.number() is None and k != "f1"]
        if absent:
            skipped.append(f"{label}: " + "; ".join(absent))
            continue
        rows.append({"model": label, **{k: c.number() for k, c in cells.items()}})
    return rows, skipped


def plot_data(metrics_dir: str | Path, params: ReportParams) -> dict[str, dict[str, Any]]:
    """{"variants": {"rows", "skipped"}, "presence": {"rows", "skipped"}} for the stage to write."""
    v_rows, v_skip = variant_rows(metrics_dir, params)
    p_rows, p_skip = presence_rows(metrics_dir, params)
    return {"variants": {"rows": v_rows, "skipped": v_skip}, "presence": {"rows": p_rows, "skipped": p_skip}}
