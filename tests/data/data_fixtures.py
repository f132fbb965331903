"""Tiny data params shared by the data tests."""

from __future__ import annotations

from sam3_edge.data.config import SyntheticParams

TINY = SyntheticParams(
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
