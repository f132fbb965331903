"""Validate the raw datasets of each split and write ``data/index/{concepts,images,videos}_<split>.json``.

The same code indexes the synthetic data and the real folders: a split is a :class:`RealSplit` (SA-1B
folders or tar shards, SA-V folders, SA-Co json + image folder). Every bad file becomes a recorded skip
(``skipped.json`` + counts in the metrics); a configured folder that does not exist is an error naming the
param. The index is written to ``<index_dir>.partial`` and renamed into place when complete.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Any

from tqdm import tqdm

from sam3_edge.data.config import RealSplit
from sam3_edge.data.errors import DataError, SkipLog
from sam3_edge.data.records import ConceptPair, ImageRecord, VideoRecord
from sam3_edge.data.sa1b import iter_sa1b_items, read_sa1b
from sam3_edge.data.saco import read_saco
from sam3_edge.data.sav import iter_sav_items, read_sav
from sam3_edge.data.tar_safe import extract_tar, sa1b_folder_of
from sam3_edge.utils import progress_disabled, write_json

INDEX_KINDS = ("concepts", "images", "videos")


class DataConfigError(ValueError):
    """A configured dataset location does not exist or is not usable (names the param and the path)."""


@dataclasses.dataclass(frozen=True)
class IndexOptions:
    max_pixels: int
    decode_videos: bool = True
    max_images_per_source: int = 0  # 0 = no cap
    max_videos_per_source: int = 0
    annotation_stride: int = 4


def check_sources(splits: dict[str, RealSplit], *, param_prefix: str = "data.real") -> None:
    """Fail early, naming the param, when a configured file or folder is missing."""
    problems = []
    for split, src in splits.items():
        for i, path in enumerate(src.sa1b):
            if not Path(path).exists():
                problems.append(f"{param_prefix}.{split}.sa1b[{i}]: {path} does not exist (SA-1B folder or .tar)")
        for i, path in enumerate(src.sav):
            if not Path(path).is_dir():
                problems.append(f"{param_prefix}.{split}.sav[{i}]: folder {path} does not exist (SA-V folder)")
        for i, saco in enumerate(src.saco):
            if not Path(saco.annotations).is_file():
                problems.append(f"{param_prefix}.{split}.saco[{i}].annotations: {saco.annotations} does not exist")
            if not Path(saco.images).is_dir():
                problems.append(f"{param_prefix}.{split}.saco[{i}].images: folder {saco.images} does not exist")
    if problems:
        raise DataConfigError("missing dataset location(s):\n  " + "\n  ".join(problems))


def common_root(splits: dict[str, RealSplit], extract_dir: Path) -> Path:
    """Deepest folder holding every source (and the tar extraction folder when shards are used)."""
    paths = []
    for src in splits.values():
        for p in src.sa1b:
            paths.append(extract_dir if p.endswith(".tar") else Path(p))
        paths += [Path(p) for p in src.sav]
        paths += [Path(s.images) for s in src.saco]
    if not paths:
        raise DataConfigError("no dataset location configured for any split")
    return Path(os.path.commonpath([str(p.resolve()) for p in paths]))


def _sa1b_folders(src: RealSplit, split: str, extract_dir: Path, skips: SkipLog) -> list[Path]:
    folders = []
    for path in map(Path, src.sa1b):
        if path.suffix == ".tar":
            try:
                extracted, rejected = extract_tar(path, extract_dir)
            except DataError as err:
                skips.add(err, dataset="sa1b", split=split)
                continue
            for err in rejected:
                skips.add(err, dataset="sa1b", split=split)
            folders.append(sa1b_folder_of(extracted))
        else:
            folders.append(path)
    return folders


def _capped(items: list, cap: int) -> list:
    return items[:cap] if cap > 0 else items


def index_split(
    src: RealSplit, split: str, *, root: Path, extract_dir: Path, options: IndexOptions, skips: SkipLog
) -> dict[str, list]:
    """Read and validate one split; returns {"concepts": [...], "images": [...], "videos": [...]} records."""
    quiet = progress_disabled()
    images: list[ImageRecord] = []
    for folder in _sa1b_folders(src, split, extract_dir, skips):
        items = _capped(list(iter_sa1b_items(folder)), options.max_images_per_source)
        for json_path, _jpg in tqdm(items, desc=f"index sa1b/{split}", disable=quiet):
            try:
                images.append(read_sa1b(json_path, root=root, max_pixels=options.max_pixels))
            except DataError as err:
                skips.add(err, dataset="sa1b", split=split)
    concepts: list[ConceptPair] = []
    for source_index, saco in enumerate(src.saco):
        try:
            pairs, errors = read_saco(
                saco.annotations, saco.images, root=root, max_pixels=options.max_pixels, source_index=source_index
            )
        except DataError as err:
            skips.add(err, dataset="saco", split=split)
            continue
        for err in errors:
            skips.add(err, dataset="saco", split=split)
        concepts += _capped(pairs, options.max_images_per_source)
    videos: list[VideoRecord] = []
    for folder in src.sav:
        items = _capped(list(iter_sav_items(folder)), options.max_videos_per_source)
        for json_path, mp4 in tqdm(items, desc=f"index sav/{split}", disable=quiet):
            try:
                videos.append(
                    read_sav(json_path, mp4, root=root, stride=options.annotation_stride, decode=options.decode_videos)
                )
            except DataError as err:
                skips.add(err, dataset="sav", split=split)
    return {"concepts": concepts, "images": images, "videos": videos}


def build_index(
    splits: dict[str, RealSplit], index_dir: str | Path, *, extract_dir: str | Path, options: IndexOptions
) -> dict[str, Any]:
    """Index every split into ``index_dir`` (atomically, via ``<index_dir>.partial``); returns the metrics."""
    check_sources(splits)
    index_dir, extract_dir = Path(index_dir), Path(extract_dir)
    root = common_root(splits, extract_dir)
    rel_root = os.path.relpath(root, index_dir.resolve())
    partial = index_dir.with_name(index_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    skips = SkipLog()
    metrics: dict[str, Any] = {"sa1b": {}, "saco": {}, "sav": {}}
    for split, src in splits.items():
        records = index_split(src, split, root=root, extract_dir=extract_dir, options=options, skips=skips)
        for kind in INDEX_KINDS:
            payload = {
                "kind": kind,
                "split": split,
                "root": rel_root,
                "records": [dataclasses.asdict(r) for r in records[kind]],
            }
            write_json(partial / f"{kind}_{split}.json", payload, indent=None)
        metrics["sa1b"][split] = _image_metrics(records["images"])
        metrics["saco"][split] = _concept_metrics(records["concepts"])
        metrics["sav"][split] = _video_metrics(records["videos"])
    write_json(partial / "skipped.json", skips.entries, indent=1)
    by_dataset: dict[str, int] = {}
    for entry in skips.entries:
        by_dataset[entry["dataset"]] = by_dataset.get(entry["dataset"], 0) + 1
    metrics["skipped"] = {"total": len(skips), "by_reason": skips.counts(), "by_dataset": by_dataset}
    shutil.rmtree(index_dir, ignore_errors=True)
    partial.rename(index_dir)
    return metrics


def _image_metrics(records: list[ImageRecord]) -> dict[str, float]:
    return {"images": len(records), "instances": sum(len(r.instances) for r in records)}


def _concept_metrics(records: list[ConceptPair]) -> dict[str, float]:
    negatives = sum(1 for r in records if r.negative)
    return {
        "pairs": len(records),
        "positive_pairs": len(records) - negatives,
        "negative_pairs": negatives,
        "negative_fraction": round(negatives / len(records), 4) if records else 0.0,
        "images": len({r.image for r in records}),
        "instances": sum(len(r.instances) for r in records),
    }


def _video_metrics(records: list[VideoRecord]) -> dict[str, float]:
    return {
        "videos": len(records),
        "masklets": sum(len(r.masklets) for r in records),
        "frames": sum(r.num_frames for r in records),
        "annotated_frames": sum(len(r.annotated_frames) for r in records),
    }
