"""What the ``quantize`` and ``export`` stages call: one function each, returning the stage's metrics dict.

``quantize``: student (checkpoint, or a factory variant with random weights for the real-size measurement)
-> reparameterize -> recipe -> ``<out>/{text,image,video_step}.pt2`` + ``inputs.safetensors`` (real val inputs
for parity) + ``meta.json``. ``export``: those programs -> ``<out>/text.pte`` + ``<out>/image.pte`` (the split of
``deploy.runtime.PTE_FILES``: an app loads the text program only when the phrase changes) + ``meta.json`` for one
backend, with the delegation report, the size check against the fp32 files and (where the backend runs here)
parity of the ``.pte`` files with the eager programs of the same variant.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

from sam3_edge.deploy.config import ExportParams, QuantizeParams
from sam3_edge.deploy.inputs import index_samples, load_inputs, program_inputs, save_inputs
from sam3_edge.deploy.lowering import BackendUnavailable, lower_programs, merge_delegation
from sam3_edge.deploy.quantize import PROGRAMS_META, build_variant, load_programs, save_programs
from sam3_edge.deploy.quantize import weight_quantization_report as weight_report
from sam3_edge.deploy.report import stage_metrics
from sam3_edge.deploy.rewrite import unfuse_attention
from sam3_edge.deploy.runtime import IMAGE_OUTPUTS, META_NAME, PTE_FILES, PteBundle, backend_runnable
from sam3_edge.utils import (
    atomic_path,
    ensure_free_space,
    read_json,
    remove_stale_temps,
    setup_logging,
    sha256_file,
    write_json,
)

LOG = logging.getLogger(__name__)
INPUTS_NAME = "inputs.safetensors"
DISK_MARGIN = 1.5  # free space needed = estimated .pte bytes x this (the .pt2 programs are the estimate)


def _ios(target: str) -> int:
    """``"iOS17"`` -> 17 (Core ML deployment targets order by their number)."""
    return int(target.removeprefix("iOS"))


class SizeCheckError(RuntimeError):
    """A variant's ``.pte`` is larger than its float source (or over its params ratio)."""


def load_source(*, checkpoint: str | Path | None, random_variant: str | None, seed: int):
    """``(student in eval mode, reparameterized; source description)`` from a checkpoint or a random variant."""
    from sam3_edge.models import build_student, load_student

    if (checkpoint is None) == (random_variant is None):
        raise ValueError("give exactly one of checkpoint / random_variant")
    if checkpoint is not None:
        if not Path(checkpoint).is_file():
            raise FileNotFoundError(f"{checkpoint}: student checkpoint not found")
        model, meta = load_student(checkpoint)
        source = {
            "checkpoint": str(checkpoint),
            "sha256": sha256_file(checkpoint),
            "step": meta.get("step"),
            "meta": {k: v for k, v in meta.items() if k in ("qat_scheme", "group_size")},
        }
    else:
        model = build_student(random_variant, seed=seed)
        source = {"random_variant": random_variant, "seed": seed, "note": "random weights: size and speed only"}
    return model.eval().reparameterize(), source


def _write_skip(out_dir: Path, meta: dict[str, Any]) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / META_NAME, meta)
    LOG.warning("%s: skipped: %s", out_dir, meta["reason"])
    return meta


