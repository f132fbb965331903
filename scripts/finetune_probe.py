"""Run the first steps of the SA-Co fine-tune from a checkpoint with params overrides, and print the val prompt
check (presence ROC AUC, prompt-vector cosine; ``sam3_edge.train.diagnostics``) every ``--check-every`` steps.

    python scripts/finetune_probe.py --name lr3e-4 --steps 400 --set finetune_saco.optim.lr=3.0e-4
    python scripts/finetune_probe.py --name probe --set 'finetune_saco.trainable=[detr_decoder]'
    python scripts/finetune_probe.py --name ps1 --steps 3000 --check-every 500 --phrase-set-weight 1 --threads 2

``--phrase-set-weight W`` sets the weight of the phrase-set distillation (``finetune_saco.phrase_set``: teacher
soft targets for a phrase set on the unlabeled distill images, ``cache/phrases/distill``) on every fine-tune step;
0 = the GT loss alone. Each check also scores the train pairs (``train_auc``), which tells memorising from
recognising.

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
    ap.add_argument("--phrase-set-weight", type=float, help="default: finetune_saco.phrase_set.weight of --params")
    ap.add_argument("--phrase-cache", default="cache/phrases/distill")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    from _common import load

    from sam3_edge.cache.store import open_phrase_cache
    from sam3_edge.models import build_student
    from sam3_edge.train.diagnostics import prompt_diagnostics
    from sam3_edge.train.finetune import finetune_saco
    from sam3_edge.train.loop import TrainRun

    params = yaml.safe_load(Path(a.params).read_text())
    for item in a.set:
        key, _, value = item.partition("=")
        *parents, leaf = key.split(".")
        node = params
        for k in parents:
            node = node.setdefault(k, {})
        node[leaf] = yaml.safe_load(value)
    if a.phrase_set_weight is not None:
        params.setdefault("finetune_saco", {}).setdefault("phrase_set", {})["weight"] = a.phrase_set_weight
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    params_file = out / f"{a.name}.yaml"
    params_file.write_text(yaml.safe_dump(params))
    student = build_student(load(str(params_file), "student"))
    section = load(str(params_file), "finetune_saco")
    log = (out / f"{a.name}.jsonl").open("w")

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
    run = TrainRun(out_dir=ckpt_dir, params_hash=a.name, init_from=a.init, on_log=on_log, stop_after=a.steps)
    phrases = open_phrase_cache(a.phrase_cache) if section.phrase_set.weight > 0 else None
    finetune_saco(student, a.index, section, run, phrase_cache=phrases)
    log.write(json.dumps({"steps": a.steps, "wall_s": round(time.perf_counter() - t0, 1)}) + "\n")


if __name__ == "__main__":
    main()
