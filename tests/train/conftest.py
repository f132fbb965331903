"""Session fixtures for the student training tests: tiny data + fake teacher caches (no teacher run)."""

from __future__ import annotations

import pytest

from tests.support.data import make_data
from tests.support.fake_cache import make_fake_cache, make_fake_video_cache


@pytest.fixture(scope="session")
def train_data(tmp_path_factory):
    """(index_dir, cache_dir, video_cache_dir), shared read-only by the training tests."""
    root = tmp_path_factory.mktemp("train_data")
    index_dir = make_data(root)
    cache_dir = make_fake_cache(index_dir / "concepts_train.json", root / "cache" / "train")
    video_dir = make_fake_video_cache(index_dir / "videos_train.json", root / "cache_video" / "train")
    return index_dir, cache_dir, video_dir
