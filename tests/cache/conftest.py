"""Session fixtures for the cache tests: the teacher tests' tiny data and untrained tiny teacher."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "teacher"))
from teacher_fixtures import make_data, make_teacher_dir  # noqa: E402


@pytest.fixture(scope="session")
def cache_inputs(tmp_path_factory):
    """(index_dir, teacher_dir), read-only."""
    root = tmp_path_factory.mktemp("cache_inputs")
    index_dir = make_data(root)
    return index_dir, make_teacher_dir(index_dir, root / "teacher")
