"""Write the synthetic datasets in the public layouts, resumably and atomically.

Layout under ``out_dir``::

    sa1b/<split>/sa_<id>.jpg, sa_<id>.json          SA-1B (class-agnostic visible masks of every object)
                                                     (split ``distill``: unlabeled images, SA-1B layout only)
    saco/synthetic_<split>.json                      SA-Co gold style; ``file_name`` relative to ``sa1b/``
    sav/<split>/sav_<id>.mp4, sav_<id>_manual.json   SA-V (+ ``masklet_noun_phrase``)

Generation happens in ``<out_dir>.partial`` (kept across a kill, keyed by the params hash, every file
written atomically and skipped when already there) and is renamed onto ``out_dir`` when complete. Item ``i``
of a split is drawn from ``np.random.default_rng([seed, split, i])``, so a resumed run writes the same bytes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from tqdm import tqdm

from sam3_edge.config import params_hash, to_dict
from sam3_edge.data.config import RealSplit, SacoSource, SyntheticParams
from sam3_edge.data.io import write_jpeg
from sam3_edge.data.rle import encode_mask, rle_box_xyxy
from sam3_edge.data.sa1b import write_sa1b_json
from sam3_edge.data.saco import write_saco_json
from sam3_edge.data.sav import write_sav_json
from sam3_edge.data.synthetic import sample_scene
from sam3_edge.data.synthetic_video import sample_clip
from sam3_edge.data.video import write_video
from sam3_edge.utils import LOG, progress_disabled, write_json

SPLITS = ("train", "val", "distill")
_SPLIT_CODE = {"train": 0, "val": 1, "distill": 2}
_IMAGE_ID_BASE = {"train": 1, "val": 1_000_001, "distill": 2_000_001}
_PAIR_ID_BASE = {"train": 10_000_000, "val": 50_000_000, "distill": 90_000_000}
_MARKER = ".generated.json"


def _marker(params: SyntheticParams, seed: int) -> dict:
    return {"params_hash": params_hash({"synthetic": to_dict(params), "seed": seed}), "seed": seed}


def generate_synthetic(out_dir: str | Path, params: SyntheticParams, *, seed: int) -> dict[str, RealSplit]:
    """Generate (or resume, or reuse) the synthetic datasets; returns their locations per split."""
    out_dir = Path(out_dir)
    marker = _marker(params, seed)
    if _read_marker(out_dir) == marker:
        LOG.info("synthetic data in %s is complete for these params; reusing it", out_dir)
        return synthetic_sources(out_dir)
    partial = out_dir.with_name(out_dir.name + ".partial")
    if partial.exists() and _read_marker(partial) != marker:
        LOG.info("discarding %s (made with other params)", partial)
        shutil.rmtree(partial)
    partial.mkdir(parents=True, exist_ok=True)
    write_json(partial / _MARKER, marker)
    for split in ("train", "val"):
        _write_images(partial, split, params, seed)
        _write_videos(partial, split, params, seed)
    _write_images(partial, "distill", params, seed)
    shutil.rmtree(out_dir, ignore_errors=True)
    partial.rename(out_dir)
    return synthetic_sources(out_dir)


def synthetic_sources(out_dir: str | Path) -> dict[str, RealSplit]:
    """Locations per split; ``distill`` (SA-1B images only, no SA-Co pairs, no videos) when it was generated."""
    out_dir = Path(out_dir)
    splits = {
        split: RealSplit(
            sa1b=(str(out_dir / "sa1b" / split),),
            sav=(str(out_dir / "sav" / split),),
            saco=(
                SacoSource(annotations=str(out_dir / "saco" / f"synthetic_{split}.json"), images=str(out_dir / "sa1b")),
            ),
        )
        for split in ("train", "val")
    }
    if (out_dir / "sa1b" / "distill").is_dir():
        splits["distill"] = RealSplit(sa1b=(str(out_dir / "sa1b" / "distill"),))
    return splits


def _read_marker(folder: Path) -> dict | None:
    try:
        return json.loads((folder / _MARKER).read_text())
    except (OSError, ValueError):
        return None


def _write_images(root: Path, split: str, params: SyntheticParams, seed: int) -> None:
    count = {"train": params.num_train_images, "val": params.num_val_images, "distill": params.num_distill_images}
    count = count[split]
    if split == "distill" and not count:
        return
    size = params.image_size
    pairs = []
    for i in tqdm(range(count), desc=f"synthetic images/{split}", disable=progress_disabled()):
        scene = sample_scene(np.random.default_rng([seed, _SPLIT_CODE[split], i]), params)
        image_id = _IMAGE_ID_BASE[split] + i
        rel = f"{split}/sa_{image_id}.jpg"
        jpg, js = root / "sa1b" / rel, root / "sa1b" / split / f"sa_{image_id}.json"
        if not jpg.exists():
            write_jpeg(jpg, scene.image, quality=params.jpeg_quality)
        if not js.exists():
            write_sa1b_json(js, image_id=image_id, file_name=jpg.name, masks=scene.masks, height=size, width=size)
        rles = [encode_mask(m) for m in scene.masks]
        for k, phrase in enumerate(scene.phrases):
            pairs.append(
                {
                    "id": _PAIR_ID_BASE[split] + i * 100 + k,
                    "file_name": rel,
                    "text": phrase.text,
                    "width": size,
                    "height": size,
                    "rles": [rles[j] for j in phrase.instances],
                    "boxes": [rle_box_xyxy(rles[j]) for j in phrase.instances],
                }
            )
    if split != "distill":  # unlabeled: the teacher labels it (cache_phrases); no SA-Co pairs are published
        write_saco_json(root / "saco" / f"synthetic_{split}.json", pairs, description=f"SA-Co/Synthetic-{split}")


def _write_videos(root: Path, split: str, params: SyntheticParams, seed: int) -> None:
    count = params.num_train_videos if split == "train" else params.num_val_videos
    folder = root / "sav" / split
    folder.mkdir(parents=True, exist_ok=True)
    for i in tqdm(range(count), desc=f"synthetic videos/{split}", disable=progress_disabled()):
        video_id = f"sav_{_IMAGE_ID_BASE[split] + i:06d}"
        mp4, js = folder / f"{video_id}.mp4", folder / f"{video_id}_manual.json"
        if mp4.exists() and js.exists():
            continue
        clip = sample_clip(np.random.default_rng([seed, 10 + _SPLIT_CODE[split], i]), params)
        write_video(mp4, clip.frames, fps=params.video_fps)
        write_sav_json(
            js,
            video_id=video_id,
            masks=clip.masks,
            masklet_ids=list(range(len(clip.texts))),
            texts=clip.texts,
            num_frames=params.video_frames,
            fps=params.video_fps,
            stride=params.annotation_stride,
        )