def run_quantize(
    out_dir: str | Path,
    *,
    model: str,
    variant: str,
    params: QuantizeParams,
    checkpoint: str | Path | None = None,
    random_variant: str | None = None,
    qat_checkpoint: str | Path | None = None,
    calib_index: str | Path | None = None,
) -> dict[str, Any]:
    out_dir = Path(out_dir)
    base = {"model": model, "variant": variant}
    if variant == "qat":
        if not params.convert_qat:
            return _write_skip(out_dir, {**base, "status": "skipped", "reason": "quantize.convert_qat is false"})
        if qat_checkpoint is None or not Path(qat_checkpoint).is_file():
            reason = f"QAT checkpoint {qat_checkpoint} not present (the student's qat stage has not produced it)"
            return _write_skip(out_dir, {**base, "status": "skipped", "reason": reason})
        checkpoint, random_variant = qat_checkpoint, None
    start = time.perf_counter()
    student, source = load_source(checkpoint=checkpoint, random_variant=random_variant, seed=params.seed)
    recipe, group_size = params.qat_recipe, params.linear_group_size
    if variant == "qat":  # convert with the scheme the student was fake-quantized with (checkpoint meta)
        recipe = source.get("meta", {}).get("qat_scheme", recipe)
        group_size = int(source.get("meta", {}).get("group_size", group_size))
        if recipe not in ("int8", "8da4w"):
            raise ValueError(f"{qat_checkpoint}: QAT scheme {recipe!r} has no deploy recipe (int8, 8da4w)")
    unfused = unfuse_attention(student)  # nn.MultiheadAttention -> nn.Linear projections (deploy/rewrite.py)
    samples = index_samples(
        calib_index, params.calibration_samples, image_size=student.config.image_size, seed=params.seed
    )
    inputs = program_inputs(student, samples)
    programs = student.export_programs()
    eps, recipe = build_variant(
        variant,
        programs,
        inputs,
        per_channel=params.int8_per_channel,
        group_size=group_size,
        sensitive=params.sensitive_layers,
        embedding_bits=params.embedding_bits,
        recipe=recipe,
        text_recipe=params.text_recipe,
        text_group_size=params.text_group_size,
        text_embedding_bits=params.text_embedding_bits,
    )
    recipe["attention_unfused"] = unfused
    weights = {name: weight_report(ep) for name, ep in eps.items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / INPUTS_NAME) as tmp:
        save_inputs(tmp, inputs)
    meta = {
        **base,
        "status": "ok",
        "reason": "",
        "source": source,
        "model_config": student.config.to_json(),
        "calibration": Path(calib_index).name if calib_index is not None else "random",
        "calibration_samples": len(samples),
        "sensitive_layers": list(params.sensitive_layers),
        "recipe": recipe,
        "weights": weights,
        "quantize_s": time.perf_counter() - start,
    }
    save_programs(out_dir, eps, meta)
    return read_json(out_dir / PROGRAMS_META)


def mask_iou(a: torch.Tensor, b: torch.Tensor) -> float:
    """IoU of the foreground (logit > 0) of two mask-logit tensors of equal shape; 1.0 when both are empty."""
    fa, fb = a > 0, b > 0
    union = (fa | fb).sum().item()
    return 1.0 if union == 0 else (fa & fb).sum().item() / union


