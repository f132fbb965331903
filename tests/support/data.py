"""Tiny synthetic data params and the maker of a generated + indexed dataset."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from sam3_edge.data.config import SyntheticParams

# the data and student-training tests: 6 train images, one 9-frame clip per split
TINY_DATA = SyntheticParams(
    num_train_images=6,
    num_val_images=4,
    image_size=96,
    num_train_videos=1,
    num_val_videos=1,
    video_frames=9,
    video_size=64,
    small_size=(10, 16),
    large_size=(22, 30),
    objects_per_video=(2, 3),
)

# the teacher, cache and reliability tests: 8 train images (enough for a few teacher steps), 6-frame clips
TEACHER_DATA = replace(TINY_DATA, num_train_images=8, num_train_videos=2, video_frames=6)


def make_data(root: Path, synthetic: SyntheticParams = TINY_DATA) -> Path:
    """Generate + index a tiny synthetic dataset under ``root`` with the data stage's code; the index directory."""
    from sam3_edge.data.config import DataParams
    from sam3_edge.data.prepare import prepare_data

    index_dir = root / "index"
    prepare_data(
        DataParams(synthetic=synthetic),
        synthetic_dir=root / "synthetic",
        index_dir=index_dir,
        extract_dir=root / "extract",
    )
    return index_dir
