"""Rank context for `torchrun --nproc_per_node=N stages/cache.py --kind image ...` (gloo on CPU)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch.distributed as dist


def _no_barrier() -> None:
    return None


@dataclass(frozen=True)
class Ranks:
    """This process's place among the cache builders: rank, world size and the barrier that joins them."""

    rank: int = 0
    world_size: int = 1
    barrier: Callable[[], None] = field(default=_no_barrier, compare=False)


@contextlib.contextmanager
def rank_context() -> Iterator[Ranks]:
    """Yield this process's :class:`Ranks`; a single process (no WORLD_SIZE or 1) needs no process group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        yield Ranks()
        return
    dist.init_process_group(backend="gloo")
    try:
        yield Ranks(dist.get_rank(), dist.get_world_size(), dist.barrier)
    finally:
        dist.destroy_process_group()
