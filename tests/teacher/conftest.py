"""Session fixtures for the teacher tests: tiny synthetic data and an untrained tiny teacher directory."""

from __future__ import annotations

import pytest

from tests.support.data import TEACHER_DATA, make_data
from tests.support.teacher import make_teacher_dir


@pytest.fixture(scope="session")
def teacher_data(tmp_path_factory):
    """Index directory of a tiny synthetic dataset (read-only)."""
    return make_data(tmp_path_factory.mktemp("teacher_data"), TEACHER_DATA)


@pytest.fixture(scope="session")
def tiny_teacher_dir(teacher_data, tmp_path_factory):
    return make_teacher_dir(teacher_data, tmp_path_factory.mktemp("teacher") / "teacher")