def logit_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine similarity of two logit tensors, flattened (1.0 when both are all zero)."""
    a, b = a.float().flatten(), b.float().flatten()
    denom = (a.norm() * b.norm()).item()
    return 1.0 if denom == 0 else float((a @ b).item() / denom)


def parity(pte: PteBundle, programs: dict, inputs: dict, samples: int, min_foreground: float = 0.0) -> dict[str, Any]:
    """.pte vs the eager programs of the same variant on the saved real inputs.

    Per method: max abs error over every output; for the mask methods also the cosine of the mask logits and the
    mask IoU. The IoU counts only samples whose eager foreground covers at least ``min_foreground`` of the mask
    pixels: a random-weight model's masks have a few hundred foreground pixels out of 1.6M, and the IoU of those
    is noise whatever the lowering did (the real-size int8 export measured IoU 0.35 at cosine 0.9986).
    """
    out: dict[str, Any] = {}
    for method in ("text", "image", "video_step"):
        if method not in programs or method not in inputs:
            continue
        eager = programs[method].module()
        errs, ious, cosines, small = [], [], [], 0
        for args in inputs[method][:samples]:
            with torch.no_grad():
                ref = eager(*args)
            got = pte.run(method, args)
            ref = ref if isinstance(ref, (tuple, list)) else (ref,)
            errs.append(max((r.float() - g.float()).abs().max().item() for r, g in zip(ref, got, strict=True)))
            if method != "text":
                cosines.append(logit_cosine(ref[0], got[0]))
                if (ref[0] > 0).float().mean().item() >= min_foreground:
                    ious.append(mask_iou(ref[0], got[0]))
                else:
                    small += 1
        out[method] = {"max_abs_err": max(errs)}
        if cosines:
            out[method]["mask_logit_cosine_min"] = min(cosines)
            out[method]["iou_samples"] = len(ious)
            out[method]["iou_skipped_small_foreground"] = small
        if ious:
            out[method]["mask_iou_min"] = min(ious)
            out[method]["mask_iou_mean"] = sum(ious) / len(ious)
    return out


def parity_failures(result: dict[str, Any], params: ExportParams, *, gate_iou: bool = True) -> list[str]:
    """What in a ``parity`` result breaks the export's bounds (empty = the lowering kept the numerics).

    ``gate_iou`` False: the mask IoU is recorded, not held to ``min_parity_mask_iou`` (a random-weight model's
    masks are sign noise around zero logits; the mask-logit cosine still is held to its bound)."""
    bad = []
    for method, r in result.items():
        if r.get("mask_logit_cosine_min", 1.0) < params.min_parity_cosine:
            bad.append(
                f"{method} mask-logit cosine {r['mask_logit_cosine_min']:.4f} < export.min_parity_cosine "
                f"{params.min_parity_cosine}"
            )
        if gate_iou and r.get("mask_iou_min", 1.0) < params.min_parity_mask_iou:
            bad.append(
                f"{method} mask IoU {r['mask_iou_min']:.3f} < export.min_parity_mask_iou {params.min_parity_mask_iou}"
            )
    return bad


def run_export(
    quantized_dir: str | Path,
    out_dir: str | Path,
    *,
    backend: str,
    params: ExportParams,
    reference_dir: str | Path | None = None,
    wait_reference: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Lower one variant for one backend; ``reference_dir`` = the fp32 export of the same backend and model.

    ``wait_reference`` is called after lowering, before the size check reads ``reference_dir``: the variants of
    :func:`export_backend` lower while the fp32 reference is still being written.
    """
    quantized_dir, out_dir = Path(quantized_dir), Path(out_dir)
    remove_stale_temps(out_dir)  # a .pte half-written by a killed run
    estimate = sum(f.stat().st_size for f in quantized_dir.glob("*.pt2"))
    ensure_free_space(out_dir, estimate, margin=DISK_MARGIN, what=f"the {backend} .pte (estimated from the programs)")
    programs, qmeta = load_programs(quantized_dir)
    variant = qmeta["variant"]
    base = {"backend": backend, "model": qmeta["model"], "variant": variant, "executed": False}
    if qmeta.get("status") != "ok":
        return _write_skip(out_dir, {**base, "status": "skipped", "reason": f"source variant: {qmeta.get('reason')}"})
    groups = {name: [m for m in methods if m in programs] for name, methods in PTE_FILES.items()}
    coreml_target = max(  # a Core ML recipe may need a newer OS than the params' target (int4 weights: iOS18)
        params.coreml_deployment_target, qmeta.get("recipe", {}).get("coreml_min_target", "iOS16"), key=_ios
    )
    lowered = {}
    try:
        for name, methods in groups.items():
            if methods:
                lowered[name] = lower_programs(
                    {m: programs[m] for m in methods},
                    backend,
                    variant=variant,
                    coreml_target=coreml_target,
                    qnn_soc=params.qnn_soc,
                )
    except BackendUnavailable as err:
        return _write_skip(out_dir, {**base, "status": "skipped", "reason": str(err)})
    except Exception as err:  # a backend that cannot take this variant: recorded, never replaced by another backend
        if backend == "xnnpack":
            raise
        LOG.exception("%s/%s lowering failed", backend, variant)
        return _write_skip(out_dir, {**base, "status": "failed", "reason": f"{type(err).__name__}: {err}"[:2000]})
    sizes = {name: len(low.buffer) for name, low in lowered.items()}
    if wait_reference is not None and variant != "fp32":
        wait_reference()
    size = _size_check(sizes, variant, backend, params, reference_dir)
    ensure_free_space(out_dir, sum(sizes.values()), margin=DISK_MARGIN, what=f"the {backend} .pte files")
    (out_dir / "model.pte").unlink(missing_ok=True)  # the single file of exports before the split
    for name, low in lowered.items():
        with atomic_path(out_dir / name) as tmp:
            tmp.write_bytes(low.buffer)
    delegation = merge_delegation([low.delegation for low in lowered.values()])
    meta = {
        **base,
        "status": "ok",
        "reason": "",
        **({"coreml_deployment_target": coreml_target} if backend == "coreml" else {}),
        "file_bytes": sum(sizes.values()),
        "files": {
            name: {
                "methods": low.methods,
                "bytes": len(low.buffer),
                "export_s": low.export_s,
                "delegated_fraction": low.delegation["delegated_fraction"],
            }
            for name, low in lowered.items()
        },
        "size": size,
        "export_s": sum(low.export_s for low in lowered.values()),
        "delegated_fraction": delegation["delegated_fraction"],
        "min_method_delegated_fraction": delegation["min_method_delegated_fraction"],
        "non_delegated_ops": delegation["non_delegated"],
        "delegation": delegation,
        "methods": sorted(delegation["methods"]),
        "model_config": qmeta["model_config"],
        "recipe": qmeta.get("recipe", {}),
        "outputs": {"image": list(IMAGE_OUTPUTS)},
    }
    runnable, why = backend_runnable(backend)
    if runnable:
        pte = PteBundle(out_dir, meta)
        meta["parity"] = parity(
            pte, programs, load_inputs(quantized_dir / INPUTS_NAME), params.parity_samples, params.parity_min_foreground
        )
        meta["executed"] = True
        # random weights (the real-size student, `source.random_variant`): its masks are noise, so a few thousand
        # near-zero logits flipping sign moved the IoU to 0.46 at cosine 0.998 (docs/experiments.md, 2026-12-05,
        # tenth session); the IoU is recorded and the mask-logit cosine decides
        random_weights = "random_variant" in qmeta.get("source", {})
        meta["parity_iou_gated"] = not random_weights
        bad = parity_failures(meta["parity"], params, gate_iou=not random_weights)
        if bad:
            raise RuntimeError(
                f"{backend}/{variant}: the .pte disagrees with the eager program ({'; '.join(bad)}): lowering "
                "changed the numerics"
            )
    else:
        meta["not_executed_reason"] = why
    write_json(out_dir / META_NAME, meta)
    return meta


