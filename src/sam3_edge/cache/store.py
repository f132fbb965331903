"""Sharded safetensors store with a manifest: resumable, rank-split, hash-verified.

Layout of a cache directory::

    shard-00000.safetensors   fp16 tensors keyed "<key>/<name>" (sample tensors and shared per-image tensors)
    shard-00000.json          sidecar written after its shard: {file, sha256, samples, units, config_hash}
    manifest.json             {teacher_id, config_hash, complete, shards: [{file, sha256, samples, units}],
                               samples: {key: meta}, units: {unit: meta}, ...}

Work is cut into *units* (an image and its K prompt samples, or one video clip) and units into shards of a fixed
size, so the shard contents never depend on how many processes ran. Rank r of N builds shards j with
j % N == r; a shard whose sidecar matches the config hash and whose file matches the recorded sha256 is kept,
anything else is rebuilt. Files are written to a temp name and renamed, so a killed run leaves no partial shard.
Rank 0 writes the manifest once every rank is done: it is byte-identical for any N.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from tqdm import tqdm

from sam3_edge.utils import (
    atomic_path,
    progress_disabled,
    read_json,
    remove_stale_temps,
    save_safetensors,
    sha256_file,
    write_json,
)

LOG = logging.getLogger("sam3_edge.cache")
MANIFEST = "manifest.json"
VOCABULARY_FILE = "vocabulary.safetensors"  # phrase-set caches: the teacher's embedding of every vocabulary phrase
FORMAT_VERSION = 1


class CacheError(RuntimeError):
    """A cache directory is incomplete, corrupt, or cannot be written (message names the file)."""


@dataclass(frozen=True)
class Unit:
    """A unit of work: ``samples`` maps sample key -> manifest metadata; ``meta`` describes the unit itself."""

    key: str
    samples: dict[str, dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.safetensors"


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def shard_is_valid(path: Path, *, config_hash: str) -> bool:
    """True when ``path`` and its sidecar exist, the sidecar has ``config_hash`` and the file hash matches."""
    side = _sidecar(path)
    if not path.exists() or not side.exists():
        return False
    try:
        info = read_json(side)
    except ValueError:
        return False
    return info.get("config_hash") == config_hash and info.get("sha256") == sha256_file(path)


def check_disk(out_dir: Path, needed_bytes: int, *, margin: float) -> None:
    """Fail early, before writing, when the filesystem of ``out_dir`` lacks ``needed_bytes * margin``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(out_dir).free
    if needed_bytes * margin > free:
        raise CacheError(
            f"{out_dir}: not enough disk space for the teacher cache: need about "
            f"{needed_bytes * margin / 1e9:.2f} GB ({needed_bytes / 1e9:.2f} GB x margin {margin}), "
            f"{free / 1e9:.2f} GB free. Free space, point the cache elsewhere, or reduce "
            f"cache.levels / mask_size / max_queries / prompts_per_image."
        )


def write_sharded(
    out_dir: str | Path,
    *,
    units: Sequence[Unit],
    units_per_shard: int,
    compute: Callable[[list[Unit]], dict[str, torch.Tensor]],
    header: dict[str, Any],
    bytes_per_unit: int,
    disk_margin: float = 1.2,
    rank: int = 0,
    world_size: int = 1,
    barrier: Callable[[], None] = lambda: None,
    desc: str = "cache",
) -> dict[str, Any]:
    """Build (or finish) a sharded cache; returns this rank's stats {built, kept, shards, seconds, built_samples}.

    ``compute(units)`` returns the fp16 tensors of those units keyed ``"<key>/<name>"``; ``header`` must hold
    ``teacher_id`` and ``config_hash`` and goes into the manifest as is.
    """
    import time

    out = Path(out_dir)
    config_hash = header["config_hash"]
    shards = [list(units[i : i + units_per_shard]) for i in range(0, len(units), units_per_shard)]
    mine = [j for j in range(len(shards)) if j % world_size == rank]
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(out)  # temp files of a killed run (other ranks wait at the barrier below)
        manifest = out / MANIFEST
        if manifest.exists():  # a stale complete manifest must never outlive a (re)build in progress
            write_json(manifest, {**read_json(manifest), "complete": False})
    barrier()
    todo = [j for j in mine if not shard_is_valid(out / shard_name(j), config_hash=config_hash)]
    kept = len(mine) - len(todo)
    if kept:
        LOG.info("rank %d: keeping %d verified shard(s), building %d", rank, kept, len(todo))
    check_disk(out, bytes_per_unit * sum(len(shards[j]) for j in todo), margin=disk_margin)
    t0 = time.perf_counter()
    for j in tqdm(todo, desc=f"{desc} (rank {rank})", disable=progress_disabled()):
        path = out / shard_name(j)
        _sidecar(path).unlink(missing_ok=True)
        computed = compute(shards[j])
        tensors = {k: computed[k].contiguous() for k in sorted(computed)}
        with atomic_path(path) as tmp:
            # one metadata entry only: safetensors serialises its metadata map in per-process hash order, so two
            # entries would make identical shards hash differently across processes (ranks)
            save_safetensors(tensors, tmp, metadata={"config_hash": config_hash})
        write_json(
            _sidecar(path),
            {
                "file": path.name,
                "sha256": sha256_file(path),
                "config_hash": config_hash,
                "samples": [k for u in shards[j] for k in u.samples],
                "units": [u.key for u in shards[j]],
            },
        )
    seconds = time.perf_counter() - t0
    barrier()
    if rank == 0:
        write_manifest(out, shards=shards, header=header)
    barrier()
    return {
        "built": len(todo),
        "kept": kept,
        "shards": len(shards),
        "seconds": seconds,
        "built_samples": sum(len(u.samples) for j in todo for u in shards[j]),
    }


