"""Tiny teacher params and data shared by the teacher and cache tests (imported by basename)."""

from __future__ import annotations

from sam3_edge.config import from_dict
from sam3_edge.data.config import SyntheticParams
from sam3_edge.teacher.config import TeacherParams

TINY_DATA = SyntheticParams(
    num_train_images=8,
    num_val_images=4,
    image_size=96,
    num_train_videos=2,
    num_val_videos=1,
    video_frames=6,
    video_size=64,
    small_size=(10, 16),
    large_size=(22, 30),
    objects_per_video=(2, 3),
)

# 56 px input, patch 14 -> FPN 8x8 / 4x4 / 2x2, 8x8 masks, 6 queries
TINY_TEACHER = from_dict(
    TeacherParams,
    {
        "image_size": 56,
        "fpn_levels": [0, 1],
        "point_box_size": 0.08,
        "model": {
            "vit_hidden": 32,
            "vit_layers": 1,
            "vit_heads": 2,
            "vit_mlp": 64,
            "hidden": 32,
            "heads": 2,
            "ffn": 64,
            "text_hidden": 32,
            "num_queries": 6,
        },
        "train": {"steps": 3, "images_per_step": 2, "mask_size": 8, "warmup_steps": 1, "checkpoint_every": 2},
        "eval": {"max_pairs": 6, "batch_size": 4},
    },
)


def make_data(root):
    """Generate + index the tiny synthetic dataset under ``root``; returns the index directory."""
    from sam3_edge.data.generate import generate_synthetic
    from sam3_edge.data.index import IndexOptions, build_index

    splits = generate_synthetic(root / "synthetic", TINY_DATA, seed=0)
    build_index(splits, root / "index", extract_dir=root / "extracted", options=IndexOptions(max_pixels=10**8))
    return root / "index"


def make_teacher_dir(index_dir, out_dir, params: TeacherParams = TINY_TEACHER):
    from sam3_edge.data.datasets import load_concept_pairs
    from sam3_edge.teacher.train import init_bootstrap_dir

    phrases = [p.text for p in load_concept_pairs(index_dir / "concepts_train.json")]
    return init_bootstrap_dir(params, phrases=phrases, out_dir=out_dir)