def _size_check(
    sizes: dict[str, int], variant: str, backend: str, params: ExportParams, reference_dir: str | Path | None
) -> dict[str, Any]:
    """Every file no larger than the same file of the fp32 export, and the total within the variant's ratio."""
    if variant == "fp32":
        return {"reference": "self", "ratio_to_fp32": 1.0}
    if reference_dir is None:
        raise ValueError(f"{backend}/{variant}: the fp32 export (reference_dir) is needed for the size check")
    ref = read_json(Path(reference_dir) / META_NAME)
    if ref.get("status") != "ok":
        return {"reference": str(reference_dir), "ratio_to_fp32": None, "note": f"fp32 reference {ref.get('status')}"}
    total, ref_total = sum(sizes.values()), ref["file_bytes"]
    ref_files = {name: info["bytes"] for name, info in ref.get("files", {}).items()}
    for name, nbytes in sizes.items():
        if name in ref_files and nbytes > ref_files[name]:
            raise SizeCheckError(
                f"{backend}/{variant}: {name} is {nbytes / 1e6:.2f} MB, larger than the fp32 {name} "
                f"({ref_files[name] / 1e6:.2f} MB): a quantized file must shrink"
            )
    ratio = total / ref_total
    limit = params.max_size_ratio.get(variant, 1.0)
    if total > ref_total or ratio > limit:
        raise SizeCheckError(
            f"{backend}/{variant}: the .pte files are {total / 1e6:.2f} MB = {ratio:.2f} x the fp32 .pte files "
            f"({ref_total / 1e6:.2f} MB), over the limit {limit} (export.max_size_ratio.{variant}); "
            "a quantized file must shrink"
        )
    per_file = {name: nbytes / ref_files[name] for name, nbytes in sizes.items() if ref_files.get(name)}
    return {"reference": str(reference_dir), "ratio_to_fp32": ratio, "limit": limit, "file_ratios": per_file}


