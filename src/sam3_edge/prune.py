"""`sam3-edge prune`: find what the current pipeline no longer references and say how many bytes it frees.

Candidates are (1) workspace files under the pipeline's artefact roots (the top folders of every out in
``dvc.lock``, plus ``checkpoints/``, ``cache/``, ``exports/``) that no out of the current ``dvc.lock`` covers,
and (2) DVC cache entries (``.dvc/cache/files/md5/..``) whose hash the current ``dvc.lock`` does not reference,
directly or through a directory manifest. Dry-run by default; ``--yes`` deletes. Anything the lock references
is never removed. This is a CLI boundary module, so it reads dvc.lock (yaml) itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

DEFAULT_ROOTS = ("checkpoints", "cache", "exports")


@dataclass(frozen=True)
class Candidate:
    path: Path
    bytes: int
    kind: str  # "workspace" | "dvc-cache"
    reason: str


def _lock_outs(lock: dict) -> list[dict]:
    outs = []
    for stage in (lock.get("stages") or {}).values():
        outs.extend(stage.get("outs") or [])
    return outs


def _cache_file(cache_dir: Path, md5: str) -> Path:
    return cache_dir / "files" / "md5" / md5[:2] / md5[2:]


def _dir_manifest(cache_dir: Path, md5: str) -> list[dict]:
    path = _cache_file(cache_dir, md5 + ".dir")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return []


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def find_candidates(root: Path) -> tuple[list[Candidate], set[Path]]:
    """Return (unreferenced candidates, referenced workspace paths)."""
    lock_path = root / "dvc.lock"
    if not lock_path.exists():
        raise FileNotFoundError(f"{lock_path}: no dvc.lock; run `dvc repro` first so prune knows what is in use")
    lock = yaml.safe_load(lock_path.read_text()) or {}
    cache_dir = root / ".dvc" / "cache"
    referenced_md5: set[str] = set()
    covered_files: set[Path] = set()
    covered_dirs: dict[Path, set[str] | None] = {}
    roots = set(DEFAULT_ROOTS)
    for out in _lock_outs(lock):
        rel = Path(out["path"])
        roots.add(rel.parts[0])
        md5 = out.get("md5", "")
        if md5:
            referenced_md5.add(md5.removesuffix(".dir"))
        if md5.endswith(".dir"):
            manifest = _dir_manifest(cache_dir, md5.removesuffix(".dir"))
            referenced_md5.update(entry["md5"] for entry in manifest if "md5" in entry)
            covered_dirs[root / rel] = {entry["relpath"] for entry in manifest} if manifest else None
        else:
            covered_files.add(root / rel)

    candidates: list[Candidate] = []
    for top in sorted(roots):
        base = root / top
        if not base.exists() or top in {".dvc", ".git", "src", "stages", "tests", "metrics", "configs"}:
            continue
        for path in sorted(p for p in base.rglob("*") if p.is_file()):
            if path in covered_files:
                continue
            owner = next((d for d in covered_dirs if d in path.parents), None)
            if owner is not None:
                rels = covered_dirs[owner]
                if rels is None or str(path.relative_to(owner)) in rels:
                    continue
                reason = f"inside {owner.relative_to(root)} but not in its dvc.lock manifest"
            else:
                reason = "not an out of the current dvc.lock"
            candidates.append(Candidate(path, path.stat().st_size, "workspace", reason))

    md5_root = cache_dir / "files" / "md5"
    if md5_root.exists():
        for path in sorted(p for p in md5_root.rglob("*") if p.is_file()):
            md5 = path.parent.name + path.name.removesuffix(".dir")
            if md5 not in referenced_md5:
                candidates.append(Candidate(path, path.stat().st_size, "dvc-cache", "hash not referenced by dvc.lock"))
    return candidates, covered_files | set(covered_dirs)


def prune(root: Path, *, yes: bool = False) -> tuple[list[Candidate], int]:
    """List (and with ``yes`` delete) unreferenced files. Returns (candidates, bytes freed or freeable)."""
    candidates, referenced = find_candidates(root)
    total = sum(c.bytes for c in candidates)
    if yes:
        for cand in candidates:
            assert cand.path not in referenced, cand.path  # never remove what the lock references
            cand.path.unlink(missing_ok=True)
    return candidates, total


def human(nbytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if nbytes < 1024 or unit == "GB":
            return f"{nbytes:.1f} {unit}" if unit != "B" else f"{int(nbytes)} B"
        nbytes /= 1024
    return f"{nbytes:.1f} GB"
