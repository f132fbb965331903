"""The ``benchmark`` stage: latency, peak memory, video FPS and eager-vs-.pte parity, each in a fresh process.

Each model is measured as an app holds it: the text program in one process (latency, its memory, the clip's
phrase encoded once), then the image program in another (image latency, video-step FPS fed that encoding, its
memory). Memory is the runtime's own increment over the process before loading (``bench_worker``), with the
whole process's peak beside it.

For every model (the trained student and the random-weight real-size student) the eager PyTorch programs and
every executable ``.pte`` are measured in the same run with the same inputs (real val pairs saved by the
quantize stage, the first frames of a val SA-V clip), so each ratio comes from one run. A ``.pte`` this host
cannot execute (Core ML, QNN) or an export that was skipped is listed with its status and reason.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from sam3_edge.deploy.config import BenchmarkParams
from sam3_edge.deploy.pipeline import mask_iou
from sam3_edge.deploy.runtime import META_NAME, backend_runnable
from sam3_edge.types import Prompt
from sam3_edge.utils import progress_disabled, read_json

LOG = logging.getLogger(__name__)


def video_clip(video_index: str | Path | None, *, image_size: int, frames: int, max_points: int, context_length: int):
    """``(tensors for the worker, description)`` from the first val SA-V clip; ``(None, reason)`` without one."""
    if video_index is None:
        return None, "no video index given"
    from sam3_edge.data.datasets import load_video_records, read_video_frames, resize_image, resolve_path
    from sam3_edge.models.encoders import build_tokenizer
    from sam3_edge.models.prompts import prepare_prompts

    records = load_video_records(video_index)
    if not records:
        return None, f"{video_index}: no val clips"
    rec = records[0]
    raw = read_video_frames(
        resolve_path(video_index, rec.video), frame_indices=list(range(min(frames, rec.num_frames)))
    )
    stack = torch.stack([resize_image(f, image_size)[None] for f in raw])  # [T, 1, 3, S, S]
    text = next((m.text for m in rec.masklets if m.text), None) or "object"
    pt = prepare_prompts(
        [Prompt(kind="text", text=text)], tokenizer=build_tokenizer(context_length), max_points=max_points
    )
    tensors = {
        "frames": stack,
        "token_ids": pt.token_ids,
        "points": pt.points,
        "box": pt.box,
        "box_valid": pt.box_valid,
    }
    return tensors, {"video_id": rec.video_id, "frames": int(stack.shape[0]), "prompt": text}


def _run_worker(spec: dict, workdir: Path, tag: str, timeout_s: int) -> tuple[dict, dict[str, torch.Tensor]]:
    spec_path, result_path, out_path = (workdir / f"{tag}.{k}" for k in ("spec.json", "result.json", "out.safetensors"))
    spec_path.write_text(json.dumps(spec))
    cmd = [sys.executable, "-m", "sam3_edge.deploy.bench_worker", str(spec_path), str(result_path), str(out_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark worker for {tag} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(result_path.read_text()), load_file(str(out_path))


def _run_parts(spec: dict, workdir: Path, tag: str, timeout_s: int) -> tuple[dict, dict[str, torch.Tensor]]:
    """The text part, then the image part fed the text part's encoding of the clip's phrase (two processes)."""
    text, text_out = _run_worker({**spec, "part": "text"}, workdir, f"{tag}.text", timeout_s)
    image_spec = {**spec, "part": "image"}
    if text_out:
        path = workdir / f"{tag}.video_text.safetensors"
        save_file(text_out, str(path))
        image_spec["video_text"] = str(path)
    image, image_out = _run_worker(image_spec, workdir, f"{tag}.image", timeout_s)
    result = {
        "load_s": image["load_s"],
        "image": image["image"],
        "text": text["text"],
        "rss_baseline_mb": image["rss_baseline_mb"],
        "model_rss_mb": image["model_rss_mb"],
        "peak_rss_mb": image["peak_rss_mb"],
        "text_load_s": text["load_s"],
        "text_model_rss_mb": text["model_rss_mb"],
        "text_peak_rss_mb": text["peak_rss_mb"],
    }
    if "video" in image:
        result["video"] = image["video"]
    return result, image_out


def _parity(eager: dict[str, torch.Tensor], pte: dict[str, torch.Tensor]) -> dict[str, float]:
    out: dict[str, float] = {}
    img = sorted({k.split("/")[1] for k in eager if k.startswith("image/")})
    if img:
        out["mask_logits_max_abs_err"] = max(
            (eager[f"image/{i}/0"] - pte[f"image/{i}/0"]).abs().max().item() for i in img
        )
        out["scores_max_abs_err"] = max((eager[f"image/{i}/2"] - pte[f"image/{i}/2"]).abs().max().item() for i in img)
        out["mask_iou_mean"] = sum(mask_iou(eager[f"image/{i}/0"], pte[f"image/{i}/0"]) for i in img) / len(img)
    vid = sorted({k.split("/")[1] for k in eager if k.startswith("video/")})
    if vid:
        out["video_mask_iou_mean"] = sum(mask_iou(eager[f"video/{k}/0"], pte[f"video/{k}/0"]) for k in vid) / len(vid)
    return out


def benchmark_model(
    *,
    source: dict[str, Any],
    inputs: str | Path,
    exports: list[str | Path],
    params: BenchmarkParams,
    video_index: str | Path | None = None,
    real_size: bool = False,
) -> dict[str, Any]:
    """Eager + each export of one model. ``source`` = ``{"checkpoint": path}`` or ``{"random_variant": name}``."""
    from sam3_edge.models.config import StudentConfig

    fp32_meta = read_json(Path(inputs).parent / META_NAME)
    config = StudentConfig.from_json(fp32_meta["model_config"])
    common = {
        "warmup": params.warmup,
        "iters": params.iters,
        "video_passes": params.video_passes,
        "threads": params.threads,
        "parity_samples": params.parity_samples,
        "inputs": str(inputs),
        "seed": source.get("seed", 0),
    }
    result: dict[str, Any] = {"image_size": config.image_size, "variant": config.name, "threads": params.threads}
    with tempfile.TemporaryDirectory(prefix="sam3_bench_") as tmp:
        workdir = Path(tmp)
        clip, clip_info = video_clip(
            video_index,
            image_size=config.image_size,
            frames=params.video_frames,
            max_points=config.max_points,
            context_length=config.context_length,
        )
        if clip is not None:
            save_file({k: v.contiguous() for k, v in clip.items()}, str(workdir / "video.safetensors"))
            common["video"] = str(workdir / "video.safetensors")
            result["video_clip"] = clip_info
        else:
            result["video_clip"] = {"status": "skipped", "reason": clip_info}
        eager, eager_out = _run_parts({**common, "kind": "eager", **source}, workdir, "eager", params.timeout_s)
        result["eager"] = eager
        for folder in tqdm(exports, desc="benchmark", disable=progress_disabled()):
            meta = read_json(Path(folder) / META_NAME)
            key = f"{meta['backend']}_{meta['variant']}"
            entry: dict[str, Any] = {"status": meta["status"], "reason": meta.get("reason", "")}
            if meta["status"] == "ok":
                files = meta.get("files", {})
                entry["pte_mb"] = meta["file_bytes"] / 2**20
                entry["image_pte_mb"] = files["image.pte"]["bytes"] / 2**20 if "image.pte" in files else None
                entry["text_pte_mb"] = files["text.pte"]["bytes"] / 2**20 if "text.pte" in files else None
                entry["delegated_fraction"] = meta["delegated_fraction"]
                entry["min_method_delegated_fraction"] = meta.get("min_method_delegated_fraction")
                entry["planned_buffer_mb"] = {
                    m: d.get("planned_buffer_mb") for m, d in meta.get("delegation", {}).get("methods", {}).items()
                }
                runnable, why = backend_runnable(meta["backend"])
                if not runnable:
                    entry.update(executed=False, reason=why)
                else:
                    got, out = _run_parts({**common, "kind": "pte", "pte": str(folder)}, workdir, key, params.timeout_s)
                    entry.update(got, executed=True, parity=_parity(eager_out, out))
                    entry["speedup_vs_eager"] = eager["image"]["p50_ms"] / got["image"]["p50_ms"]
                    if real_size:
                        entry["targets"] = {
                            "pte_under_max_mb": entry["pte_mb"] < params.max_pte_mb,
                            "image_memory_under_max_mb": got["model_rss_mb"] < params.max_peak_rss_mb,
                        }
            result[key] = entry
    return result


def run_benchmark(
    *,
    quantized_root: str | Path,
    pte_root: str | Path,
    sources: dict[str, dict[str, Any]],
    params: BenchmarkParams,
    video_index: str | Path | None = None,
    teacher_latency: str | Path | None = None,
) -> dict[str, Any]:
    """Benchmark every model under ``pte_root/<model>/`` whose fp32 inputs exist under ``quantized_root``.

    ``teacher_latency``: the ``real_teacher_latency`` stage's json (SAM 3's real architecture, eager at 1008 px);
    the real-size summary divides it by the ``.pte`` image latency when both ran with the same thread count.

    ``sources``: model name -> ``{"checkpoint": path}`` or ``{"random_variant": name, "seed": int}`` (the eager
    reference). The real-size model (``random_variant``) also gets the mobile-target checks, and its figures are
    repeated under ``summary.<variant>.<backend>`` for the gates.
    """
    out: dict[str, Any] = {}
    for model, source in sources.items():
        inputs = Path(quantized_root) / model / "fp32" / "inputs.safetensors"
        # <model>/<backend>/<variant>/ (export@<backend>) or <model>/<backend>_<variant>/ (the frozen real_export)
        folders = sorted(p.parent for p in (Path(pte_root) / model).rglob(META_NAME))
        if not inputs.is_file() or not folders:
            out[model] = {
                "status": "skipped",
                "reason": f"no fp32 inputs ({inputs}) or no exports under {pte_root}/{model}",
            }
            continue
        real = "random_variant" in source
        out[model] = benchmark_model(
            source=source, inputs=inputs, exports=folders, params=params, video_index=video_index, real_size=real
        )
        out[model]["status"] = "ok"
    summary: dict[str, Any] = {}
    teacher, teacher_reason = _teacher_latency(teacher_latency, params.threads)
    out["teacher_real_size"] = teacher if teacher else {"status": "skipped", "reason": teacher_reason}
    real_model = next((m for m, s in sources.items() if "random_variant" in s), None)
    real = out.get(real_model, {}) if real_model else {}
    for key, entry in real.items():
        if not isinstance(entry, dict) or not entry.get("executed"):
            continue
        backend, variant = key.split("_", 1)
        summary.setdefault(variant, {})[backend] = {
            "size_mb": entry["pte_mb"],  # text.pte + image.pte
            "image_pte_mb": entry["image_pte_mb"],
            "text_pte_mb": entry["text_pte_mb"],
            "image_latency_ms": entry["image"]["p50_ms"],
            "eager_latency_ms": real["eager"]["image"]["p50_ms"],
            "speedup_vs_eager": real["eager"]["image"]["p50_ms"] / entry["image"]["p50_ms"],
            "teacher_latency_ms": teacher["p50_ms"] if teacher else None,
            "speedup_vs_teacher": teacher["p50_ms"] / entry["image"]["p50_ms"] if teacher else None,
            "video_fps": entry.get("video", {}).get("fps"),
            "peak_memory_mb": entry["model_rss_mb"],  # the image program's runtime increment (bench_worker)
            "text_peak_memory_mb": entry["text_model_rss_mb"],
            "process_peak_rss_mb": entry["peak_rss_mb"],
            "delegated_fraction": entry["min_method_delegated_fraction"],  # the lowest over methods
        }
    out["summary"] = summary
    return out


def _teacher_latency(path: str | Path | None, threads: int) -> tuple[dict[str, Any] | None, str]:
    """The real-size teacher's latency json when it exists and ran with ``threads`` threads, else a reason."""
    if path is None or not Path(path).is_file():
        return None, f"{path}: not measured (frozen stage real_teacher_latency: run `make bench-real`)"
    data = read_json(path)
    if data.get("threads") != threads:
        return None, f"{path}: measured with {data.get('threads')} threads, the .pte with {threads}: not comparable"
    return data, ""


REAL_KEYS = ("real", "teacher_real_size", "summary")


def merge_real(metrics: dict[str, Any], real_file: str | Path | None) -> dict[str, Any]:
    """The real-size figures of the frozen ``real_benchmark`` stage (``make bench-real``) beside the embedded
    student's: ``real``, ``teacher_real_size`` and the gates' ``summary`` are copied from ``real_file`` as measured
    there, and ``real_source`` names it. Without the file, ``real`` says how to produce it."""
    out = dict(metrics)
    if real_file is None or not Path(real_file).is_file():
        out["real"] = {
            "status": "skipped",
            "reason": f"{real_file}: not measured (frozen stage real_benchmark: run `make bench-real`)",
        }
        out.setdefault("summary", {})
        return out
    real = read_json(real_file)
    for key in REAL_KEYS:
        if key in real:
            out[key] = real[key]
    out["real_source"] = {"file": str(real_file), "note": "frozen stage real_benchmark (make bench-real)"}
    return out
