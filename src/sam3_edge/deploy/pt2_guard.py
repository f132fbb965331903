"""Pre-flight check of a ``torch.export`` ``.pt2`` archive before :func:`torch.export.load` touches it.

``torch.export.load`` unpickles parts of the archive with ``weights_only=False``: weights and constants whose
config says ``use_pickle``, ``custom_obj`` / ``opaque_obj`` constants, and sample inputs whenever the safe load
fails (it falls back). A crafted ``.pt2`` therefore runs code on load. :func:`check_pt2_archive` requires every
pickled payload to load under ``weights_only=True`` (torchao's quantized tensors do) and refuses object
constants, so only tensors can come out of the archive. Raises ``ValueError`` naming the file and member.
"""

from __future__ import annotations

import io
import json
import posixpath
import zipfile
from pathlib import Path

import torch

_OBJECT_PREFIXES = ("custom_obj", "opaque_obj")


def _safe_unpickle(path: Path, member: str, data: bytes) -> None:
    try:
        torch.load(io.BytesIO(data), weights_only=True)
    except Exception as err:  # noqa: BLE001 - any refusal of the safe unpickler means "not plain tensors"
        raise ValueError(
            f"{path}: {member} is not loadable with weights_only=True, refusing the archive "
            f"({type(err).__name__}: {str(err)[:200]})"
        ) from None


def check_pt2_archive(path: str | Path) -> None:
    """Raise ``ValueError`` unless every pickled member of the ``.pt2`` at ``path`` holds only tensors/containers."""
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path}: not a .pt2 archive ({err})") from None
    with archive:
        names = set(archive.namelist())
        for name in sorted(names):
            if name.endswith(".pt"):  # sample inputs: deserialised with a weights_only=False fallback
                _safe_unpickle(path, name, archive.read(name))
            if not name.endswith("_config.json") or "/data/" not in name:
                continue
            try:
                config = json.loads(archive.read(name))["config"]
            except (ValueError, KeyError, TypeError) as err:
                raise ValueError(f"{path}: {name} is not a payload config ({err})") from None
            folder = posixpath.dirname(name)
            for fqn, meta in config.items():
                file = str(meta.get("path_name", ""))
                if file.startswith(_OBJECT_PREFIXES):
                    raise ValueError(f"{path}: constant {fqn} is a pickled object ({file}), refusing the archive")
                if meta.get("use_pickle"):
                    member = posixpath.join(folder, file)
                    if member not in names:
                        raise ValueError(f"{path}: {member} listed in {name} is missing")
                    _safe_unpickle(path, member, archive.read(member))


__all__ = ["check_pt2_archive"]
