"""Rank context for `torchrun --nproc_per_node=N stages/cache.py --kind image ...` (gloo on CPU)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

import torch.distributed as dist


@contextlib.contextmanager
def rank_context() -> Iterator[tuple[int, int, Callable[[], None]]]:
    """Yield (rank, world_size, barrier); a single process (no WORLD_SIZE or 1) needs no process group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        yield 0, 1, lambda: None
        return
    dist.init_process_group(backend="gloo")
    try:
        yield dist.get_rank(), dist.get_world_size(), dist.barrier
    finally:
        dist.destroy_process_group()
