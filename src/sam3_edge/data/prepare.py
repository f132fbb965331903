"""The `data` stage as one library call: generate (synthetic profile) or locate (real profile), then index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sam3_edge.data.config import DataParams
from sam3_edge.data.generate import generate_synthetic
from sam3_edge.data.index import IndexOptions, build_index


class NegativeFractionError(ValueError):
    """The synthetic val split has fewer negatives than required (a generator bug, never silently accepted)."""


def prepare_data(
    params: DataParams, *, synthetic_dir: str | Path, index_dir: str | Path, extract_dir: str | Path
) -> dict[str, Any]:
    """Write ``synthetic_dir`` (synthetic source only; an empty folder otherwise) and ``index_dir``.

    Returns the metrics of ``metrics/data.json``. Real dataset locations come from ``params.real``; SA-1B tar
    shards are extracted (safely) under ``extract_dir``.
    """
    synthetic_dir = Path(synthetic_dir)
    if params.source == "synthetic":
        splits = generate_synthetic(synthetic_dir, params.synthetic, seed=params.seed)
        stride = params.synthetic.annotation_stride
    else:
        synthetic_dir.mkdir(parents=True, exist_ok=True)  # a declared out of the stage; empty for real data
        splits = {"train": params.real.train, "val": params.real.val}
        if params.real.distill.sa1b:
            splits["distill"] = params.real.distill
        stride = 4
    options = IndexOptions(
        max_pixels=params.max_image_pixels,
        decode_videos=params.check_video_decode,
        max_images_per_source=params.real.max_images_per_source if params.source == "real" else 0,
        max_videos_per_source=params.real.max_videos_per_source if params.source == "real" else 0,
        annotation_stride=stride,
    )
    metrics = build_index(splits, index_dir, extract_dir=extract_dir, options=options)
    metrics["source_synthetic"] = int(params.source == "synthetic")
    if params.source == "synthetic":
        achieved = metrics["saco"]["val"]["negative_fraction"]
        if metrics["saco"]["val"]["pairs"] and achieved < 0.3:
            raise NegativeFractionError(f"synthetic val has {achieved:.1%} negative pairs, need >= 30%")
    return metrics
