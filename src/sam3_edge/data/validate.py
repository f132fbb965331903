"""`sam3-edge data validate`: check a dataset folder (or SA-1B tar, or SA-Co json) file by file."""

from __future__ import annotations

import tempfile
from pathlib import Path

from sam3_edge.data.errors import DataError
from sam3_edge.data.io import DEFAULT_MAX_PIXELS
from sam3_edge.data.sa1b import iter_sa1b_items, read_sa1b
from sam3_edge.data.saco import read_saco
from sam3_edge.data.sav import ANNOTATION_STRIDE, iter_sav_items, read_sav
from sam3_edge.data.tar_safe import extract_tar, sa1b_folder_of


def _sa1b_folder(folder: Path, root: Path, max_pixels: int) -> tuple[int, list[DataError]]:
    items = list(iter_sa1b_items(folder))
    errors = []
    for json_path, _ in items:
        try:
            read_sa1b(json_path, root=root, max_pixels=max_pixels)
        except DataError as err:
            errors.append(err)
    return len(items), errors


def validate_dataset(
    fmt: str,
    path: str | Path,
    *,
    images: str | Path | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    stride: int = ANNOTATION_STRIDE,
) -> tuple[int, list[DataError]]:
    """Check every item of ``path``; returns (items checked, one :class:`DataError` per bad file).

    ``sa1b``: a folder of ``sa_*.jpg`` + json, or an ``sa_XXXXXX.tar`` shard (extracted safely into a
    temporary folder; refused members are reported). ``sav``: a folder of ``sav_*.mp4`` + ``*_manual.json``.
    ``saco``: an annotation json (or a folder of them), images under ``images`` (default: the json's folder).
    A path that does not exist raises :class:`DataError`.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(path, "missing_file", "no such file or folder")
    if fmt == "sa1b":
        if path.is_file():
            with tempfile.TemporaryDirectory(prefix="sa1b-validate-") as tmp:
                try:
                    extracted, rejected = extract_tar(path, tmp)
                except DataError as err:
                    return 1, [err]
                count, errors = _sa1b_folder(sa1b_folder_of(extracted), Path(tmp), max_pixels)
                return count + len(rejected), rejected + errors
        return _sa1b_folder(path, path, max_pixels)
    if fmt == "sav":
        items = list(iter_sav_items(path))
        errors = []
        for json_path, mp4 in items:
            try:
                read_sav(json_path, mp4, root=path, stride=stride)
            except DataError as err:
                errors.append(err)
        return len(items), errors
    if fmt == "saco":
        files = sorted(path.glob("*.json")) if path.is_dir() else [path]
        count, errors = 0, []
        for json_file in files:
            image_dir = Path(images) if images is not None else json_file.parent
            try:
                pairs, bad = read_saco(json_file, image_dir, root="/", max_pixels=max_pixels)
            except DataError as err:
                count, errors = count + 1, [*errors, err]
                continue
            count += len(pairs) + len(bad)
            errors += [e for e in bad if e.reason != "not_instance_exhaustive"]
        return count, errors
    raise ValueError(f"unknown dataset format {fmt!r} (sa1b, sav, saco)")
