from __future__ import annotations

import json

from sam3_edge.report.values import Cell, MetricsFile, flatten, human_bytes, to_cell


def test_missing_file_names_the_stage(tmp_path):
    f = MetricsFile.read(tmp_path / "eval" / "student.json", stage="evaluate@student")
    assert not f.exists
    cell = f.cell("miou.text")
    assert cell.value is None and cell.text() == "missing (stage evaluate@student not run)"


def test_cells_from_numbers_undefined_and_skipped(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(
        json.dumps(
            {
                "miou": {"text": 0.5, "point": {"status": "undefined", "reason": "no positive pair"}},
                "prompt_sensitivity": {"value": 0.25, "comparisons": 3},
                "video": {"status": "skipped", "reason": "no video path"},
                "n": 7,
                "ok": True,
            }
        )
    )
    f = MetricsFile.read(path, stage="x")
    assert f.cell("miou.text").value == 0.5
    assert f.cell("miou.point").text() == "undefined: no positive pair"
    assert f.cell("prompt_sensitivity").value == 0.25  # a {value: ...} dict is read at its value
    assert f.cell("video.J_and_F").text() == "skipped: no video path"  # the parent's recorded reason
    assert f.cell("miou.box").text() == "missing key miou.box in m.json"
    assert f.cell("video").text() == "skipped: no video path"
    assert f.cell("nope", "n").value == 7  # first present key wins
    assert f.cell("ok").text() == "yes"
    assert f.cell("miou.text", scale=2.0).value == 1.0


def test_unreadable_json_is_a_note_not_a_crash(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    cell = MetricsFile.read(path, stage="x").cell("a")
    assert cell.value is None and "not valid json" in cell.text()


def test_cell_text_and_helpers():
    assert Cell(0.123456).text(2) == "0.12"
    assert Cell(3, unit=" MB").text() == "3 MB"
    assert to_cell(None).text() == "undefined (null)"
    assert to_cell({"value": None, "reason": "r"}).text() == "undefined: r"
    assert flatten({"a": {"b": 1, "c": {"status": "skipped", "reason": "r"}}, "d": [1, 2]}) == [
        ("a.b", 1),
        ("a.c", {"status": "skipped", "reason": "r"}),
        ("d", [1, 2]),
    ]
    assert human_bytes(512) == "512 B" and human_bytes(3 * 1024 * 1024) == "3.0 MiB"
