"""The benchmark worker's memory figure is its own: not the parent's resident set (ru_maxrss crosses fork + exec)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

CHILD = """
import json
from sam3_edge.deploy import bench_worker as w
base = w._rss_mb()
w._reset_hwm()
buf = bytearray(64 * 2**20)
for i in range(0, len(buf), 4096):
    buf[i] = 1
print(json.dumps({"base": base, "peak": w._hwm_mb()}))
"""


def test_worker_peak_excludes_the_parent_and_sees_its_own_allocation():
    parent = bytearray(400 * 2**20)  # a parent far larger than the child
    for i in range(0, len(parent), 4096):
        parent[i] = 1
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    increment = got["peak"] - got["base"]
    assert 60 <= increment < 200, got  # the child's 64 MB, not the parent's 400 MB
    # the figure the worker used before: the child's ru_maxrss carries the parent's resident set
    probe = "import resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    inherited = int(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout) / 1024
    assert inherited >= 400, inherited
    del parent


class _BigOutputs:
    """A stand-in program whose ``video_step`` returns a fresh 8 MB mask a frame (the real-size student's is 6.4 MB)."""

    def __init__(self, spec: dict) -> None:
        import types

        self.config = types.SimpleNamespace(memory_slots=2, dim=4)

    def run(self, method: str, args):
        import torch

        if method == "video_step":
            return [torch.ones(2 * 2**20), torch.zeros(1), args[-2] + 1]
        return [torch.zeros(4)]


def test_program_memory_leaves_out_the_outputs_kept_for_parity(tmp_path, monkeypatch):
    """24 frames x 8 MB of kept masks are the benchmark's memory, not the program's (they read as 190 MB of
    "program" memory before 2026-12-05)."""
    import torch

    import sam3_edge.deploy.inputs as inputs_mod
    from sam3_edge.deploy import bench_worker as w

    frames = 24
    video = {
        "frames": torch.zeros(frames, 1, 3, 4, 4),
        "points": torch.zeros(1, 1, 3),
        "box": torch.zeros(1, 4),
        "box_valid": torch.zeros(1),
    }
    text = {"video_text/emb": torch.zeros(1, 2, 4), "video_text/valid": torch.ones(1, 2)}
    monkeypatch.setattr(w, "_Pte", _BigOutputs)
    monkeypatch.setattr(w, "load_file", lambda path: video if path == "video" else text)
    monkeypatch.setattr(inputs_mod, "load_inputs", lambda path: {"image": [(torch.zeros(1),)]})
    spec = {"kind": "pte", "inputs": "x", "video": "video", "video_text": "text", "warmup": 1, "iters": 2,
            "parity_samples": 1}  # fmt: skip
    result = w.measure(spec, tmp_path / "outputs.safetensors")
    assert result["video"]["frames"] == frames
    assert result["model_rss_mb"] < 100, result  # one frame's transient mask, not the 192 MB kept
    from safetensors.torch import load_file

    assert len([k for k in load_file(tmp_path / "outputs.safetensors") if k.startswith("video/")]) == frames


def test_video_fps_leaves_out_the_methods_first_run(monkeypatch):
    """The first ``video_step`` call loads the method (XNNPACK set-up): an untimed warm-up frame, then the median
    of the timed passes (one pass with the load inside read 147 FPS for a ~300 FPS file)."""
    import types

    import torch

    from sam3_edge.deploy import bench_worker as w

    clock = {"t": 0.0}

    class _Slow:
        config = types.SimpleNamespace(memory_slots=2, dim=4)
        calls = 0

        def run(self, method, args):
            self.calls += 1
            clock["t"] += 10.0 if self.calls == 1 else 0.01  # loading the method, then a 10 ms frame
            return [torch.zeros(1), args[-2]]

    monkeypatch.setattr(w.time, "perf_counter", lambda: clock["t"])
    frames = 8
    video = {"frames": torch.zeros(frames, 1, 3, 4, 4), "points": torch.zeros(1, 1, 3), "box": torch.zeros(1, 4),
             "box_valid": torch.zeros(1)}  # fmt: skip
    text = {"video_text/emb": torch.zeros(1, 2, 4), "video_text/valid": torch.ones(1, 2)}
    model = _Slow()
    got = w._time_video(model, video, text, passes=3)
    assert model.calls == 1 + 3 * frames and got["passes"] == 3 and got["frames"] == frames
    assert got["fps"] == pytest.approx(100.0) and got["fps_passes"] == pytest.approx([100.0] * 3)
