"""Frames per second of exported ``video_step`` methods, the benchmark's own timing in one process (one thread).

    python scripts/time_video_step.py exports/pte/student/xnnpack/fp32 exports/pte/student/xnnpack/int8 ...

Each argument is an export folder (``image.pte`` + ``meta.json``). A random clip at the student's size goes
through ``sam3_edge.deploy.bench_worker._time_video`` (an untimed warm-up frame, then ``--passes`` passes with the
memory state carried frame to frame); prints each pass's FPS. Used to tell the benchmark's single-pass video
figure from a real change (docs/experiments.md, 2026-12-05, ninth session).
"""

from __future__ import annotations

import argparse

import torch

from sam3_edge.deploy.bench_worker import _Pte, _time_video


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("exports", nargs="+", help="export folders")
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--passes", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(1)
    for export in a.exports:
        model = _Pte({"pte": export})
        c = model.config
        s = c.image_size
        video = {
            "frames": torch.rand(a.frames, 1, 3, s, s),
            "points": torch.full((1, c.max_points, 3), -1.0),
            "box": torch.tensor([[s / 4, s / 4, 3 * s / 4, 3 * s / 4]]),
            "box_valid": torch.ones(1),
        }
        text = {
            "video_text/emb": torch.randn(1, c.context_length, c.dim),
            "video_text/valid": torch.ones(1, c.context_length),
        }
        got = _time_video(model, video, text, a.passes)
        print(f"{export}: video_step FPS per pass {[round(f) for f in got['fps_passes']]}", flush=True)


if __name__ == "__main__":
    main()
