"""The tiny teacher config and an untrained (bootstrap) teacher directory, for the teacher, cache and reliability
tests."""

from __future__ import annotations

from sam3_edge.config import from_dict
from sam3_edge.teacher.config import TeacherParams

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


def make_teacher_dir(index_dir, out_dir, params: TeacherParams = TINY_TEACHER):
    """An untrained teacher directory for the phrases of ``index_dir``'s train split."""
    from sam3_edge.data.datasets import load_concept_pairs
    from sam3_edge.teacher.train import init_bootstrap_dir

    phrases = [p.text for p in load_concept_pairs(index_dir / "concepts_train.json")]
    return init_bootstrap_dir(params, phrases=phrases, out_dir=out_dir)
