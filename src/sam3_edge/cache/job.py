"""What every cache kind shares: where it is written and by which rank (:class:`CacheJob`), its manifest header."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from sam3_edge.cache.distributed import Ranks
from sam3_edge.cache.store import Unit, write_sharded


@dataclass(frozen=True)
class CacheJob:
    """One cache build: the output folder, this process's rank among the builders, the free-space margin."""

    out_dir: Path
    ranks: Ranks = field(default_factory=Ranks)
    disk_margin: float = 1.2

    def write(
        self,
        units: list[Unit],
        compute: Callable[[list[Unit]], dict[str, torch.Tensor]],
        header: dict[str, Any],
        sizes: tuple[int, int],
        desc: str,
    ) -> dict:
        """``store.write_sharded`` for this job: this rank's shards of ``sizes`` = (units per shard, estimated bytes
        per unit), the disk check, resume, the manifest."""
        per_shard, per_unit = sizes
        space = {"units_per_shard": per_shard, "bytes_per_unit": per_unit, "disk_margin": self.disk_margin}
        ranks = {"rank": self.ranks.rank, "world_size": self.ranks.world_size, "barrier": self.ranks.barrier}
        return write_sharded(self.out_dir, units=units, compute=compute, header=header, desc=desc, **space, **ranks)


def image_loader(index_file: str | Path, image_size: int) -> Callable[[str], torch.Tensor]:
    """path relative to ``index_file`` -> the image resized to ``image_size`` ([3, S, S] float), as the teacher sees it."""
    from sam3_edge.data.datasets import read_image, resize_image, resolve_path

    def load(rel: str) -> torch.Tensor:
        return resize_image(read_image(resolve_path(index_file, rel)), image_size)

    return load


def cache_header(kind: str, *, teacher_id: str, image_size: int, config_hash: str, **fields: Any) -> dict[str, Any]:
    """The manifest header of a cache: its kind, the teacher, the image side, the content hash, then ``fields``."""
    header = {"kind": kind, "teacher_id": teacher_id, "image_size": image_size, "config_hash": config_hash}
    return {**header, **fields, "dtype": "float16"}
