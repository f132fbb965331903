"""Small shared helpers: atomic writes, json, logging, hashing."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LOG = logging.getLogger("sam3_edge")
# Temporary files a kill -9 can leave beside an output: atomic_path's ".<final name>.<8 chars from mkstemp>.tmp",
# and ".tmp<6 alphanumerics>", the Rust `tempfile` crate's default name, which safetensors' save_file writes into
# before renaming it onto the target (it is what a cache_teacher run killed mid-shard left behind).
_TEMP_RE = re.compile(r"^(\..+\.[A-Za-z0-9_]{8}\.tmp|\.tmp[A-Za-z0-9]{6})$")


class InsufficientSpaceError(OSError):
    """Not enough free disk space for what a stage is about to write (message names the folder and sizes)."""


@functools.cache
def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is fsynced and renamed onto ``path``.

    A crash or exception leaves ``path`` untouched (old content or absent) and removes the temporary file,
    so no partial file is ever visible under an output path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp (and some writers) make 0600 files; use the umask
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def remove_stale_temps(directory: str | Path) -> list[Path]:
    """Delete the temporary files a killed process left in ``directory`` (SIGKILL skips atomic_path's cleanup).

    Only call this for a folder the caller writes alone (a stage's own output folder, before it starts): a live
    writer's temporary file would be removed under it. Returns the removed paths (not recursive).
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    stale = sorted(p for p in directory.iterdir() if p.is_file() and _TEMP_RE.match(p.name))
    for p in stale:
        p.unlink(missing_ok=True)
    if stale:
        LOG.warning("%s: removed %d temporary file(s) left by a killed run", directory, len(stale))
    return stale


def ensure_free_space(directory: str | Path, needed_bytes: int, *, margin: float, what: str, hint: str = "") -> None:
    """Raise :class:`InsufficientSpaceError` before writing when ``directory``'s filesystem lacks needed x margin."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(directory).free
    if needed_bytes * margin > free:
        raise InsufficientSpaceError(
            f"{directory}: not enough disk space for {what}: need about {needed_bytes * margin / 1e9:.3f} GB "
            f"({needed_bytes / 1e9:.3f} GB x margin {margin}), {free / 1e9:.3f} GB free." + (f" {hint}" if hint else "")
        )


def save_safetensors(tensors: dict[str, Any], path: str | Path, *, metadata: dict[str, str] | None = None) -> None:
    """``safetensors.torch.save_file`` with a byte-reproducible header.

    safetensors serialises ``metadata`` from a Rust HashMap, so its key order (and the file's sha256) changes
    from process to process; DVC would see a new output after every identical re-run. The header is rewritten
    in place with sorted metadata keys (same length: only the order changes). Call it on an atomic_path temp.
    """
    from safetensors.torch import save_file

    save_file(tensors, str(path), metadata=metadata)
    if not metadata:
        return
    with open(path, "rb+") as fh:
        size = int.from_bytes(fh.read(8), "little")
        raw = fh.read(size)
        header = json.loads(raw)
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
        canonical = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
        if len(canonical) > size:  # never expected: same keys and values, other order
            raise ValueError(f"{path}: canonical safetensors header is longer than the written one")
        fh.seek(8)
        fh.write(canonical + b" " * (size - len(canonical)))


def write_json(path: str | Path, data: Any, *, indent: int = 2) -> None:
    """Atomically write ``data`` as json (sorted keys, trailing newline)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=indent, sort_keys=True) + "\n")


def read_json(path: str | Path) -> Any:
    """Read json; a missing, empty or malformed file raises ``ValueError`` naming the file."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ValueError(f"{path}: file not found") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file") from None
    if not text.strip():
        raise ValueError(f"{path}: empty json file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid json ({err.msg} at line {err.lineno})") from None


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def masked_mean(tokens, valid):
    """tokens [B, L, D], valid [B, L] (bool / 0-1) -> [B, D]: the mean over the valid tokens (0 where none is)."""
    weight = valid[..., None].to(tokens.dtype)
    return (tokens * weight).sum(1) / weight.sum(1).clamp(min=1)


def sources_digest(*roots: str | Path, pattern: str = "*.py") -> str:
    """sha256 over every ``pattern`` file under ``roots`` (relative path + content, sorted): the code version."""
    digest = hashlib.sha256()
    for root in map(Path, roots):
        for f in sorted(root.rglob(pattern)):
            if "__pycache__" in f.parts:
                continue
            digest.update(f"{root.name}/{f.relative_to(root).as_posix()}\0{sha256_file(f)}\n".encode())
    return digest.hexdigest()


def setup_logging(level: str | int = "INFO") -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def progress_disabled() -> bool:
    """tqdm bars are quiet under CI (CI=true) or when SAM3_EDGE_QUIET is set."""
    return bool(os.environ.get("CI") or os.environ.get("SAM3_EDGE_QUIET"))


def resize_logits(logits, size: int | tuple[int, int]):
    """Mask logits [..., h, w] -> [..., H, W], bilinear as at inference (returned as they are when the size matches)."""
    import torch.nn.functional as F

    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(logits.shape[-2:]) == size:
        return logits
    flat = F.interpolate(logits.reshape(-1, 1, *logits.shape[-2:]), size=size, mode="bilinear", align_corners=False)
    return flat.reshape(*logits.shape[:-2], *size)
