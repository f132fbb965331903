"""Session fixtures for the cache tests: the teacher tests' tiny data and untrained tiny teacher."""

from __future__ import annotations

import pytest

from tests.support.data import TEACHER_DATA, make_data
from tests.support.teacher import make_teacher_dir


@pytest.fixture(scope="session")
def cache_inputs(tmp_path_factory):
    """(index_dir, teacher_dir), read-only."""
    root = tmp_path_factory.mktemp("cache_inputs")
    index_dir = make_data(root, TEACHER_DATA)
    return index_dir, make_teacher_dir(index_dir, root / "teacher")
