"""Does a code change leave training unchanged? Run the student chain a few steps per stage with two checkouts and
compare every checkpoint tensor bit for bit.

    python scripts/train_equivalence.py --old /path/to/old/checkout --new . [--steps 6] [--out /tmp/train_eq]

The chain is dvc.yaml's (distill_phase1 -> distill_phase2 -> finetune_saco -> distill_video -> qat), each stage
cut to ``--steps`` steps (checkpoints every half), run from this project's data, teacher and caches (run
``dvc repro`` first) with each checkout's ``stages/`` and ``src/``, outputs under ``--out/{old,new}``. Every
``final`` and ``last`` checkpoint (weights, stage modules, optimizer state, RNG) must hold identical tensors; the
metadata may differ only in ``params_hash``, which embeds the code digest. Exit status 1 when anything differs.
A refactor that passes can have its DVC stages recorded with ``dvc commit`` instead of a re-run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import torch
import yaml
from safetensors import safe_open
from student_seeds import CHAIN, ROOT, redirect, stage_commands

STAGES = (*CHAIN, "qat")


def qat_command(root: Path) -> str:
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        stage = next(s for s in repo.index.stages if s.name == "qat")
    return " ".join(stage.cmd.split())


def run_chain(code: Path, out: Path, steps: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section in STAGES:
        params[section]["optim"].update(
            steps=steps, checkpoint_every=max(1, steps // 2), log_every=max(1, steps // 2), warmup_steps=1
        )
    params["tracking"]["mlflow"] = False
    params_file = out / "params.yaml"
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(code / "src"), "SAM3_EDGE_QUIET": "1", "SAM3_EDGE_NO_MLFLOW": "1"}
    commands = {**dict(stage_commands(ROOT)), "qat": qat_command(ROOT)}
    for name in STAGES:
        argv = redirect(commands[name], str(out), str(params_file))
        argv[1] = str(code / argv[1])  # that checkout's stage script
        print(f"{out.name}: {name}", flush=True)
        subprocess.run(argv, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


def compare(old: Path, new: Path) -> int:
    files = sorted(p.relative_to(old) for p in old.rglob("*.safetensors"))
    bad = 0
    for f in files:
        if not (new / f).exists():
            print(f"{f}: missing under {new}")
            bad += 1
            continue
        a, b = safe_open(old / f, "pt"), safe_open(new / f, "pt")
        keys_a, keys_b = set(a.keys()), set(b.keys())
        tensors = sorted(k for k in keys_a & keys_b if not torch.equal(a.get_tensor(k), b.get_tensor(k)))
        meta_a, meta_b = a.metadata() or {}, b.metadata() or {}
        meta = sorted(k for k in set(meta_a) | set(meta_b) if meta_a.get(k) != meta_b.get(k) and k != "params_hash")
        ok = keys_a == keys_b and not tensors and not meta
        bad += not ok
        detail = "" if ok else f": keys {sorted(keys_a ^ keys_b)[:5]}, tensors {tensors[:5]}, metadata {meta}"
        print(f"{f}: {len(keys_a)} tensors {'identical' if ok else 'DIFFER'}{detail}")
    print(f"{len(files)} checkpoints, {bad} differing")
    return bad if files else 1


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--old", type=Path, required=True, help="checkout of the code before the change")
    p.add_argument("--new", type=Path, default=ROOT, help="checkout of the code after it (default: this one)")
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--out", type=Path, default=Path("/tmp/train_eq"))
    args = p.parse_args()
    for which, code in (("old", args.old), ("new", args.new)):
        run_chain(code.resolve(), args.out / which, args.steps)
    sys.exit(1 if compare(args.out / "old", args.out / "new") else 0)


if __name__ == "__main__":
    main()
