"""One resumable, optionally distributed training loop shared by every student stage.

A stage supplies ``batch_fn(step, rank, world_size)`` (deterministic per step) and ``loss_fn(student, extra,
batch) -> {name: tensor, "total": tensor}``. The loop owns the optimizer, LR schedule, clipping, DDP wrapping,
timing, logging callbacks and checkpoints: ``<out_dir>/last.safetensors`` every ``checkpoint_every`` steps
(model + stage modules + optimizer + RNG + step) and ``<out_dir>/final.safetensors`` at the end. A re-run with
the same params hash resumes from ``last``; since batches depend only on the step and the RNG is restored, the
resumed run ends with exactly the weights of an uninterrupted one (tested).
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from sam3_edge.core.checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from sam3_edge.models.student import PARTS, Student
from sam3_edge.train.config import OptimParams
from sam3_edge.train.distributed import DistInfo
from sam3_edge.utils import progress_disabled, remove_stale_temps

LOG = logging.getLogger(__name__)
LAST = "last.safetensors"
FINAL = "final.safetensors"


class _Joint(nn.Module):
    """Student + stage-owned modules (adapters) under one module so DDP syncs both."""

    def __init__(self, student: Student, extra: nn.ModuleDict, loss_fn: Callable) -> None:
        super().__init__()
        self.student = student
        self.extra = extra
        self.loss_fn = loss_fn

    def forward(self, batch: Any) -> dict[str, torch.Tensor]:
        return self.loss_fn(self.student, self.extra, batch)


@dataclass(frozen=True)
class TrainRun:
    """What every training entry point shares: where its checkpoints go (``out_dir``), the resume key
    (``params_hash``: a ``last`` checkpoint of another hash starts fresh), the checkpoint it starts from
    (``init_from``), its ranks, the curve callback and ``stop_after`` (end after that many steps without a final
    checkpoint: a simulated kill, for the resume tests)."""

    out_dir: str | Path
    params_hash: str
    init_from: str | Path | None = None
    dist: DistInfo | None = None
    on_log: Callable[[int, dict[str, float]], None] | None = None
    stop_after: int | None = None
    on_start: Callable[[int], None] | None = None  # called once with the step the run starts at (0 = fresh)


@dataclass
class LoopResult:
    steps: int
    resumed_from: int
    final_losses: dict[str, float]
    wall_s: float
    samples_per_s: float
    data_s_per_step: float
    compute_s_per_step: float
    history: list[dict[str, float]] = field(default_factory=list)
    completed: bool = True

    def metrics(self, **extra: Any) -> dict[str, Any]:
        """The figures every training stage reports (its metrics json), then ``extra``."""
        return {
            "steps": self.steps,
            "resumed_from_step": self.resumed_from,
            "final_losses": self.final_losses,
            "samples_per_s": self.samples_per_s,
            "wall_s": self.wall_s,
            "data_s_per_step": self.data_s_per_step,
            "compute_s_per_step": self.compute_s_per_step,
            **extra,
        }


def lr_at(step: int, optim: OptimParams) -> float:
    """Linear warmup; cosine decay to ``min_lr_ratio`` of ``lr`` at ``steps - cooldown_steps``; then (when
    ``cooldown_steps`` > 0) a second cosine from there to ``final_lr_ratio`` of ``lr`` at the last step."""
    if step < optim.warmup_steps:
        return optim.lr * (step + 1) / optim.warmup_steps
    main_end = optim.steps - optim.cooldown_steps
    if step < main_end or optim.cooldown_steps == 0:
        span = max(1, main_end - optim.warmup_steps)
        progress = min(1.0, (step - optim.warmup_steps) / span)
        hi, lo = 1.0, optim.min_lr_ratio
    else:
        progress = min(1.0, (step - main_end + 1) / optim.cooldown_steps)
        hi, lo = optim.min_lr_ratio, optim.final_lr_ratio
    return optim.lr * (lo + (hi - lo) * 0.5 * (1 + math.cos(math.pi * progress)))


def set_trainable(student: Student, parts: tuple[str, ...]) -> list[nn.Parameter]:
    """Only the named parts train; returns their parameters."""
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise ValueError(f"unknown student parts {unknown} (known: {PARTS})")
    for name in PARTS:
        for p in getattr(student, name).parameters():
            p.requires_grad_(name in parts)
    return [p for p in student.parameters() if p.requires_grad]


def _train_mode(student: Student, parts: tuple[str, ...]) -> None:
    student.train()
    for name in PARTS:  # frozen parts keep BatchNorm statistics and dropout in eval behaviour
        if name not in parts:
            getattr(student, name).eval()


def run_loop(
    *,
    stage: str,
    student: Student,
    trainable: tuple[str, ...],
    loss_fn: Callable[[Student, nn.ModuleDict, Any], dict[str, torch.Tensor]],
    batch_fn: Callable[[int, int, int], Any],
    optim: OptimParams,
    run: TrainRun,
    extra: nn.ModuleDict | None = None,
    meta: dict[str, Any] | None = None,
) -> LoopResult:
    """Train ``trainable`` parts of ``student`` for ``optim.steps`` steps, resuming from ``out_dir/last``.

    ``run.stop_after`` ends the run after that many steps of this call without a final checkpoint (it simulates a
    killed process, for the resume test). Only rank 0 writes files.
    """
    dist = run.dist or DistInfo()
    out_dir, params_hash, on_log, stop_after = run.out_dir, run.params_hash, run.on_log, run.stop_after
    # the global numpy / python generators are recorded in every resume checkpoint: seed them, so two runs with the
    # same params write identical checkpoints (batches come from their own seeded generators, see train/data.py)
    random.seed(optim.seed)
    np.random.seed(optim.seed)
    out = Path(out_dir)
    extra = extra if extra is not None else nn.ModuleDict()
    params = set_trainable(student, trainable) + list(extra.parameters())
    # fused: one kernel over every tensor (the tiny student's AdamW step was ~15 % of a CPU step, 6x less fused)
    fused = all(p.device.type in ("cpu", "cuda") for p in params)
    opt = torch.optim.AdamW(params, lr=optim.lr, weight_decay=optim.weight_decay, fused=fused)
    start = 0
    last = out / LAST
    if dist.rank == 0:
        remove_stale_temps(out)  # a checkpoint half-written by a killed run (only rank 0 writes here)
    if last.exists():
        ckpt = load_checkpoint(last)
        if ckpt.params_hash != params_hash or ckpt.stage != stage:
            LOG.info("%s: %s is from other params (hash %s) - starting fresh", stage, last, ckpt.params_hash[:12])
        else:
            student.load_state_dict(ckpt.model_state, strict=True)
            extra.load_state_dict(ckpt.extra_state, strict=True)
            if ckpt.optimizer_state is not None:
                opt.load_state_dict(ckpt.optimizer_state)
            restore_rng_state(ckpt.rng_state)
            start = ckpt.step
            LOG.info("%s: resuming from %s at step %d/%d", stage, last, start, optim.steps)
    if run.on_start is not None:
        run.on_start(start)
    joint = _Joint(student, extra, loss_fn)
    model: nn.Module = joint
    if dist.world_size > 1:
        model = torch.nn.parallel.DistributedDataParallel(joint, find_unused_parameters=True)

    def save(path: Path, step: int, *, with_state: bool) -> None:
        if dist.rank != 0:
            return
        save_checkpoint(
            path,
            model=student,
            model_config=student.config.to_json(),
            step=step,
            epoch=0,
            params_hash=params_hash,
            stage=stage,
            optimizer=opt if with_state else None,
            rng_state=capture_rng_state() if with_state else None,
            extra_state=extra.state_dict(),
            meta=meta,
        )

    _train_mode(student, trainable)
    history: list[dict[str, float]] = []
    window: list[dict[str, float]] = []
    data_s = compute_s = 0.0
    samples = 0
    t_start = time.perf_counter()
    done = start
    bar = tqdm(range(start, optim.steps), desc=stage, disable=progress_disabled() or dist.rank != 0)
    for step in bar:
        if stop_after is not None and step - start >= stop_after:
            return LoopResult(done, start, {}, time.perf_counter() - t_start, 0.0, 0.0, 0.0, history, False)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, optim)
        t0 = time.perf_counter()
        batch = batch_fn(step, dist.rank, dist.world_size)
        t1 = time.perf_counter()
        losses = model(batch)
        opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        if optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, optim.grad_clip)
        opt.step()
        t2 = time.perf_counter()
        data_s += t1 - t0
        compute_s += t2 - t1
        samples += optim.batch_size * dist.world_size
        done = step + 1
        row = {k: float(v.detach()) for k, v in losses.items()}
        if not all(math.isfinite(v) for v in row.values()):
            raise FloatingPointError(f"{stage}: non-finite loss at step {step}: {row}")
        window.append(row)
        if done % optim.log_every == 0 or done == optim.steps:
            mean = {k: sum(r[k] for r in window) / len(window) for k in window[0]}
            mean["lr"] = lr_at(step, optim)
            history.append({"step": done, **mean})
            if on_log is not None and dist.rank == 0:
                on_log(done, mean)
            bar.set_postfix(loss=f"{mean['total']:.3f}")
            window = []
        if done % optim.checkpoint_every == 0 and done < optim.steps:
            save(last, done, with_state=True)
    wall = time.perf_counter() - t_start
    ran = max(1, done - start)
    final = history[-1] if history else {}
    save(last, done, with_state=True)
    save(out / FINAL, done, with_state=False)
    return LoopResult(
        steps=done,
        resumed_from=start,
        final_losses={k: v for k, v in final.items() if k not in ("step", "lr")},
        wall_s=wall,
        samples_per_s=samples / wall if wall > 0 else 0.0,
        data_s_per_step=data_s / ran,
        compute_s_per_step=compute_s / ran,
        history=history,
    )
