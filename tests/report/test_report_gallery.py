from __future__ import annotations

import re

import numpy as np
import pytest

from sam3_edge.report.config import VisualQAParams
from sam3_edge.report.gallery import run_columns, select_items
from sam3_edge.report.gallery_html import build_gallery, gallery_html
from tests.support.fakes import REPORT_SCENES, ColourOracle, PromptIgnoring, write_report_index

PARAMS = VisualQAParams(num_images=3, num_prompts=5, tile_size=96, batch_size=4)


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    return write_report_index(tmp_path_factory.mktemp("qa"))


def test_selection_is_seeded_and_sized(index):
    a, b = select_items(index, PARAMS), select_items(index, PARAMS)
    assert [(i.pair_id, i.kind, i.target) for i in a.items] == [(i.pair_id, i.kind, i.target) for i in b.items]
    assert len(a.items) == 15 and len({i.image_key for i in a.items}) == 3
    assert all(i.kind == "text" or not i.negative for i in a.items)  # no point/box prompt on a negative
    c = select_items(index, VisualQAParams(num_images=3, num_prompts=5, seed=1))
    assert [(i.pair_id, i.kind) for i in c.items] != [(i.pair_id, i.kind) for i in a.items]


def test_point_and_box_prompts_hit_their_target(index):
    for item in select_items(index, PARAMS).items:
        if item.kind == "point":
            x, y, label = item.prompt.points[0]
            assert label == 1 and item.target_mask[int(y), int(x)]
        elif item.kind == "box":
            ys, xs = np.nonzero(item.target_mask)
            assert item.prompt.box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


def test_oracle_is_perfect_and_ignoring_model_is_caught(index):
    sel = select_items(index, PARAMS)
    oracle, ignoring = run_columns(
        sel.items,
        {"teacher": ColourOracle(REPORT_SCENES), "student": PromptIgnoring(REPORT_SCENES, 64)},
        VisualQAParams(**{**PARAMS.__dict__, "columns": ("teacher", "student")}),
    )
    assert oracle.summary()["mean_tile_iou"] == 1.0
    neg = oracle.summary()["negatives"]
    assert neg > 0 and oracle.summary()["negatives_correct"] == neg
    assert ignoring.summary()["negatives_correct"] == 0  # "everything" on an absent phrase is a false positive
    assert ignoring.summary()["mean_tile_iou"] < 0.9


def test_html_is_self_contained_sorted_worst_first_and_marks_negatives(index):
    preds = {
        "teacher": ColourOracle(REPORT_SCENES),
        "student": PromptIgnoring(REPORT_SCENES, 64),
        "quantized": "missing (stage export not run)",
    }
    html, summary = build_gallery(index, preds, PARAMS)
    assert summary["sorted_by"] == "student" and summary["tiles"] == 15
    assert summary["columns"]["quantized"] == {"status": "missing", "reason": "missing (stage export not run)"}
    srcs = re.findall(r'src="([^"]*)"', html)
    assert len(srcs) == 15 * 3 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r'(href|src)="(https?:|/|file:)', html)  # nothing outside the file
    assert html.count("&#10003; absent (correct)") == summary["negatives"]  # the oracle's correct negatives
    assert html.count("&#10007; false positive") == summary["negatives"]  # the prompt-ignoring model's
    assert html.count("missing (stage export not run)") >= 15
    # worst first: the student's badges in row order never improve downwards... first rows are its failures
    student_badges = re.findall(r'<td><img[^>]*alt="student"[^>]*>(<span class="badge (\w+)">)', html)
    assert student_badges[0][1] == "bad"


def test_no_model_column_still_renders(index):
    sel = select_items(index, PARAMS)
    cols = run_columns(sel.items, {}, PARAMS)
    html, summary = gallery_html(sel.items, cols, PARAMS)
    assert summary["sorted_by"] == "none (no model column ran)"
    assert html.count("missing (no teacher model given)") == 15 + 1  # every tile + the summary table


def test_jpeg_tiles_for_photo_galleries(index):
    html, _ = build_gallery(
        index,
        {"teacher": ColourOracle(REPORT_SCENES)},
        VisualQAParams(num_images=1, num_prompts=2, image_format="jpeg"),
    )
    srcs = re.findall(r'src="([^"]*)"', html)
    assert srcs and all(s.startswith("data:image/jpeg;base64,") for s in srcs)