class ExportError(RuntimeError):
    """One or more variants of :func:`export_backend` failed (the others were still written)."""


def _export_worker(
    quantized_dir: str,
    out_dir: str,
    metrics_file: str,
    backend: str,
    params: ExportParams,
    reference_dir: str | None,
    reference_done: Any,
    threads: int,
) -> dict[str, Any]:
    """One variant in a process of its own: lower, check, write ``out_dir`` and the stage metrics json."""
    setup_logging(os.environ.get("SAM3_EDGE_LOG", "INFO"))  # a spawned process starts without the stage's logging
    torch.set_num_threads(threads)
    wait = None if reference_done is None else reference_done.wait
    meta = run_export(
        quantized_dir, out_dir, backend=backend, params=params, reference_dir=reference_dir, wait_reference=wait
    )
    write_json(metrics_file, stage_metrics(meta))
    LOG.info("export %s/%s: %s %s", backend, meta["variant"], meta["status"], meta.get("reason", ""))
    return meta


def export_backend(
    quantized_root: str | Path,
    out_root: str | Path,
    metrics_dir: str | Path,
    *,
    backend: str,
    variants: tuple[str, ...] | list[str],
    params: ExportParams,
) -> dict[str, dict[str, Any]]:
    """Export ``fp32`` (the size reference) and every one of ``variants`` for one backend, ``params.jobs`` at a time.

    ``quantized_root/<v>`` -> ``out_root/<v>/`` + ``metrics_dir/<v>.json``. ExecuTorch's lowering is single-threaded
    Python for most of its minutes, so the variants lower side by side in processes of their own (spawned: a clean
    torch per export); a variant waits for the fp32 files only at its size check. A variant that fails does not stop
    the others: they are written, then :class:`ExportError` names every failure.
    """
    quantized_root, out_root, metrics_dir = Path(quantized_root), Path(out_root), Path(metrics_dir)
    names = ["fp32", *(v for v in variants if v != "fp32")]
    jobs = max(1, min(params.jobs, len(names)))
    (out_root / "fp32" / META_NAME).unlink(missing_ok=True)  # never size variants against an earlier run's fp32
    threads = max(1, torch.get_num_threads() // jobs)
    ctx = multiprocessing.get_context("spawn")
    results: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    with ctx.Manager() as manager:
        reference_done = manager.Event()
        with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
            futures = {}
            for v in names:  # fp32 first: the pool starts jobs in submission order
                futures[v] = pool.submit(
                    _export_worker,
                    str(quantized_root / v),
                    str(out_root / v),
                    str(metrics_dir / f"{v}.json"),
                    backend,
                    params,
                    None if v == "fp32" else str(out_root / "fp32"),
                    None if v == "fp32" else reference_done,
                    threads,
                )
            futures["fp32"].add_done_callback(lambda _: reference_done.set())  # also when fp32 failed
            for v, future in futures.items():
                try:
                    results[v] = future.result()
                except Exception as err:  # noqa: BLE001 - every failure is reported below, none is hidden
                    errors[v] = f"{type(err).__name__}: {err}"
                    LOG.error("export %s/%s failed: %s", backend, v, errors[v])
    if errors:
        raise ExportError(
            f"{backend}: {len(errors)} of {len(names)} exports failed: "
            + "; ".join(f"{v}: {why}" for v, why in errors.items())
        )
    return results
