"""One benchmark measurement in its own process, so that the peak resident memory is this program's alone.

``python -m sam3_edge.deploy.bench_worker SPEC.json RESULT.json OUTPUTS.safetensors``; SPEC holds ``kind``
(``eager`` | ``pte``), ``part`` (``text`` | ``image``: the program an app holds at a time), ``pte`` (export
folder) or ``checkpoint``/``random_variant`` + ``seed``, ``inputs`` (safetensors of the methods' inputs, from the
quantize stage), ``video`` (safetensors: ``frames`` [T, 1, 3, S, S] + the prompt tensors), ``video_text`` (the
``image`` part: the text part's embedding of the clip's phrase), ``warmup``, ``iters``, ``threads``,
``parity_samples``.

Memory: ``model_rss_mb`` is the peak resident set after the program is loaded and run minus the resident set
measured just before loading (torch, executorch and the Python interpreter already imported): the runtime's own
increment, weights and planned buffers included, without the ~0.7 GB interpreter a phone does not have. The peak
is this address space's high-water mark (``VmHWM`` in /proc/self/status), reset to the current resident set just
after the baseline (``/proc/self/clear_refs`` 5). Not ``ru_maxrss``: Linux carries it across fork and exec, so a
worker started by a 1.1 GB parent reported the parent's resident set (the same text.pte measured 174 MB beside
one export and 406 MB beside another). The peak is read once the timed runs are done and before the outputs
kept for the parity check are computed: those are the benchmark's, not the program's (until 2026-12-05 the
kept real-size video masks, 6.4 MB a frame, counted as program memory). ``peak_rss_mb`` is the whole
process's own peak since it started.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def _rss_mb() -> float:
    """Current resident set size (Linux /proc), MB."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _hwm_mb() -> float:
    """This address space's peak resident set (``VmHWM``), MB: unlike ``ru_maxrss``, not inherited from the parent."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("/proc/self/status has no VmHWM line")


def _reset_hwm() -> None:
    """Reset ``VmHWM`` to the current resident set (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


class _Eager:
    def __init__(self, spec: dict) -> None:
        from sam3_edge.deploy.pipeline import load_source

        student, _ = load_source(
            checkpoint=spec.get("checkpoint"), random_variant=spec.get("random_variant"), seed=spec.get("seed", 0)
        )
        self.programs = {k: m for k, (m, _) in student.export_programs().items()}
        self.config = student.config

    @torch.no_grad()
    def run(self, method: str, args) -> list[torch.Tensor]:
        out = self.programs[method](*args)
        return list(out) if isinstance(out, (tuple, list)) else [out]


class _Pte:
    def __init__(self, spec: dict) -> None:
        from sam3_edge.deploy.runtime import PteBundle, resolve_export
        from sam3_edge.models.config import StudentConfig

        folder, meta = resolve_export(spec["pte"])
        self.program = PteBundle(folder, meta)  # a file is loaded when its first method runs
        self.config = StudentConfig.from_json(meta["model_config"])

    def run(self, method: str, args) -> list[torch.Tensor]:
        return self.program.run(method, args)


def _time(fn, warmup: int, iters: int) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    q = statistics.quantiles(times, n=10, method="inclusive")
    return {"p50_ms": statistics.median(times), "p90_ms": q[8], "mean_ms": statistics.fmean(times), "iters": iters}


def _run_video(model, video: dict, text: dict, keep: dict | None = None) -> int:
    """The clip through ``video_step`` with the memory carried frame to frame from an empty memory; the masks go
    into ``keep`` (``video/<k>/0``) when given. -> frames run."""
    emb, valid = text["video_text/emb"], text["video_text/valid"]
    frames = video["frames"]  # [T, 1, 3, S, S]
    c = model.config
    state, state_valid = torch.zeros(1, c.memory_slots, c.dim), torch.zeros(1)
    geo = (video["points"], video["box"], video["box_valid"])
    for k in range(frames.shape[0]):
        out = model.run("video_step", (frames[k], emb, valid, *geo, state, state_valid))
        mask, state = out[0], out[-1]  # masks first, the new memory state last (3 or 6 outputs: files before 12-05)
        state_valid = torch.ones(1)
        if keep is not None:
            keep[f"video/{k}/0"] = mask.contiguous()
    return int(frames.shape[0])


def _time_video(model, video: dict, text: dict, passes: int) -> dict:
    """A warm-up frame, then the clip ``passes`` times through ``video_step`` (each from an empty memory, without
    keeping outputs) -> ``fps`` of the median pass, every pass's figure, frames a pass. The warm-up frame is the
    method's first run, which loads it (``PteProgram.run``: XNNPACK's delegate set-up); until 2026-12-05 it was
    inside the one timed pass, and the fp32 / 8da4w files read 149 / 147 FPS where 5 passes of the same files
    run at ~270-300 (docs/experiments.md, 2026-12-05, ninth session)."""
    _run_video(model, {**video, "frames": video["frames"][:1]}, text)  # warm-up frame, not timed
    fps = []
    for _ in range(passes):
        t = time.perf_counter()
        frames = _run_video(model, video, text)
        fps.append(frames / (time.perf_counter() - t))
    return {"frames": frames, "passes": passes, "fps": statistics.median(fps), "fps_passes": fps}


def measure(spec: dict, outputs_path: str | Path) -> dict:
    torch.set_num_threads(int(spec.get("threads", 1)))
    import executorch.kernels.quantized  # noqa: F401  (same imports for eager and .pte: equal RSS baseline)
    from executorch.runtime import Runtime

    from sam3_edge.deploy.inputs import load_inputs

    Runtime.get()
    inputs = load_inputs(spec["inputs"])  # inputs before the baseline: the increment is the program's alone
    video = load_file(spec["video"]) if spec.get("video") else None
    text = load_file(spec["video_text"]) if spec.get("video_text") else None
    baseline = _rss_mb()
    startup_peak = _hwm_mb()  # imports and inputs, before the program
    _reset_hwm()
    t = time.perf_counter()
    model = _Eager(spec) if spec["kind"] == "eager" else _Pte(spec)
    load_s = time.perf_counter() - t
    result: dict = {"load_s": load_s, "rss_baseline_mb": baseline, "part": spec.get("part", "image")}
    outputs = {}
    if result["part"] == "text":
        text_args = inputs["text"][0]
        result["text"] = _time(lambda: model.run("text", text_args), spec["warmup"], spec["iters"])
        peak = _hwm_mb()  # read before anything is kept for the parity check: the program's own figure
        if video is not None:  # the clip's phrase, encoded once for the image part
            emb, valid = model.run("text", (video["token_ids"],))[:2]
            outputs["video_text/emb"], outputs["video_text/valid"] = emb.contiguous(), valid.contiguous()
    else:
        image_args = inputs["image"]
        result["image"] = _time(lambda: model.run("image", image_args[0]), spec["warmup"], spec["iters"])
        clip = video is not None and text is not None
        if clip:
            result["video"] = _time_video(model, video, text, int(spec.get("video_passes", 1)))
        # the peak is read here, before the parity outputs are kept: they are the benchmark's, not the program's
        # (the real-size masks are 6.4 MB a frame: 24 kept frames read as 140 MB more "program" memory)
        peak = _hwm_mb()
        for i, args in enumerate(image_args[: spec["parity_samples"]]):
            for j, t_out in enumerate(model.run("image", args)):
                outputs[f"image/{i}/{j}"] = t_out.contiguous()
        if clip:
            _run_video(model, video, text, keep=outputs)
    save_file(outputs, str(outputs_path))
    result["peak_rss_mb"] = max(startup_peak, peak)
    result["model_rss_mb"] = max(0.0, peak - baseline)
    return result


def main(argv: list[str] | None = None) -> int:
    spec_path, result_path, outputs_path = (argv or sys.argv[1:])[:3]
    spec = json.loads(Path(spec_path).read_text())
    Path(result_path).write_text(json.dumps(measure(spec, outputs_path)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