def write_manifest(out: Path, *, shards: list[list[Unit]], header: dict[str, Any]) -> dict[str, Any]:
    entries, samples, unit_meta = [], {}, {}
    for j, members in enumerate(shards):
        side = _sidecar(out / shard_name(j))
        if not side.exists():
            raise CacheError(f"{side}: missing after every rank finished (a rank failed?)")
        info = read_json(side)
        if info["config_hash"] != header["config_hash"]:
            raise CacheError(
                f"{side}: written for config {info['config_hash'][:12]}, expected {header['config_hash'][:12]}"
            )
        entries.append(
            {"file": info["file"], "sha256": info["sha256"], "samples": info["samples"], "units": info["units"]}
        )
        for u in members:
            unit_meta[u.key] = {**u.meta, "shard": info["file"]}
            for key, meta in u.samples.items():
                samples[key] = {**meta, "unit": u.key, "shard": info["file"]}
    manifest = {
        "format_version": FORMAT_VERSION,
        **header,
        "complete": True,
        "shards": entries,
        "samples": samples,
        "units": unit_meta,
    }
    write_json(out / MANIFEST, manifest)
    return manifest


class TeacherCache:
    """Read side: ``keys()``, ``meta(key)``, ``load(key)`` (sample tensors + its unit's shared tensors), ``verify()``."""

    def __init__(self, directory: str | Path, *, require_complete: bool = True) -> None:
        self.dir = Path(directory)
        self.manifest = read_json(self.dir / MANIFEST)
        if require_complete and not self.manifest.get("complete"):
            raise CacheError(f"{self.dir / MANIFEST}: cache is incomplete (complete=false): re-run its stage")
        self.teacher_id: str = self.manifest["teacher_id"]
        self.config_hash: str = self.manifest["config_hash"]

    def __len__(self) -> int:
        return len(self.manifest["samples"])

    def keys(self) -> list[str]:
        return sorted(self.manifest["samples"])

    def meta(self, key: str) -> dict[str, Any]:
        try:
            return self.manifest["samples"][key]
        except KeyError:
            raise KeyError(f"{self.dir}: no sample {key!r}") from None

    def load(self, key: str, *, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
        """Tensors of one sample as ``{name: tensor}`` (names without the key prefix); fp16 unless ``dtype``."""
        meta = self.meta(key)
        prefixes = [f"{key}/", f"{meta['unit']}/"] if meta["unit"] != key else [f"{key}/"]
        out: dict[str, torch.Tensor] = {}
        shard = self.dir / meta["shard"]
        try:
            with safe_open(str(shard), framework="pt") as fh:
                for name in fh.keys():  # noqa: SIM118 - safe_open has no __iter__
                    for prefix in prefixes:
                        if name.startswith(prefix):
                            t = fh.get_tensor(name)
                            out[name[len(prefix) :]] = t.to(dtype) if dtype is not None and t.is_floating_point() else t
        except (OSError, SafetensorError) as err:  # missing, truncated or corrupt shard
            raise CacheError(f"{shard}: unreadable shard ({err}): re-run the cache stage to rebuild it") from None
        if not out:
            raise CacheError(f"{self.dir / meta['shard']}: no tensors for sample {key!r}")
        return out

    def verify(self) -> int:
        """Re-hash every shard against the manifest; raises :class:`CacheError` naming the first bad shard."""
        for entry in self.manifest["shards"]:
            path = self.dir / entry["file"]
            if not path.exists():
                raise CacheError(f"{path}: shard listed in the manifest is missing")
            if sha256_file(path) != entry["sha256"]:
                raise CacheError(f"{path}: sha256 mismatch (corrupt shard): re-run the cache stage to rebuild it")
        return len(self.manifest["shards"])


def open_cache(directory: str | Path) -> TeacherCache:
    """Open a complete cache directory (``cache/teacher/<split>`` or ``cache/teacher_video/<split>``)."""
    return TeacherCache(directory)


def read_vocabulary(cache_dir: str | Path) -> tuple[list[str], torch.Tensor]:
    """-> (phrases, teacher text embeddings [V, D]) of a phrase-set cache; a clear error when absent."""
    import json

    from safetensors import safe_open

    path = Path(cache_dir) / VOCABULARY_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: phrase-set cache has no vocabulary embeddings (re-run cache_phrases)")
    with safe_open(str(path), framework="pt") as fh:
        phrases = json.loads(fh.metadata()["phrases"])
        return phrases, fh.get_tensor("text")


class PhraseCache(TeacherCache):
    """A phrase-set cache directory: the store's read side + the teacher's vocabulary embeddings."""

    def vocabulary(self) -> tuple[list[str], torch.Tensor]:
        return read_vocabulary(self.dir)


def open_phrase_cache(directory: str | Path) -> PhraseCache:
    cache = PhraseCache(directory)
    if cache.manifest.get("kind") != "phrases":
        raise ValueError(
            f"{directory}: not a phrase-set cache (kind {cache.manifest.get('kind')!r}; see cache_phrases)"
        )
    return cache
