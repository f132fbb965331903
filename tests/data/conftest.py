"""A tiny synthetic dataset generated once per test session, for the data tests."""

from __future__ import annotations

import pytest

from tests.support.data import TINY_DATA


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory):
    """(out_dir, sources per split) of a tiny synthetic dataset (do not modify it: copy it first)."""
    from sam3_edge.data.generate import generate_synthetic

    out = tmp_path_factory.mktemp("tiny") / "synthetic"
    return out, generate_synthetic(out, TINY_DATA, seed=0)
