"""The report's figures: PNGs drawn from the plot rows and dvclive curves, absent with the reason, in report.html."""

from __future__ import annotations

import base64
import re

from sam3_edge.report.figures import presence_figure, read_curve, training_figure, variants_figure
from sam3_edge.report.render import CELL_CHARS, ReportPage
from sam3_edge.report.tables import Table
from sam3_edge.report.values import Cell

PNG = b"\x89PNG\r\n\x1a\n"
ROWS = [
    {"variant": "student/int8@xnnpack", "size_mb": 5.2, "latency_ms": 5.1, "miou": 0.505},
    {"variant": "student/fp32@xnnpack", "size_mb": 17.3, "latency_ms": 6.4, "miou": None},
]


def test_variants_figure_is_a_stable_png_and_names_what_it_left_out():
    a = variants_figure(ROWS, ["real/int8@xnnpack: latency_ms: skipped: no fp32 inputs"])
    assert a.present and a.png.startswith(PNG)
    assert a.png == variants_figure(ROWS, []).png  # no time stamp in the bytes
    assert "Left out" in a.caption and "real/int8@xnnpack" in a.caption and "no fp32 inputs" not in a.caption
    empty = variants_figure([], ["x: y"])
    assert not empty.present and empty.caption.startswith("absent:")


def test_presence_figure_draws_every_model():
    rows = [{"model": "teacher", "precision": 0.96, "recall": 0.93, "f1": 0.945}]
    assert presence_figure(rows).png.startswith(PNG)
    assert not presence_figure([]).present


def test_training_figure_reads_dvclive_curves(tmp_path):
    metrics = tmp_path / "dvclive" / "finetune_saco" / "plots" / "metrics"
    metrics.mkdir(parents=True)
    (metrics / "total.tsv").write_text("step\ttotal\n20\t13.5\n40\t12.0\n")
    assert read_curve(metrics / "total.tsv") == ([20.0, 40.0], [13.5, 12.0])
    fig = training_figure(tmp_path / "dvclive", ["finetune_saco", "qat"])
    assert fig.present and "qat" in fig.caption  # the stage without a curve is named
    assert not training_figure(tmp_path / "nowhere", ["qat"]).present
    assert not training_figure(None, ["qat"]).present


def test_report_html_inlines_figures_and_cuts_long_cells():
    long = "failed: " + "x" * 300
    table = Table(title="T", headers=["a"], rows=[[Cell(value=long)]])
    figs = [variants_figure(ROWS), training_figure(None, ["qat"])]
    page = ReportPage({"main": [table]}, title="R", generated="now", figures=figs).html()
    pngs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(pngs) == 1 and base64.b64decode(pngs[0]) == figs[0].png
    assert "no dvclive folder" in page  # the absent figure says why
    cell = re.search(r"<td[^>]*>(x|f)[^<]*</td>", page).group(0)
    assert f'title="{long}"' in cell and len(re.sub("<[^>]+>", "", cell)) == CELL_CHARS
    md = ReportPage({"main": [table]}, title="R", generated="now", figures=figs).markdown()
    assert "## Figures (drawn in report.html)" in md and long in md  # markdown keeps the whole text
