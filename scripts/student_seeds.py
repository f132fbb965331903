"""The student chain for several init seeds, outside the default pipeline; collects metrics/student_seeds.json.

    python scripts/student_seeds.py --seeds 1 2 [--reuse-pipeline-seed]     (make seeds)

For each seed N it writes ``runs/seeds/seed-N/params.yaml`` (params.yaml with ``student.init_seed: N``) and runs
the student stages of dvc.yaml (distill_phase1 -> distill_phase2 -> finetune_saco -> distill_video ->
evaluate@student) with their own commands, outputs redirected under ``runs/seeds/seed-N/``; the teacher, caches
and data are the pipeline's (run ``dvc repro`` first). The pipeline's own student counts as the seed of
params.yaml's ``student.init_seed`` (``metrics/eval/student.json``), unless that seed is listed again. A killed run
resumes: every training stage resumes from its checkpoint, and a seed whose evaluation exists is not re-run if its
run key still matches (``run_key``: the seed's params, the chain's commands, the code version and the dvc.lock
digests of their data deps); a seed evaluated under other code, params or inputs is run again.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import yaml

from sam3_edge.eval.seeds import summarize_seeds
from sam3_edge.utils import sources_digest, write_json

ROOT = Path(__file__).resolve().parents[1]

CHAIN = ("distill_phase1", "distill_phase2", "finetune_saco", "distill_video")
REDIRECT = ("checkpoints/", "metrics/train/", "metrics/eval/", "dvclive/", "predictions/")


def chain_stages(root: Path) -> list[tuple[str, str, list[str]]]:
    """(name, command, dep paths) of the chain's stages and evaluate@student's, in run order, as DVC resolves them
    from ``root``'s dvc.yaml."""
    from dvc.repo import Repo

    names = [*CHAIN, "evaluate@student"]
    with Repo(str(root)) as repo:
        found = {s.name: (" ".join(s.cmd.split()), sorted(d.def_path for d in s.deps)) for s in repo.index.stages}
    missing = [n for n in names if n not in found]
    if missing:
        raise SystemExit(f"{root}/dvc.yaml lacks stages of the chain: {missing}")
    return [(name, *found[name]) for name in names]


def stage_commands(root: Path) -> list[tuple[str, str]]:
    """The chain's commands (and evaluate@student's) as DVC resolves them from ``root``'s dvc.yaml."""
    return [(name, cmd) for name, cmd, _ in chain_stages(root)]


def run_key(root: Path, params_text: str) -> str:
    """What a seed's evaluation depends on: its params, the chain's commands, the code version (``sources_digest``
    of ``src/sam3_edge`` and ``stages``, as the training stages' resume keys) and, for the data deps (caches,
    teacher, data), the digest dvc.lock records for them."""
    lock = yaml.safe_load((root / "dvc.lock").read_text()) if (root / "dvc.lock").exists() else {}
    locked = {d["path"]: d.get("md5", "") for st in lock.get("stages", {}).values() for d in st.get("deps", [])}
    parts = [params_text, sources_digest(root / "src" / "sam3_edge", root / "stages")]
    for _, cmd, deps in chain_stages(root):
        parts.append(cmd)
        for dep in deps:
            if dep.startswith((*REDIRECT, "src/", "stages/")) or dep.endswith(".yaml"):
                continue  # per-run checkpoints, code (in the digest above), params (in params_text)
            parts.append(f"{dep}={locked.get(dep, 'unlocked')}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def redirect(cmd: str, run_dir: str, params: str) -> list[str]:
    """The command with --params -> the seed's file and every per-run output path moved under ``run_dir``."""
    out = []
    for arg in shlex.split(cmd):
        if arg == "params.yaml":
            arg = params
        elif arg.startswith(REDIRECT):
            arg = f"{run_dir}/{arg}"
        elif ":" in arg and arg.split(":", 1)[1].startswith(REDIRECT):  # a predictor spec, student:<checkpoint>
            kind, path = arg.split(":", 1)
            arg = f"{kind}:{run_dir}/{path}"
        out.append(arg)
    if out[0] == "python":
        out[0] = sys.executable
    return out


def run_seed(seed: int, base_params: dict, out_root: Path) -> Path:
    run_dir = out_root / f"seed-{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    params = dict(base_params)
    params["student"] = {**params["student"], "init_seed": seed}
    params_file = run_dir / "params.yaml"
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    metrics = run_dir / "metrics/eval/student.json"
    key_file, key = run_dir / "run_key.txt", run_key(ROOT, params_file.read_text())
    if metrics.exists():
        if key_file.exists() and key_file.read_text().strip() == key:
            print(f"seed {seed}: {metrics} exists for these params, code and inputs, not re-run", flush=True)
            return metrics
        print(f"seed {seed}: {metrics} is from other params, code or inputs: re-running the chain", flush=True)
        metrics.unlink()
    for name, cmd in stage_commands(ROOT):
        argv = redirect(cmd, str(run_dir.relative_to(ROOT)), str(params_file.relative_to(ROOT)))
        t0 = time.time()
        print(f"seed {seed}: {name} ...", flush=True)
        subprocess.run(argv, cwd=ROOT, check=True)
        print(f"seed {seed}: {name} done in {time.time() - t0:.0f} s", flush=True)
    key_file.write_text(key + "\n")
    return metrics


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", required=True)
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--out", default="runs/seeds")
    p.add_argument("--metrics", default="metrics/student_seeds.json")
    p.add_argument(
        "--collect-only",
        action="store_true",
        help="summarize the seeds' existing evaluations without checking their run keys or running anything (e.g. "
        "seeds run side by side as separate invocations); each seed's recorded run key goes into the summary",
    )
    args = p.parse_args()
    base = yaml.safe_load((ROOT / args.params).read_text())
    own = int(base["student"]["init_seed"])
    files = {}
    if own not in args.seeds:
        files[own] = ROOT / "metrics/eval/student.json"
    keys = {}
    for seed in args.seeds:
        if args.collect_only:
            run_dir = ROOT / args.out / f"seed-{seed}"
            files[seed], key_file = run_dir / "metrics/eval/student.json", run_dir / "run_key.txt"
            if not files[seed].is_file() or not key_file.is_file():
                raise SystemExit(f"seed {seed}: no finished run under {run_dir} (run without --collect-only)")
            keys[str(seed)] = key_file.read_text().strip()
        else:
            files[seed] = run_seed(seed, base, ROOT / args.out)
    per_seed = {seed: json.loads(Path(f).read_text()) for seed, f in files.items()}
    teacher = json.loads((ROOT / "metrics/eval/teacher.json").read_text())
    result = summarize_seeds(per_seed, teacher)
    result["sources"] = {str(s): str(Path(f).relative_to(ROOT)) for s, f in sorted(files.items())}
    result["command"] = "python scripts/student_seeds.py " + " ".join(sys.argv[1:])
    if keys:
        result["run_keys"] = keys  # collected, not checked: the key each seed's chain ran under
    write_json(ROOT / args.metrics, result)
    print(json.dumps(result["summary"], indent=1))


if __name__ == "__main__":
    main()
