"""A tiny synthetic dataset generated once per test session, for the data tests."""

from __future__ import annotations

import pytest
from data_fixtures import TINY


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory):
    """(out_dir, sources per split) of a tiny synthetic dataset (do not modify it: copy it first)."""
    from sam3_edge.data.generate import generate_synthetic

    out = tmp_path_factory.mktemp("tiny") / "synthetic"
    return out, generate_synthetic(out, TINY, seed=0)
