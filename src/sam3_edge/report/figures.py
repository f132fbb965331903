"""The report's figures as PNG images (matplotlib, Agg): size vs latency vs mIoU per exported variant, presence
precision / recall per model, the training curves of every student stage.

Each figure is drawn from the same rows as the `dvc plots` data (``report.plots``) or from the dvclive files the
training stages write, so a figure and a table cannot disagree. A figure with nothing to draw is absent with the
reason (``Figure.png`` is None), as a table cell is.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOSS_FILE = "total.tsv"  # dvclive/<stage>/plots/metrics/total.tsv: step, total training loss


@dataclass(frozen=True)
class Figure:
    title: str
    caption: str
    png: bytes | None = None  # None: nothing to draw, ``caption`` says why

    @property
    def present(self) -> bool:
        return self.png is not None


def _render(draw, size: tuple[float, float] = (7.0, 4.2)) -> bytes:
    """PNG bytes of a matplotlib figure drawn by ``draw(fig)`` (no date or software metadata: stable bytes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=size, dpi=100)
    try:
        draw(fig)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None})
        return buf.getvalue()
    finally:
        plt.close(fig)


def variants_figure(rows: Sequence[dict[str, Any]], skipped: Sequence[str] = ()) -> Figure:
    """Size (MB) vs image latency (ms) of every executed export, each point labelled with its text mIoU."""
    title = "Exported programs: size vs latency vs mIoU"
    if not rows:
        return Figure(title, "absent: no export has both a size and a measured latency" + _skips(skipped))

    def draw(fig) -> None:
        ax = fig.add_subplot(1, 1, 1)
        for r in rows:
            ax.scatter(r["size_mb"], r["latency_ms"], s=40)
            miou = "mIoU n/a" if r.get("miou") is None else f"mIoU {r['miou']:.3f}"
            ax.annotate(f"{r['variant']}\n{miou}", (r["size_mb"], r["latency_ms"]), fontsize=7,
                        xytext=(4, 4), textcoords="offset points")  # fmt: skip
        ax.set_xlabel(".pte size, text + image programs (MB)")
        ax.set_ylabel("image latency p50 (ms)")
        ax.grid(alpha=0.3)

    caption = "From reports/plots/variants.json (the deployment and quantization tables)." + _skips(skipped)
    return Figure(title, caption, _render(draw))


def presence_figure(rows: Sequence[dict[str, Any]], skipped: Sequence[str] = ()) -> Figure:
    """Presence precision, recall and F1 per evaluated model (bars)."""
    title = "Presence precision / recall / F1 (val)"
    if not rows:
        return Figure(title, "absent: no evaluated model has presence figures" + _skips(skipped))

    def draw(fig) -> None:
        ax = fig.add_subplot(1, 1, 1)
        keys = ("precision", "recall", "f1")
        width = 0.8 / len(keys)
        for k, key in enumerate(keys):
            xs = [i + (k - 1) * width for i in range(len(rows))]
            ax.bar(xs, [r.get(key) or 0.0 for r in rows], width=width, label=key)
        ax.set_xticks(range(len(rows)), [r["model"] for r in rows], rotation=20, ha="right", fontsize=8)
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)

    caption = "From reports/plots/presence.json (metrics/eval/<model>.json, presence.*)." + _skips(skipped)
    return Figure(title, caption, _render(draw))


def read_curve(tsv: Path) -> tuple[list[float], list[float]]:
    """(steps, values) of a dvclive metric file (tab-separated, header ``step<TAB><name>``)."""
    steps, values = [], []
    with tsv.open(newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            name = next(k for k in row if k != "step")
            steps.append(float(row["step"]))
            values.append(float(row[name]))
    return steps, values


def training_figure(live_dir: str | Path | None, stages: Sequence[str]) -> Figure:
    """The total training loss against the step, one panel per student stage (``live_dir/<stage>/...``)."""
    title = "Training curves (total loss per step)"
    if live_dir is None:
        return Figure(title, "absent: no dvclive folder given to the report stage")
    curves, missing = {}, []
    for stage in stages:
        tsv = Path(live_dir) / stage / "plots" / "metrics" / LOSS_FILE
        if tsv.is_file():
            curves[stage] = read_curve(tsv)
        else:
            missing.append(f"{stage}: {tsv} absent (stage not run)")
    if not curves:
        return Figure(title, "absent: no training curve found" + _skips(missing))

    def draw(fig) -> None:
        for i, (stage, (steps, values)) in enumerate(curves.items()):
            ax = fig.add_subplot(1, len(curves), i + 1)
            ax.plot(steps, values, linewidth=1.0)
            ax.set_title(stage, fontsize=8)
            ax.set_xlabel("step", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)

    caption = f"From {live_dir}/<stage>/plots/metrics/{LOSS_FILE} (dvclive)." + _skips(missing)
    return Figure(title, caption, _render(draw, size=(2.4 * len(curves) + 1, 3.0)))


def _skips(skipped: Sequence[str]) -> str:
    """The left-out rows by label (``<label>: <why>`` -> label; the why is in the table and the stage log)."""
    return (
        (" Left out (figures absent, see the tables): " + ", ".join(s.split(":")[0] for s in skipped) + ".")
        if skipped
        else ""
    )


def report_figures(
    plots: dict[str, dict[str, Any]], live_dir: str | Path | None, stages: Sequence[str]
) -> list[Figure]:
    """The report's figures from ``report.plots.plot_data`` output and the training curves under ``live_dir``."""
    return [
        variants_figure(plots["variants"]["rows"], plots["variants"]["skipped"]),
        presence_figure(plots["presence"]["rows"], plots["presence"]["skipped"]),
        training_figure(live_dir, stages),
    ]
