"""The embedded benchmark carries the real-size figures of the frozen real_benchmark stage as measured there."""

from __future__ import annotations

from sam3_edge.deploy.benchmark import merge_real
from sam3_edge.utils import write_json


def test_merge_real_copies_the_frozen_measurement(tmp_path):
    real = {
        "real": {"status": "ok", "xnnpack_int8": {"pte_mb": 64.1}},
        "teacher_real_size": {"p50_ms": 39444.8, "threads": 1},
        "summary": {"int8": {"xnnpack": {"size_mb": 64.1}}},
        "student": {"status": "ok"},  # never copied: the embedded student is measured by this run
    }
    write_json(tmp_path / "benchmark_real.json", real)
    ours = {"student": {"status": "ok", "xnnpack_int8": {"pte_mb": 1.9}}, "summary": {}, "teacher_real_size": {}}
    merged = merge_real(ours, tmp_path / "benchmark_real.json")
    assert merged["student"] == ours["student"]
    assert merged["summary"] == real["summary"] and merged["real"] == real["real"]
    assert merged["teacher_real_size"] == real["teacher_real_size"]
    assert merged["real_source"]["file"] == str(tmp_path / "benchmark_real.json")


def test_merge_real_without_the_file_says_how_to_measure(tmp_path):
    merged = merge_real({"student": {"status": "ok"}}, tmp_path / "missing.json")
    assert merged["real"]["status"] == "skipped" and "make bench-real" in merged["real"]["reason"]
    assert merged["summary"] == {}
