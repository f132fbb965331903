"""Run the first steps of the SA-Co fine-tune from a checkpoint with params overrides, and print the val prompt
check (presence ROC AUC, prompt-vector cosine; ``sam3_edge.train.diagnostics``) every ``--check-every`` steps.

    python scripts/finetune_probe.py --name lr3e-4 --steps 400 --set finetune_saco.optim.lr=3.0e-4
    python scripts/finetune_probe.py --name probe --set 'finetune_saco.trainable=[detr_decoder]'
    python scripts/finetune_probe.py --name ps1 --steps 3000 --check-every 500 --phrase-set-weight 1 --threads 2

``--phrase-set-weight W`` adds phase 1's phrase-set distillation (``distill_phase1.phrase_set``: teacher soft
targets for a phrase set on the unlabeled distill images, ``cache/phrases/distill``) to every fine-tune step at
weight W. Each check also scores the train pairs (``train_auc``), which tells memorising from recognising.

The run follows the pipeline's schedule (``finetune_saco.optim.steps`` sets the LR clock) and stops after
``--steps`` without a final checkpoint (resume checkpoints go to ``--out``). Writes one JSON line per logged step
and per check to ``<out>/<name>.jsonl``. This is how the presence-plateau trials of docs/experiments.md
(2026-12-04, fourth session) were run; nothing here is in the pipeline.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "stages"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True)
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--init", default="checkpoints/distill_phase2/final.safetensors")
    ap.add_argument("--index", default="data/index/concepts_train.json")
    ap.add_argument("--val-index", default="data/index/concepts_val.json")
    ap.add_argument("--steps", type=int, default=400, help="steps to run (the schedule keeps its own length)")
    ap.add_argument("--check-every", type=int, default=200)
    ap.add_argument("--set", nargs="*", default=[], help="dotted.params.key=YAML value overrides")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="runs/finetune_probe")
    ap.add_argument("--phrase-set-weight", type=float, default=0.0, help="0 = the pipeline's fine-tune loss")
    ap.add_argument("--phrase-cache", default="cache/phrases/distill")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    from dataclasses import replace

    from _common import load
    from torch import nn

    from sam3_edge.cache.store import open_phrase_cache
    from sam3_edge.models import build_student
    from sam3_edge.models.encoders import build_tokenizer
    from sam3_edge.train.diagnostics import prompt_diagnostics
    from sam3_edge.train.finetune import GroupBatches
    from sam3_edge.train.loop import TrainRun, run_loop
    from sam3_edge.train.phases import (
        _init_student,
        add_phrase_adapter,
        gt_loss,
        phrase_batches,
        phrase_set_loss,
        student_forward,
    )

    params = yaml.safe_load(Path(a.params).read_text())
    for item in a.set:
        key, _, value = item.partition("=")
        *parents, leaf = key.split(".")
        node = params
        for k in parents:
            node = node.setdefault(k, {})
        node[leaf] = yaml.safe_load(value)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    params_file = out / f"{a.name}.yaml"
    params_file.write_text(yaml.safe_dump(params))
    student = build_student(load(str(params_file), "student"))
    section = load(str(params_file), "finetune_saco")
    log = (out / f"{a.name}.jsonl").open("w")

    o = section.optim
    _init_student(student, a.init)
    data = GroupBatches(
        a.index,
        image_size=student.config.image_size,
        mask_size=o.mask_size,
        max_pairs=section.max_pairs,
        prompts_per_image=section.prompts_per_image,
        prompt_mix=section.prompt_mix,
        seed=o.seed,
    )
    tokenizer = build_tokenizer(student.config.context_length)
    extra = nn.ModuleDict()
    ps_params = phrases = None
    if a.phrase_set_weight > 0:
        ps_params = replace(load(str(params_file), "distill_phase1").phrase_set, weight=a.phrase_set_weight)
        phrases = phrase_batches(student, open_phrase_cache(a.phrase_cache), ps_params, o.seed)
        add_phrase_adapter(extra, student, phrases)

    def loss_fn(model, ex, batch):
        out = student_forward(model, batch["image"], batch["prompts"], tokenizer, image_index=batch["image_index"])
        terms = gt_loss(out, batch, section.loss, o.mask_size)
        if phrases is not None:
            adapter = ex["phrase_text"] if "phrase_text" in ex else None
            ps = phrase_set_loss(model, batch["phrase_set"], ps_params, tokenizer, adapter)
            terms = {**terms, **ps, "total": terms["total"] + a.phrase_set_weight * ps["ps_total"]}
        return terms

    def batch_fn(step, rank, world):
        batch = data(step, o.batch_size, rank, world)
        if phrases is not None:
            batch["phrase_set"] = phrases.batch(step, ps_params.images_per_step, rank=rank, world_size=world)
        return batch

    def on_log(step: int, mean: dict[str, float]) -> None:
        log.write(json.dumps({"step": step, **{k: round(v, 4) for k, v in mean.items()}}) + "\n")
        if step % a.check_every == 0:
            check = prompt_diagnostics(student, a.val_index)  # restores the training mode
            train_auc = prompt_diagnostics(student, a.index)["presence_auc"]
            log.write(json.dumps({"step": step, "prompt_check": check, "train_auc": train_auc}) + "\n")
            print(step, "val presence AUC", check["presence_auc"], "train", train_auc, flush=True)
        log.flush()

    ckpt_dir = out / f"ckpt_{a.name}"
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    t0 = time.perf_counter()
    run = TrainRun(out_dir=ckpt_dir, params_hash=a.name, on_log=on_log, stop_after=a.steps)
    run_loop(
        stage="finetune_saco",
        student=student,
        trainable=section.trainable,
        loss_fn=loss_fn,
        batch_fn=batch_fn,
        optim=o,
        run=run,
        extra=extra,
    )
    log.write(json.dumps({"steps": a.steps, "wall_s": round(time.perf_counter() - t0, 1)}) + "\n")


if __name__ == "__main__":
    main()
