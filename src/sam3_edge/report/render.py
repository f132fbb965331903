"""Render report tables as Markdown and as one self-contained HTML page; refresh the README results block."""

from __future__ import annotations

import base64
import datetime as _dt
import html
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sam3_edge.report.figures import Figure
from sam3_edge.report.tables import Table
from sam3_edge.report.values import Cell
from sam3_edge.utils import atomic_path

RESULTS_START = "<!-- results:start -->"
RESULTS_END = "<!-- results:end -->"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_cell(cell: Cell, digits: int) -> str:
    text = _md_escape(cell.text(digits))
    return text if cell.present else f"_{text}_"


def table_markdown(table: Table, *, digits: int = 3, level: int = 2) -> str:
    lines = [
        f"{'#' * level} {table.title}",
        "",
        "| " + " | ".join(_md_escape(h) for h in table.headers) + " |",
        "|" + "|".join(" --- " for _ in table.headers) + "|",
    ]
    lines += ["| " + " | ".join(_md_cell(c, digits) for c in row) + " |" for row in table.rows]
    lines += ["", *table.notes] if table.notes else []
    return "\n".join(lines) + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd}h3{font-size:1.05em}
table{border-collapse:collapse;margin:.5em 0;font-size:.92em}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}td.missing{color:#888;font-style:italic}
td.go{background:#d9f2d9;font-weight:bold}td.nogo{background:#f8d4d4;font-weight:bold}p.note{color:#555;font-size:.9em}
details{margin:.3em 0}td{max-width:24em;overflow-wrap:anywhere}figure{margin:1em 0}figure img{max-width:100%;display:block}
figcaption,p.missing{color:#555;font-size:.88em}
"""


CELL_CHARS = 90  # longer cell text (a failure's message) is cut in the HTML table, whole in its tooltip


def figure_html(fig: Figure) -> str:
    """A figure as an inline PNG with its caption, or its title and why it is absent."""
    caption = f"<figcaption>{html.escape(fig.caption)}</figcaption>"
    if not fig.present:
        return f'<figure><b>{html.escape(fig.title)}</b><p class="note missing">{html.escape(fig.caption)}</p></figure>'
    data = base64.b64encode(fig.png).decode("ascii")
    img = f'<img src="data:image/png;base64,{data}" alt="{html.escape(fig.title)}">'
    return f"<figure><b>{html.escape(fig.title)}</b>{img}{caption}</figure>"


def _html_cell(cell: Cell, digits: int) -> str:
    full = cell.text(digits)
    text = html.escape(full if len(full) <= CELL_CHARS else full[: CELL_CHARS - 1] + "…")
    if len(full) > CELL_CHARS:
        return f'<td class="{"missing" if not cell.present else "long"}" title="{html.escape(full)}">{text}</td>'
    if not cell.present:
        return f'<td class="missing">{text}</td>'
    if cell.value in ("GO", "NO-GO"):
        return f'<td class="{"go" if cell.value == "GO" else "nogo"}">{text}</td>'
    cls = ' class="num"' if cell.number() is not None else ""
    return f"<td{cls}>{text}</td>"


def _md_inline(text: str) -> str:
    """The small markdown the notes use (**bold**) as html; everything else escaped."""
    out = html.escape(text)
    while out.count("**") >= 2:
        out = out.replace("**", "<b>", 1).replace("**", "</b>", 1)
    return out


def table_html(table: Table, *, digits: int = 3, level: int = 2) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.headers)
    body = "".join("<tr>" + "".join(_html_cell(c, digits) for c in row) + "</tr>" for row in table.rows)
    notes = "".join(f'<p class="note">{_md_inline(n)}</p>' for n in table.notes)
    return f"<h{level}>{html.escape(table.title)}</h{level}><table><tr>{head}</tr>{body}</table>{notes}"


@dataclass(frozen=True)
class ReportPage:
    """The report: ``sections`` ({"main": tables, "appendix": tables}) under ``title``, as Markdown or one HTML page.

    ``generated`` is the time stamp printed on it (default: now, UTC); ``links`` are (text, href) pairs under the
    title.
    """

    sections: dict[str, list[Table]]
    title: str
    digits: int = 3
    links: Sequence[tuple[str, str]] = ()
    generated: str = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"))
    figures: Sequence[Figure] = ()

    def markdown(self) -> str:
        parts = [
            f"# {self.title}",
            "",
            f"Generated {self.generated} by the `report` stage from `metrics/*.json` and `dvc.lock`; "
            "every figure is read from those files. A cell in italics says why a figure is absent.",
            "",
        ]
        parts += [f"- [{text}]({href})" for text, href in self.links]
        parts += [""] if self.links else []
        parts += [table_markdown(t, digits=self.digits) for t in self.sections.get("main", [])]
        if self.figures:
            parts += ["## Figures (drawn in report.html)", ""]
            parts += [f"- {f.title}: {f.caption if f.present else f'_{f.caption}_'}" for f in self.figures] + [""]
        if self.sections.get("appendix"):
            parts += ["## Appendix: every metrics file", ""]
            parts += [table_markdown(t, digits=self.digits, level=3) for t in self.sections["appendix"]]
        return "\n".join(parts)

    def html(self) -> str:
        digits, title = self.digits, self.title
        link_html = "".join(f'<li><a href="{html.escape(h)}">{html.escape(t)}</a></li>' for t, h in self.links)
        main = "".join(table_html(t, digits=digits) for t in self.sections.get("main", []))
        main += ("<h2>Figures</h2>" + "".join(map(figure_html, self.figures))) if self.figures else ""
        appendix = "".join(
            f"<details><summary>{html.escape(t.title)}</summary>{table_html(t, digits=digits, level=3)}</details>"
            for t in self.sections.get("appendix", [])
        )
        return (
            f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
            f'<p class="note">Generated {html.escape(self.generated)} by the <code>report</code> stage from '
            "<code>metrics/*.json</code> and <code>dvc.lock</code>; every figure is read from those files. "
            "A grey cell says why a figure is absent.</p>"
            f"<ul>{link_html}</ul>{main}"
            + (f"<h2>Appendix: every metrics file</h2>{appendix}" if appendix else "")
            + "</body></html>\n"
        )


def results_snippet(
    sections: dict[str, list[Table]],
    *,
    digits: int = 3,
    keep: Sequence[str] = ("Quality (val split)", "Quantization", "Deployment (ExecuTorch)", "Go / No-Go gates"),
) -> str:
    """The README results block: the headline tables, as level-3 Markdown (no timestamp: stable in git)."""
    tables = [t for t in sections.get("main", []) if t.title in keep]
    return "\n".join(table_markdown(t, digits=digits, level=3) for t in tables)


def replace_between_markers(text: str, snippet: str, *, start: str = RESULTS_START, end: str = RESULTS_END) -> str:
    """``text`` with everything between the ``start`` and ``end`` markers replaced by ``snippet``.

    Raises ``ValueError`` when a marker is absent, duplicated or out of order (nothing is guessed).
    """
    if text.count(start) != 1 or text.count(end) != 1:
        raise ValueError(
            f"expected exactly one {start!r} and one {end!r} marker, found {text.count(start)} and {text.count(end)}"
        )
    i, j = text.index(start), text.index(end)
    if j < i:
        raise ValueError(f"{end!r} comes before {start!r}")
    return text[: i + len(start)] + "\n" + snippet.strip("\n") + "\n" + text[j:]


def update_readme_results(readme: str | Path, snippet: str) -> bool:
    """Rewrite the results block of ``readme`` atomically; returns False (file untouched) when unchanged."""
    readme = Path(readme)
    try:
        old = readme.read_text()
    except FileNotFoundError:
        raise ValueError(f"{readme}: file not found") from None
    try:
        new = replace_between_markers(old, snippet)
    except ValueError as err:
        raise ValueError(f"{readme}: {err}") from None
    if new == old:
        return False
    write_text(readme, new, mode=stat.S_IMODE(readme.stat().st_mode))
    return True


def write_text(path: str | Path, text: str, *, mode: int = 0o644) -> None:
    """Atomic text write with ordinary permissions (the temporary file is created 0600)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
        os.chmod(tmp, mode)
