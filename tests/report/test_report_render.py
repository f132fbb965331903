from __future__ import annotations

import pytest

from sam3_edge.report.render import (
    RESULTS_END,
    RESULTS_START,
    ReportPage,
    replace_between_markers,
    table_markdown,
    update_readme_results,
)
from sam3_edge.report.tables import Table
from sam3_edge.report.values import Cell


def _table() -> Table:
    return Table(
        "T",
        ["a", "b|c"],
        [[Cell(0.5), Cell(None, "missing (stage x not run)")], [Cell("GO"), Cell("x<y")]],
        ["a **bold** note"],
    )


def test_markdown_escapes_pipes_and_marks_missing_cells():
    md = table_markdown(_table())
    assert "| a | b\\|c |" in md
    assert "| 0.500 | _missing (stage x not run)_ |" in md


def test_html_escapes_and_styles():
    page = ReportPage({"main": [_table()]}, title="R <1>", generated="now").html()
    assert "R &lt;1&gt;" in page and "x&lt;y" in page
    assert '<td class="missing">missing (stage x not run)</td>' in page
    assert '<td class="go">GO</td>' in page and "<b>bold</b>" in page


def test_replace_between_markers():
    text = f"intro\n{RESULTS_START}\nold\n{RESULTS_END}\noutro\n"
    assert replace_between_markers(text, "new table\n") == f"intro\n{RESULTS_START}\nnew table\n{RESULTS_END}\noutro\n"
    with pytest.raises(ValueError, match="exactly one"):
        replace_between_markers("no markers", "x")
    with pytest.raises(ValueError, match="exactly one"):
        replace_between_markers(text + RESULTS_START, "x")
    with pytest.raises(ValueError, match="comes before"):
        replace_between_markers(f"{RESULTS_END}\n{RESULTS_START}", "x")


def test_update_readme_results_keeps_mode_and_reports_change(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# P\n{RESULTS_START}\n{RESULTS_END}\n")
    readme.chmod(0o644)
    assert update_readme_results(readme, "| t |")
    assert readme.read_text() == f"# P\n{RESULTS_START}\n| t |\n{RESULTS_END}\n"
    assert readme.stat().st_mode & 0o777 == 0o644
    assert not update_readme_results(readme, "| t |")
    with pytest.raises(ValueError, match="not found"):
        update_readme_results(tmp_path / "missing.md", "x")
