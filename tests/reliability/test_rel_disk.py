"""Disk: the cache and export stages compare free space with their size estimate first and stop with a clear
error, before any file is written (shutil.disk_usage is patched to report a nearly full disk)."""

from __future__ import annotations

import shutil
from collections import namedtuple

import pytest

from sam3_edge.cache.store import CacheError
from sam3_edge.config import from_dict
from sam3_edge.utils import InsufficientSpaceError, ensure_free_space
from tests.support.reliability import CACHE_SECTION

Usage = namedtuple("Usage", "total used free")


@pytest.fixture
def nearly_full(monkeypatch):
    """Every filesystem reports 1 kB free."""
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**12, 10**12 - 1000, 1000))


def _files(folder) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_cache_stage_stops_before_writing_when_the_disk_is_full(rel_inputs, tmp_path, nearly_full, monkeypatch):
    from sam3_edge.cache import build as cache_build
    from sam3_edge.cache.config import CacheParams
    from sam3_edge.cache.run import cache_teacher

    monkeypatch.setattr(cache_build, "compute_image_units", lambda *a, **k: pytest.fail("computed before the check"))
    index_dir, teacher = rel_inputs
    out = tmp_path / "cache"
    with pytest.raises(CacheError, match=r"not enough disk space.*GB free") as info:
        cache_teacher(
            "image",
            teacher_dir=teacher,
            index_file=index_dir / "concepts_train.json",
            out_dir=out,
            params=from_dict(CacheParams, CACHE_SECTION),
        )
    assert str(out) in str(info.value)
    assert _files(out) == []


def test_export_stage_stops_before_lowering_when_the_disk_is_full(
    standin_quantized, tmp_path, nearly_full, monkeypatch
):
    from sam3_edge.deploy import pipeline
    from sam3_edge.deploy.config import ExportParams

    monkeypatch.setattr(pipeline, "lower_programs", lambda *a, **k: pytest.fail("lowered before the check"))
    out = tmp_path / "pte"
    with pytest.raises(InsufficientSpaceError, match=r"not enough disk space for the xnnpack \.pte") as info:
        pipeline.run_export(standin_quantized, out, backend="xnnpack", params=ExportParams(parity_samples=1))
    assert str(out) in str(info.value)
    assert _files(out) == []


def test_free_space_check_uses_the_margin(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**9, 0, 1000))
    ensure_free_space(tmp_path, 800, margin=1.2, what="x")  # 960 <= 1000
    with pytest.raises(InsufficientSpaceError, match="x margin 1.5"):
        ensure_free_space(tmp_path, 800, margin=1.5, what="x")  # 1200 > 1000
