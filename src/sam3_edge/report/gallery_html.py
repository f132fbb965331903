"""The visual QA gallery as one self-contained HTML file (tiles as base64 data URIs; opens from disk, no server)."""

from __future__ import annotations

import datetime as _dt
import html
from pathlib import Path
from typing import Any

import numpy as np

from sam3_edge.report.config import VisualQAParams
from sam3_edge.report.gallery import Column, GalleryItem, TileScore, row_order, run_columns, select_items
from sam3_edge.report.overlay import GT_COLOUR, data_uri, draw_prompt, overlay_masks
from sam3_edge.types import Predictor

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.5em;margin:.2em 0}p.note,li{color:#444;font-size:.92em}
table.g{border-collapse:collapse}table.g th{background:#f0f0f0;position:sticky;top:0;padding:6px;font-size:.95em}
table.g td{border:1px solid #ddd;padding:4px;vertical-align:top;text-align:center;font-size:.85em}
td.head{text-align:left;max-width:14em}img{display:block;margin:0 auto 3px auto;image-rendering:auto}
.badge{display:inline-block;padding:1px 6px;border-radius:8px;font-weight:bold;color:#fff}
.good{background:#2e7d32}.mid{background:#ef8f00}.bad{background:#c62828}.neg{background:#455a64}
td.missing{color:#888;font-style:italic;vertical-align:middle;min-width:10em}
table.s td,table.s th{border:1px solid #ccc;padding:3px 8px;font-size:.9em}
"""


def _badge(score: TileScore) -> str:
    if score.correct_absent is not None:
        if score.correct_absent:
            return '<span class="badge good">&#10003; absent (correct)</span>'
        return '<span class="badge bad">&#10007; false positive</span>'
    assert score.iou is not None
    cls = "good" if score.iou >= 0.75 else "mid" if score.iou >= 0.5 else "bad"
    return f'<span class="badge {cls}">IoU {score.iou:.2f}</span>'


def _img(picture: np.ndarray, alt: str, params: VisualQAParams) -> str:
    """Embedded, displayed ``tile_size`` px on the longer side (small images are enlarged by the browser)."""
    h, w = picture.shape[:2]
    tile = params.tile_size
    dw, dh = round(w * tile / max(h, w)), round(h * tile / max(h, w))
    src = data_uri(picture, max_side=tile, fmt=params.image_format)
    return f'<img src="{src}" alt="{html.escape(alt)}" width="{dw}" height="{dh}">'


def _head_cell(item: GalleryItem, params: VisualQAParams) -> str:
    prompt = item.prompt
    shown = [item.target_mask] if item.target is not None else list(item.gt_masks)
    gt = overlay_masks(item.image, shown, fill=False, colours=(GT_COLOUR,))
    phrase = f"&ldquo;{html.escape(item.text)}&rdquo;"
    if item.kind == "point":
        desc = f"point ({prompt.points[0][0]:.0f}, {prompt.points[0][1]:.0f}) on {phrase}"
    else:
        desc = f"box on {phrase}" if item.kind == "box" else f"text {phrase}"
    truth = (
        '<span class="badge neg">negative: concept absent</span>'
        if item.negative and item.kind == "text"
        else f"{len(item.gt_masks)} GT instance(s)"
        if item.kind == "text"
        else "target: 1 instance"
    )
    return (
        f'<td class="head">{_img(draw_prompt(gt, prompt), "original", params)}'
        f"<b>{desc}</b><br>{truth}<br><small>pair {item.pair_id} &middot; {html.escape(item.image_key)}</small></td>"
    )


def _model_cell(item: GalleryItem, column: Column, i: int, params: VisualQAParams) -> str:
    if column.outputs is None or column.scores is None:
        return f'<td class="missing">{html.escape(column.missing)}</td>'
    out, score = column.outputs[i], column.scores[i]
    shown = [x.mask for x in out.instances] if item.kind == "text" else ([out.top.mask] if out.top else [])
    picture = draw_prompt(overlay_masks(item.image, shown), item.prompt)
    top = f"{out.top.score:.2f}" if out.top is not None else "-"
    detail = (
        f"{len(out.instances)} instance(s) &ge; thr"
        if item.kind == "text"
        else f"top query {out.top.query}"
        if out.top is not None
        else "no query"
    )
    return (
        f"<td>{_img(picture, column.name, params)}{_badge(score)}<br>"
        f"score {top} &middot; presence {out.presence:.2f}<br><small>{detail}</small></td>"
    )


def summary_json(
    items: list[GalleryItem], columns: list[Column], sorted_by: str, skips: dict[str, int]
) -> dict[str, Any]:
    kinds: dict[str, int] = {}
    for it in items:
        kinds[it.kind] = kinds.get(it.kind, 0) + 1
    return {
        "tiles": len(items),
        "images": len({i.image_key for i in items}),
        "negatives": sum(1 for i in items if i.kind == "text" and i.negative),
        "kinds": kinds,
        "sorted_by": sorted_by,
        "skips": dict(sorted(skips.items())),
        "columns": {c.name: c.summary() for c in columns},
    }


def _summary_table(summary: dict[str, Any]) -> str:
    rows = []
    for name, s in summary["columns"].items():
        if "status" in s:
            rows.append(
                f'<tr><td>{html.escape(name)}</td><td colspan="3" class="missing">{html.escape(s["reason"])}</td></tr>'
            )
            continue
        miou = "-" if s["mean_tile_iou"] is None else f"{s['mean_tile_iou']:.3f}"
        rows.append(
            f"<tr><td>{html.escape(name)}</td><td>{s['tiles']}</td><td>{miou}</td>"
            f"<td>{s['negatives_correct']} / {s['negatives']}</td></tr>"
        )
    return (
        '<table class="s"><tr><th>column</th><th>tiles</th><th>mean tile IoU (positives)</th>'
        f"<th>negatives answered &ldquo;absent&rdquo;</th></tr>{''.join(rows)}</table>"
    )


def gallery_html(
    items: list[GalleryItem],
    columns: list[Column],
    params: VisualQAParams,
    *,
    skips: dict[str, int] | None = None,
    title: str = "sam3-edge visual QA",
) -> tuple[str, dict[str, Any]]:
    """(html, summary) for already-scored columns."""
    order, sorted_by = row_order(items, columns, params.sort_by)
    summary = summary_json(items, columns, sorted_by, dict(skips or {}))
    head = "".join(f"<th>{html.escape(c.name)}</th>" for c in columns)
    rows = "".join(
        "<tr>" + _head_cell(items[i], params) + "".join(_model_cell(items[i], c, i, params) for c in columns) + "</tr>"
        for i in order
    )
    skipped = ", ".join(f"{k}: {v}" for k, v in summary["skips"].items()) or "none"
    generated = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
        f'<p class="note">{summary["tiles"]} prompts on {summary["images"]} val images '
        f"({summary['negatives']} negative text prompts), rows sorted worst first by <b>{html.escape(sorted_by)}</b>. "
        f"Generated {generated}. Skipped items: {html.escape(skipped)}.</p>"
        "<ul><li><b>original</b>: ground truth outlined, the point (ring) or box prompt drawn.</li>"
        f"<li>model tiles: predicted instances (score &ge; {params.score_threshold}) filled; point/box prompts show "
        "the top-scored query. Badge = tile IoU with the target (text: union of instances vs union of GT); "
        'a negative prompt is correct when the model answers <span class="badge good">&#10003; absent</span>.</li>'
        f'</ul>{_summary_table(summary)}<br><table class="g"><tr><th>original + prompt</th>{head}</tr>{rows}'
        "</table></body></html>\n",
        summary,
    )


def build_gallery(
    index_file: str | Path, predictors: dict[str, Predictor | str], params: VisualQAParams
) -> tuple[str, dict[str, Any]]:
    """Select items from ``index_file``, run every column, and return (html, summary json)."""
    sel = select_items(index_file, params)
    columns = run_columns(sel.items, predictors, params)
    return gallery_html(sel.items, columns, params, skips=dict(sel.skips))
