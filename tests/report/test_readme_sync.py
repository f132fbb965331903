"""The report stage writes reports/ only; `sam3-edge readme` (run by `make repro`) copies its results block into
README.md. The committed README must carry exactly the committed reports/results.md, so it cannot go stale."""

from __future__ import annotations

from pathlib import Path

from sam3_edge.cli import main
from sam3_edge.report.render import RESULTS_END, RESULTS_START

ROOT = Path(__file__).resolve().parents[2]


def _block(text: str) -> str:
    return text[text.index(RESULTS_START) + len(RESULTS_START) : text.index(RESULTS_END)].strip("\n")


def test_committed_readme_block_is_the_committed_report_results():
    readme = (ROOT / "README.md").read_text()
    results = (ROOT / "reports" / "results.md").read_text()
    assert _block(readme) == results.strip("\n"), (
        "README.md results block is stale: run `make repro` (or sam3-edge readme)"
    )


def test_readme_command_copies_the_block_and_reports_a_missing_marker(tmp_path, capsys):
    results = tmp_path / "results.md"
    results.write_text("### Quality\n\n| a | b |\n")
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{RESULTS_START}\nold\n{RESULTS_END}\n\nmore\n")
    assert main(["readme", "--results", str(results), "--readme", str(readme)]) == 0
    assert _block(readme.read_text()) == "### Quality\n\n| a | b |"
    assert readme.read_text().endswith(f"{RESULTS_END}\n\nmore\n")
    assert main(["readme", "--results", str(results), "--readme", str(readme)]) == 0
    assert "unchanged" in capsys.readouterr().out
    readme.write_text("# no markers\n")
    assert main(["readme", "--results", str(results), "--readme", str(readme)]) == 1
    assert "marker" in capsys.readouterr().err
    assert main(["readme", "--results", str(tmp_path / "absent.md"), "--readme", str(readme)]) == 1
