"""Frames per second of exported ``video_step`` methods, several 24-frame passes in one process (one thread).

    python scripts/time_video_step.py exports/pte/student/xnnpack/fp32 exports/pte/student/xnnpack/int8 ...

Each argument is an export folder (``image.pte`` + ``meta.json``). Random inputs at the student's size, the
memory state carried frame to frame as the benchmark does; prints each pass's FPS. Used to tell the benchmark's
single-pass video figure from a real change (docs/experiments.md, 2026-12-05, ninth session).
"""

from __future__ import annotations

import argparse
import time

import torch

from sam3_edge.deploy.runtime import PteProgram, resolve_export
from sam3_edge.models.config import StudentConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("exports", nargs="+", help="export folders")
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--passes", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(1)
    for export in a.exports:
        folder, meta = resolve_export(export)
        c = StudentConfig.from_json(meta["model_config"])
        program = PteProgram(folder / "image.pte")
        s, length = c.image_size, c.context_length
        inputs = (
            torch.rand(1, 3, s, s),
            torch.randn(1, length, c.dim),
            torch.ones(1, length),
            torch.full((1, c.max_points, 3), -1.0),
            torch.tensor([[s / 4, s / 4, 3 * s / 4, 3 * s / 4]]),
            torch.ones(1),
        )
        state, valid = torch.zeros(1, c.memory_slots, c.dim), torch.zeros(1)
        program.run("video_step", (*inputs, state, valid))  # warm-up frame
        fps = []
        for _ in range(a.passes):
            start = time.perf_counter()
            for _ in range(a.frames):
                state = program.run("video_step", (*inputs, state, valid))[-1]
                valid = torch.ones(1)
            fps.append(a.frames / (time.perf_counter() - start))
        print(f"{export}: video_step FPS per pass {[round(f) for f in fps]}", flush=True)


if __name__ == "__main__":
    main()
