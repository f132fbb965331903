"""Helpers of the reliability tests: run real stage entrypoints as subprocesses, SIGKILL them, watch out paths."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml
from safetensors import safe_open

from tests.support.stages import stage_script

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
TEMP_GLOB = ".*.tmp"  # what sam3_edge.utils.atomic_path names its temporary files

# the cache section of the rel_cache fixture and of the stage runs: one image per shard, so a kill lands mid-run
CACHE_SECTION = {
    "prompts_per_image": 2,
    "prompt_mix": {"text": 0.6, "point": 0.2, "box": 0.2},
    "levels": [0, 1],
    "images_per_shard": 1,
    "batch_size": 1,
    "seed": 0,
}


def stage_env(**extra: str) -> dict[str, str]:
    """Environment of a stage subprocess: offline, quiet, one thread, no MLflow (the queue test enables it)."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "SAM3_EDGE_QUIET": "1",
        "SAM3_EDGE_NO_MLFLOW": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "SAM3_EDGE_LOG": "WARNING",
    }
    env.update(extra)
    return env


def write_params(path: Path, sections: dict) -> Path:
    path.write_text(yaml.safe_dump(sections, sort_keys=False))
    return path


def stage_cmd(stage: str, params: Path, *args: str | Path, **flags: str | Path) -> list[str]:
    """The command line of a DVC stage's script: ``args`` as they are, then ``--<flag> value`` for each of
    ``flags`` (``metrics_dir=x`` -> ``--metrics-dir x``)."""
    script, select = stage_script(stage)
    named = [part for k, v in flags.items() for part in (f"--{k.replace('_', '-')}", str(v))]
    return [PY, str(script), *select, "--params", str(params), *map(str, args), *named]


def run_stage(cmd: list[str], *, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=ROOT, env=stage_env(), capture_output=True, text=True, timeout=timeout)
    return proc


def check_ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, f"stage failed ({proc.returncode}):\n{proc.stderr[-4000:]}"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def file_is_complete(path: Path) -> str | None:
    """None when ``path`` parses as its format (json, safetensors, pte flatbuffer header), else why not."""
    try:
        if path.suffix == ".json":
            json.loads(path.read_bytes())
        elif path.suffix == ".safetensors":
            with safe_open(str(path), framework="pt") as fh:
                for k in fh.keys():  # noqa: SIM118
                    fh.get_slice(k)
            # the header parses; a truncated payload shows up as a size mismatch. Header and size come from ONE
            # read: a file replaced (atomically) between two opens would otherwise mix two versions' figures
            data = path.read_bytes()
            header = int.from_bytes(data[:8], "little")
            meta = json.loads(data[8 : 8 + header])
            end = max((v["data_offsets"][1] for k, v in meta.items() if k != "__metadata__"), default=0)
            if len(data) != 8 + header + end:
                return f"size {len(data)} != header-declared {8 + header + end}"
        elif path.suffix == ".pte":
            return pte_problem(path.read_bytes())
    except FileNotFoundError:
        return None  # replaced between listing and reading: the next poll sees the new file
    except Exception as err:  # noqa: BLE001 - any parse failure means a partial file was visible
        return f"{type(err).__name__}: {err}"
    return None


def pte_problem(data: bytes) -> str | None:
    """ExecuTorch files: ``ET..`` identifier at 4, extended header ``eh00`` at 8 giving the full file size."""
    if len(data) < 40 or data[4:6] != b"ET" or data[8:12] != b"eh00":
        return "no ExecuTorch flatbuffer header"
    program_size = int.from_bytes(data[16:24], "little")
    segment_base, segment_size = int.from_bytes(data[24:32], "little"), int.from_bytes(data[32:40], "little")
    expected = segment_base + segment_size if segment_size else program_size
    return None if len(data) == expected else f"size {len(data)} != header-declared {expected}"


class OutWatcher:
    """Polls ``dirs`` while a stage runs; records every final-named file that is ever visible but incomplete."""

    def __init__(self, *dirs: Path, period: float = 0.05) -> None:
        self.dirs, self.period = dirs, period
        self.bad: list[str] = []
        self.seen: dict[Path, tuple[int, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll()
            time.sleep(self.period)

    def poll(self) -> None:
        for d in self.dirs:
            if not d.is_dir():
                continue
            for p in d.rglob("*"):
                if not p.is_file() or p.name.endswith(".tmp"):
                    continue
                try:
                    st = p.stat()
                except FileNotFoundError:
                    continue
                sig = (st.st_mtime_ns, st.st_size)
                if self.seen.get(p) == sig:
                    continue
                self.seen[p] = sig
                why = file_is_complete(p)
                if why is not None:
                    self.bad.append(f"{p}: {why}")

    def __enter__(self) -> OutWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.poll()


def run_and_kill(cmd: list[str], *, marker, delay: float, timeout: float = 600) -> tuple[bool, float]:
    """Start ``cmd``; once ``marker()`` is true (work has begun) wait ``delay`` s and SIGKILL it.

    Returns (killed, seconds after start). killed is False when the stage finished before the kill.
    """
    proc = subprocess.Popen(cmd, cwd=ROOT, env=stage_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    t0 = time.monotonic()
    try:
        while proc.poll() is None and not marker():
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"{cmd}: no progress marker after {timeout} s")
            time.sleep(0.02)
        end = time.monotonic() + delay
        while proc.poll() is None and time.monotonic() < end:
            time.sleep(0.01)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True, time.monotonic() - t0
        err = proc.stderr.read().decode() if proc.stderr else ""
        assert proc.returncode == 0, f"stage failed before the kill ({proc.returncode}):\n{err[-4000:]}"
        return False, time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


def plant_stale_temp(directory: Path, final_name: str) -> Path:
    """What a SIGKILL during an atomic write leaves behind: a half-written ``.<name>.<random>.tmp`` file."""
    directory.mkdir(parents=True, exist_ok=True)
    stale = directory / f".{final_name}.k1ll3d_x.tmp"
    stale.write_bytes(b"\x00partial")
    return stale


def temps(directory: Path) -> list[Path]:
    return sorted(directory.rglob(TEMP_GLOB)) if directory.exists() else []
