"""Bipartite matching between Q predicted queries and N target instances (DETR set prediction).

``hungarian`` is the optimal assignment (scipy's ``linear_sum_assignment``); ``greedy`` takes the cheapest
remaining pair repeatedly (cheaper for large Q x N, not optimal). Both return ``min(Q, N)`` pairs.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment


def hungarian_match(cost: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Optimal assignment. cost: [Q, N] -> (pred_idx [K], tgt_idx [K]) int64, K = min(Q, N), sorted by pred."""
    c = cost.detach().float().cpu().numpy()
    if not np.isfinite(c).all():
        raise ValueError("matching cost has NaN or inf entries")
    rows, cols = linear_sum_assignment(c)
    return torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64)


def greedy_match(cost: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy assignment: repeatedly take the globally cheapest unused (pred, target) pair. cost: [Q, N]."""
    c = cost.detach().float().cpu().clone()
    if not torch.isfinite(c).all():
        raise ValueError("matching cost has NaN or inf entries")
    q, n = c.shape
    rows, cols = [], []
    for _ in range(min(q, n)):
        flat = int(torch.argmin(c))
        r, k = divmod(flat, n)
        rows.append(r)
        cols.append(k)
        c[r, :] = float("inf")
        c[:, k] = float("inf")
    order = np.argsort(rows)
    return (
        torch.as_tensor(np.asarray(rows)[order], dtype=torch.int64),
        torch.as_tensor(np.asarray(cols)[order], dtype=torch.int64),
    )


def match_instances(cost: torch.Tensor, *, method: str = "hungarian") -> tuple[torch.Tensor, torch.Tensor]:
    """Dispatch on ``method`` ("hungarian" | "greedy"). cost: [Q, N] -> (pred_idx [K], tgt_idx [K])."""
    if cost.ndim != 2:
        raise ValueError(f"cost must be [Q, N], got shape {tuple(cost.shape)}")
    if cost.shape[0] == 0 or cost.shape[1] == 0:
        empty = torch.zeros(0, dtype=torch.int64)
        return empty, empty
    if method == "hungarian":
        return hungarian_match(cost)
    if method == "greedy":
        return greedy_match(cost)
    raise ValueError(f"unknown matcher {method!r} (use 'hungarian' or 'greedy')")
