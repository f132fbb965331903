"""Load a teacher (bootstrap directory, or facebook/sam3 from a local directory / the hub cache) as an adapter.

A teacher directory (``models/teacher`` written by the `teacher` stage) holds ``teacher.json``: for a bootstrap
teacher also ``config.json`` + ``model.safetensors`` + tokenizer files; for the real teacher a pointer to the
facebook/sam3 source. Weights always load through safetensors and ``trust_remote_code`` is never enabled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from transformers import Sam3Model

from sam3_edge.teacher.adapter import TeacherAdapter
from sam3_edge.teacher.tokenizer import load_tokenizer
from sam3_edge.utils import read_json, sha256_file, write_json

FORMAT_VERSION = 1
META_FILE = "teacher.json"
WEIGHTS_HOWTO = (
    "On a machine with internet access, accept the licence of facebook/sam3 on huggingface.co, then run\n"
    "    huggingface-cli download facebook/sam3 --local-dir models/sam3\n"
    "copy that folder to this machine and set `teacher.source: models/sam3` in the params profile "
    "(configs/real.yaml). For the embedded profile use `teacher.source: bootstrap`."
)


class TeacherWeightsMissing(FileNotFoundError):
    """facebook/sam3 weights are not available locally; the message says how to provide them."""


def write_teacher_meta(directory: str | Path, meta: dict[str, Any]) -> None:
    write_json(Path(directory) / META_FILE, {"format_version": FORMAT_VERSION, **meta})


def read_teacher_meta(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / META_FILE
    meta = read_json(path)  # a missing or corrupt file is a ValueError naming it
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format_version {meta.get('format_version')!r}, expected {FORMAT_VERSION}")
    return meta


def _image_norm(directory: Path) -> tuple[tuple[float, ...], tuple[float, ...]]:
    cfg = directory / "preprocessor_config.json"
    if cfg.exists():
        data = json.loads(cfg.read_text())
        return tuple(data.get("image_mean", (0.5,) * 3)), tuple(data.get("image_std", (0.5,) * 3))
    return (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)


def _load_sam3(source: str, *, local_only: bool) -> tuple[Sam3Model, Any, Path]:
    """facebook/sam3 from a local dir or hub id (hub cache only when offline). Raises TeacherWeightsMissing."""
    path = Path(source)
    if path.is_dir():
        if not any(path.glob("*.safetensors")):
            raise TeacherWeightsMissing(
                f"teacher.source={source!r}: no *.safetensors in that directory.\n" + WEIGHTS_HOWTO
            )
        directory = path
    else:
        try:
            from huggingface_hub import snapshot_download

            directory = Path(
                snapshot_download(
                    source, local_files_only=local_only, allow_patterns=["*.json", "*.safetensors", "*.txt"]
                )
            )
        except Exception as err:  # offline and not cached, gated repo, no such repo: all mean "provide weights"
            raise TeacherWeightsMissing(
                f"teacher.source={source!r}: cannot load facebook/sam3 weights "
                f"({type(err).__name__}: {err}).\n" + WEIGHTS_HOWTO
            ) from None
    model = Sam3Model.from_pretrained(str(directory), local_files_only=True, use_safetensors=True)
    return model, load_tokenizer(directory), directory


def load_teacher(
    source_or_dir: str | Path,
    *,
    fpn_levels: tuple[int, ...] | None = None,
    point_box_size: float = 0.04,
    image_size: int | None = None,
    local_only: bool = True,
    device: str = "cpu",
) -> TeacherAdapter:
    """A :class:`TeacherAdapter` from a teacher directory, a facebook/sam3 directory or a hub id.

    A teacher directory's ``teacher.json`` supplies image size, FPN levels and point-box size unless overridden.
    ``bootstrap`` is not loadable by name: the `teacher` stage trains it into a directory first.
    """
    source = str(source_or_dir)
    path = Path(source)
    if (path / META_FILE).exists():
        meta = read_teacher_meta(path)
        levels = tuple(fpn_levels if fpn_levels is not None else meta["fpn_levels"])
        pbs = meta.get("point_box_size", point_box_size)
        size = image_size or meta["image_size"]
        if meta["kind"] == "bootstrap":
            try:
                model = Sam3Model.from_pretrained(str(path), local_files_only=True, use_safetensors=True)
            except (OSError, SafetensorError) as err:  # truncated / corrupt model.safetensors
                raise ValueError(f"{path / 'model.safetensors'}: unreadable teacher weights ({err})") from None
            tokenizer, norm = load_tokenizer(path), (tuple(meta["image_mean"]), tuple(meta["image_std"]))
            name = meta.get("teacher_id", "bootstrap")
        else:
            model, tokenizer, directory = _load_sam3(meta["source"], local_only=local_only)
            norm, name = _image_norm(directory), meta.get("teacher_id", meta["source"])
    elif source == "bootstrap":
        raise FileNotFoundError(
            "teacher.source=bootstrap is trained by the `teacher` stage: run `dvc repro teacher` "
            "and load its output directory (models/teacher)"
        )
    else:
        model, tokenizer, directory = _load_sam3(source, local_only=local_only)
        levels = tuple(fpn_levels if fpn_levels is not None else (2,))
        pbs, size = point_box_size, image_size or int(model.config.vision_config.image_size)
        norm, name = _image_norm(directory), source
    model.eval()
    adapter = TeacherAdapter(
        model=model,
        tokenizer=tokenizer,
        image_size=int(size),
        fpn_levels=levels,
        point_box_size=float(pbs),
        name=str(name),
        image_mean=norm[0],
        image_std=norm[1],
    )
    return adapter.to(device)


def teacher_id(directory: str | Path) -> str:
    """Identity of a teacher directory: its kind, source and a hash of its weights (bootstrap) or config."""
    meta = read_teacher_meta(directory)
    return str(meta["teacher_id"])


def weights_digest(directory: str | Path) -> str:
    files = sorted(Path(directory).glob("*.safetensors"))
    return "-".join(sha256_file(f)[:16] for f in files)
