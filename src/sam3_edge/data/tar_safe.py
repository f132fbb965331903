"""Safe extraction of dataset tar shards (SA-1B ``sa_XXXXXX.tar``).

Members with absolute paths, ``..`` components, symlinks/hardlinks or device/fifo entries are refused and
reported as :class:`DataError` skips; the rest is extracted with ``tarfile``'s ``filter="data"`` as a second
line of defence, so nothing is ever written outside the target folder. Extraction goes to a ``.partial``
folder renamed into place at the end, so a killed run never leaves a half-extracted shard that looks done.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path, PurePosixPath

from sam3_edge.data.errors import DataError

_REJECTED = "rejected_members.json"


def member_problem(member: tarfile.TarInfo) -> str | None:
    """Why ``member`` must not be extracted, or None when it is a plain file/folder inside the target."""
    name = member.name
    if name.startswith("/") or name.startswith("\\") or (len(name) > 1 and name[1] == ":"):
        return "tar_absolute_path"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:
        return "tar_parent_path"
    if member.issym() or member.islnk():
        return "tar_link"
    if not (member.isfile() or member.isdir()):
        return "tar_special_file"
    return None


def extract_tar(tar_path: str | Path, target_dir: str | Path) -> tuple[Path, list[DataError]]:
    """Extract ``tar_path`` into ``target_dir/<tar stem>/``; returns that folder and the refused members.

    A folder already extracted by an earlier run is reused (its refused members are re-reported from the
    record kept next to it). A tar that cannot be read raises :class:`DataError` naming it.
    """
    tar_path = Path(tar_path)
    final = Path(target_dir) / tar_path.name.removesuffix(".tar")
    if final.is_dir() and (final / _REJECTED).is_file():
        rejected = json.loads((final / _REJECTED).read_text())
        return final, [DataError(r["file"], r["reason"], r["detail"]) for r in rejected]
    partial = final.with_name(final.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    errors: list[DataError] = []
    try:
        with tarfile.open(tar_path, mode="r:*") as tar:
            for member in tar:
                where = f"{tar_path}:{member.name}"
                problem = member_problem(member)
                if problem is not None:
                    errors.append(DataError(where, problem, "refused tar member"))
                    continue
                try:
                    tar.extract(member, path=partial, filter="data")
                except tarfile.FilterError as err:
                    errors.append(DataError(where, "tar_unsafe_member", str(err)))
    except FileNotFoundError:
        shutil.rmtree(partial, ignore_errors=True)
        raise DataError(tar_path, "missing_file", "tar shard not found") from None
    except (tarfile.TarError, OSError, EOFError) as err:
        shutil.rmtree(partial, ignore_errors=True)
        raise DataError(tar_path, "bad_tar", f"unreadable tar: {err}") from None
    record = [{"file": e.path, "reason": e.reason, "detail": e.detail} for e in errors]
    (partial / _REJECTED).write_text(json.dumps(record, indent=1))
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    return final, errors


def sa1b_folder_of(extracted: Path) -> Path:
    """Official shards hold the files at top level (optionally under one folder); find the folder with sa_*.json."""
    if any(extracted.glob("sa_*.json")) or any(extracted.glob("sa_*.jpg")):
        return extracted
    subdirs = [p for p in extracted.iterdir() if p.is_dir()]
    for sub in sorted(subdirs):
        if any(sub.glob("sa_*.json")) or any(sub.glob("sa_*.jpg")):
            return sub
    return extracted
