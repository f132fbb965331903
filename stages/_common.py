"""What every stage entrypoint shares: argument parsing, params loading, logging, metrics writing, stage times.

Every stage ends with ``run(main)``: when ``main`` returns (not on a failure), the stage's wall time since its
process started goes into ``metrics/pipeline.json`` of the DVC project (``DVC_ROOT``), keyed by the stage's
DVC address (``DVC_STAGE``, e.g. ``evaluate@student``). Outside ``dvc repro`` (tests, a stage run by hand)
nothing is recorded. ``metrics/pipeline.json`` is listed in ``.dvcignore``, so the report stage, which depends on
``metrics/``, does not re-run because a stage time changed.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path


def _process_start() -> float:
    """When this process started (Linux ``/proc``), so a stage's time includes its imports; else now."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return time.time() - (uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.time()


_STARTED = _process_start()

# Stages run as `python stages/x.py` from the repo root with the project installed (`make install`: an editable
# install of src/sam3_edge); nothing here edits sys.path.

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from sam3_edge.config import ParamsError  # noqa: E402
from sam3_edge.params import load_section  # noqa: E402
from sam3_edge.utils import setup_logging, write_json  # noqa: E402

PIPELINE_TIMES = "metrics/pipeline.json"


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--params", default="params.yaml", help="params file (profile); default params.yaml")
    return p


def load(params_file: str, section: str):
    """Load one params section strictly; an invalid value ends the stage before any work, naming the key."""
    setup_logging(os.environ.get("SAM3_EDGE_LOG", "INFO"))
    try:
        return load_section(params_file, section)
    except ParamsError as err:
        sys.exit(f"invalid params: {err}")


def stage_name(default: str | None = None) -> str:
    """The DVC stage address (``evaluate@student``); outside ``dvc repro`` ``default`` (a script serving several
    stages passes the one it runs), else the script's name."""
    return os.environ.get("DVC_STAGE") or default or Path(sys.argv[0]).stem


def record_stage_time(path: str | Path, stage: str, seconds: float) -> dict:
    """Set ``stages[stage] = seconds`` in the json at ``path`` and recompute ``total_s``; returns the new content.

    Under an exclusive lock beside the file (stages of a ``dvc queue`` may finish together), written atomically.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            data = json.loads(path.read_text())
            stages = {str(k): float(v) for k, v in data["stages"].items()}
        except (FileNotFoundError, ValueError, KeyError, TypeError, AttributeError):
            stages = {}  # absent or unreadable: start over rather than fail a finished stage
        stages[stage] = round(float(seconds), 1)
        data = {
            "stages": dict(sorted(stages.items())),
            "total_s": round(sum(stages.values()), 1),
            "note": "wall seconds of each stage's process at its latest run under dvc repro (stages/_common.py)",
        }
        write_json(path, data)
        return data
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def run(main: Callable[[], None]) -> None:
    """Run a stage's ``main``; when it returns, record the stage's wall time (rank 0 only, under DVC only)."""
    main()
    root, stage = os.environ.get("DVC_ROOT"), os.environ.get("DVC_STAGE")
    if root and stage and os.environ.get("RANK", "0") == "0":
        record_stage_time(Path(root) / PIPELINE_TIMES, stage, time.time() - _STARTED)
