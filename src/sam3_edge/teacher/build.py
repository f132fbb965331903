"""The `teacher` stage's one call: train the bootstrap teacher, or check and point at facebook/sam3 weights."""

from __future__ import annotations

import hashlib
from pathlib import Path

from sam3_edge.config import to_dict
from sam3_edge.teacher.config import TeacherParams
from sam3_edge.teacher.load import _load_sam3, load_teacher, write_teacher_meta
from sam3_edge.teacher.train import evaluate_teacher, train_bootstrap


def _real_teacher_id(source: str) -> str:
    """``sam3:<source>@<digest>`` from the config and the weight file names + sizes (no 3 GB hash)."""
    _, _, directory = _load_sam3(source, local_only=True)
    digest = hashlib.sha256((directory / "config.json").read_bytes())
    for f in sorted(directory.glob("*.safetensors")):
        digest.update(f"{f.name}:{f.stat().st_size}".encode())
    return f"sam3:{source}@{digest.hexdigest()[:16]}"


def build_teacher(
    params: TeacherParams, *, train_index: str | Path, val_index: str | Path, out_dir: str | Path
) -> dict:
    """Write the teacher directory ``out_dir`` and return its val metrics (metrics/teacher.json).

    ``bootstrap``: train the tiny Sam3Model on ``train_index``. Otherwise load facebook/sam3 from
    ``params.source`` (raises :class:`~sam3_edge.teacher.load.TeacherWeightsMissing` with instructions when the
    weights are absent), score it on ``val_index`` and write a ``teacher.json`` that points at the source.
    """
    if params.source == "bootstrap":
        return {
            "source": "bootstrap",
            **train_bootstrap(params, train_index=train_index, val_index=val_index, out_dir=out_dir),
        }
    adapter = load_teacher(
        params.source, fpn_levels=params.fpn_levels, point_box_size=params.point_box_size, image_size=params.image_size
    )
    metrics = evaluate_teacher(adapter, params, val_index=val_index)
    write_teacher_meta(
        out_dir,
        {
            "kind": "sam3",
            "source": params.source,
            "teacher_id": _real_teacher_id(params.source),
            "image_size": params.image_size,
            "fpn_levels": list(params.fpn_levels),
            "point_box_size": params.point_box_size,
            "params": to_dict(params),
        },
    )
    return {"source": params.source, **metrics}
