"""Time and profile `finetune_saco` steps (batch, forward, backward) from a checkpoint, outside the pipeline.

    python scripts/profile_finetune_step.py [--init checkpoints/distill_phase2/final.safetensors] [--threads 2]

Prints the mean seconds of batch / forward / backward over `--steps` steps with the phrase set and with the GT
loss alone, then `torch.profiler`'s top ops by self CPU time with their input shapes. This is how the per-prompt
pixel copies of the mask decoder were found (docs/experiments.md, 2026-12-05). No optimizer step is taken.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "stages"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--init", default="checkpoints/distill_phase2/final.safetensors")
    ap.add_argument("--index", default="data/index/concepts_train.json")
    ap.add_argument("--phrase-cache", default="cache/phrases/distill")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--rows", type=int, default=25)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    from _common import load

    from sam3_edge.cache.store import open_phrase_cache
    from sam3_edge.models import build_student
    from sam3_edge.models.encoders import build_tokenizer
    from sam3_edge.train.finetune import GroupBatches, _gt_loss_fn
    from sam3_edge.train.phases import _init_student, add_phrase_adapter, phrase_batches, with_phrase_set

    student = build_student(load(a.params, "student"))
    p = load(a.params, "finetune_saco")
    _init_student(student, a.init)
    o = p.optim
    data = GroupBatches.from_params(a.index, p, student.config.image_size)
    tokenizer = build_tokenizer(student.config.context_length)
    phrases = phrase_batches(student, open_phrase_cache(a.phrase_cache), p.phrase_set, o.seed)
    extra = nn.ModuleDict()
    add_phrase_adapter(extra, student, phrases)
    student.train()
    loss_fns = {ps: _gt_loss_fn(p.loss, o.mask_size, tokenizer, p.phrase_set if ps else None) for ps in (True, False)}

    def step(s: int, with_ps: bool) -> tuple[float, float, float]:
        t0 = time.perf_counter()
        batch = with_phrase_set(data(s, o.batch_size, 0, 1), phrases if with_ps else None, p.phrase_set, s, 0, 1)
        t1 = time.perf_counter()
        total = loss_fns[with_ps](student, extra, batch)["total"]
        t2 = time.perf_counter()
        total.backward()
        student.zero_grad(set_to_none=True)
        extra.zero_grad(set_to_none=True)
        return t1 - t0, t2 - t1, time.perf_counter() - t2

    for s in range(2):  # warm-up
        step(s, True)
    for name, with_ps in (("GT + phrase set", True), ("GT only", False)):
        mean = np.mean([step(s, with_ps) for s in range(2, 2 + a.steps)], axis=0)
        print(f"{name}: batch {mean[0]:.3f} s, forward {mean[1]:.3f} s, backward {mean[2]:.3f} s", flush=True)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for s in range(2 + a.steps, 4 + a.steps):
            step(s, True)
    print(
        prof.key_averages(group_by_input_shape=True).table(
            sort_by="self_cpu_time_total", row_limit=a.rows, max_name_column_width=40, max_shapes_column_width=90
        )
    )


if __name__ == "__main__":
    main()
