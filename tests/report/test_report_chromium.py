"""The gallery and the report rendered by headless Chromium (Debian package `chromium`); skipped with the reason
when no Chromium is installed."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from sam3_edge.report.browser import dump_dom, find_chromium, screenshot
from sam3_edge.report.build import write_report
from sam3_edge.report.config import ReportParams, VisualQAParams
from sam3_edge.report.gallery_html import build_gallery
from sam3_edge.report.render import write_text
from tests.support.fakes import REPORT_SCENES, ColourOracle, PromptIgnoring, write_report_index

pytestmark = pytest.mark.skipif(
    find_chromium() is None, reason="chromium not installed (apt-get install -y chromium); HTML not browser-checked"
)


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    root = tmp_path_factory.mktemp("html")
    index = write_report_index(root / "data")
    html, _ = build_gallery(
        index,
        {
            "teacher": ColourOracle(REPORT_SCENES),
            "student": PromptIgnoring(REPORT_SCENES, 64),
            "quantized": "missing (stage export not run)",
        },
        VisualQAParams(num_images=3, num_prompts=3, tile_size=128),
    )
    gallery = root / "reports" / "visual_qa" / "index.html"
    write_text(gallery, html)
    write_report(
        root / "metrics",
        ReportParams(),
        lock=None,
        out_dir=root / "reports",
        plots_dir=root / "reports" / "plots",
        gallery=gallery,
    )
    return {"gallery": gallery, "report": root / "reports" / "report.html", "root": root}


def test_gallery_renders_every_tile_image(pages):
    dom = dump_dom(pages["gallery"])
    assert "sam3-edge visual QA" in dom and "absent (correct)" in dom and "false positive" in dom
    assert len(re.findall(r"<img ", dom)) == 9 * 3


def test_report_renders_with_missing_figures(pages):
    dom = dump_dom(pages["report"])
    assert "Quality (val split)" in dom and "missing (stage evaluate@teacher not run)" in dom
    assert 'href="visual_qa/index.html"' in dom


@pytest.mark.parametrize("page", ["gallery", "report"])
def test_screenshot_is_not_blank(pages, page):
    png = screenshot(pages[page], pages["root"] / f"{page}.png", width=1000, height=1200)
    pixels = np.asarray(Image.open(png).convert("L"), dtype=np.float32)
    assert pixels.shape == (1200, 1000)
    assert pixels.std() > 10  # text, tables and tiles drawn, not an empty white page
