"""One benchmark measurement in its own process, so that the peak resident memory is this model's alone.

``python -m sam3_edge.deploy.bench_worker SPEC.json RESULT.json OUTPUTS.safetensors``; SPEC holds ``kind``
(``eager`` | ``pte``), ``pte`` or ``checkpoint``/``random_variant`` + ``seed``, ``inputs`` (safetensors of the
image-method inputs, from the quantize stage), ``video`` (safetensors: ``frames`` [T, 1, 3, S, S] + the
image-method prompt tensors), ``warmup``, ``iters``, ``threads``, ``parity_samples``.
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


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


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
        from sam3_edge.deploy.runtime import PteProgram, resolve_export
        from sam3_edge.models.config import StudentConfig

        pte, meta = resolve_export(spec["pte"])
        self.program = PteProgram(pte)
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


def measure(spec: dict, outputs_path: str | Path) -> dict:
    torch.set_num_threads(int(spec.get("threads", 1)))
    import executorch.kernels.quantized  # noqa: F401  (same imports for eager and .pte: equal RSS baseline)
    from executorch.runtime import Runtime

    from sam3_edge.deploy.inputs import load_inputs

    Runtime.get()
    baseline = _rss_mb()
    t = time.perf_counter()
    model = _Eager(spec) if spec["kind"] == "eager" else _Pte(spec)
    load_s = time.perf_counter() - t
    inputs = load_inputs(spec["inputs"])
    image_args, text_args = inputs["image"], inputs["text"]
    result: dict = {"load_s": load_s, "rss_baseline_mb": baseline}
    result["image"] = _time(lambda: model.run("image", image_args[0]), spec["warmup"], spec["iters"])
    result["text"] = _time(lambda: model.run("text", text_args[0]), spec["warmup"], spec["iters"])
    outputs = {}
    for i, args in enumerate(image_args[: spec["parity_samples"]]):
        for j, t_out in enumerate(model.run("image", args)):
            outputs[f"image/{i}/{j}"] = t_out.contiguous()
    if spec.get("video"):
        video = load_file(spec["video"])
        frames = video["frames"]  # [T, 1, 3, S, S]
        emb, valid = model.run("text", (video["token_ids"],))
        c = model.config
        state, state_valid = torch.zeros(1, c.memory_latents, c.dim), torch.zeros(1)
        geo = (video["points"], video["box"], video["box_valid"])
        model.run("video_step", (frames[0], emb, valid, *geo, state, state_valid))  # warm-up frame
        t = time.perf_counter()
        for k in range(frames.shape[0]):
            mask, _, state = model.run("video_step", (frames[k], emb, valid, *geo, state, state_valid))[:3]
            state_valid = torch.ones(1)
            outputs[f"video/{k}/0"] = mask.contiguous()
        elapsed = time.perf_counter() - t
        result["video"] = {"frames": int(frames.shape[0]), "fps": frames.shape[0] / elapsed}
    save_file(outputs, str(outputs_path))
    result["peak_rss_mb"] = _peak_rss_mb()
    result["model_rss_mb"] = result["peak_rss_mb"] - baseline
    return result


def main(argv: list[str] | None = None) -> int:
    spec_path, result_path, outputs_path = (argv or sys.argv[1:])[:3]
    spec = json.loads(Path(spec_path).read_text())
    Path(result_path).write_text(json.dumps(measure(spec, outputs_path)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
