"""Smoke test of the deploy stages on the real `tiny` student: quantize (fp32, 8da4w, qat skip) -> export
(xnnpack fp32, qnn skip) -> predictor -> benchmark, through the stage scripts, on a tiny synthetic dataset.
Slow: lowering the student takes minutes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from sam3_edge.config import from_dict
    from sam3_edge.data.config import DataParams
    from sam3_edge.data.prepare import prepare_data

    root = tmp_path_factory.mktemp("deploy_data")
    params = from_dict(
        DataParams,
        {
            "source": "synthetic",
            "synthetic": {
                "num_train_images": 2,
                "num_val_images": 4,
                "image_size": 96,
                "num_train_videos": 0,
                "num_val_videos": 1,
                "video_frames": 5,
                "video_size": 64,
                "small_size": [10, 16],
                "large_size": [22, 30],
            },
        },
    )
    prepare_data(params, synthetic_dir=root / "synthetic", index_dir=root / "index", extract_dir=root / "extract")
    return root / "index"


def _stage(name: str, params: Path, *args: str) -> None:
    env = {**os.environ, "SAM3_EDGE_QUIET": "1", "SAM3_EDGE_LOG": "WARNING"}
    cmd = [sys.executable, str(ROOT / "stages" / f"{name}.py"), "--params", str(params), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.slow
def test_deploy_stages_end_to_end(tmp_path, tiny_data, monkeypatch):
    from sam3_edge.models import StudentPredictor, build_student

    params = tmp_path / "params.yaml"
    params.write_text(
        "quantize: {real_size_variant: tiny, calibration_samples: 2, variants: [fp32, 8da4w], real_variants: [fp32]}\n"
        "export: {backends: [xnnpack, qnn], variants: [qat], parity_samples: 1, max_size_ratio: {8da4w: 0.9}}\n"
        "benchmark: {warmup: 1, iters: 2, video_frames: 2, parity_samples: 1}\n"
    )
    q, pte, m = tmp_path / "quantized" / "real", tmp_path / "pte" / "real", tmp_path / "metrics"
    val = str(tiny_data / "concepts_val.json")
    real = ["--model", "real", "--real-size", "--val-index", val]
    for v in ("fp32", "8da4w"):
        _stage(
            "quantize", params, *real, "--variant", v, "--out", str(q / v), "--metrics", str(m / f"quantize_{v}.json")
        )
    _stage(
        "quantize",
        params,
        *real,
        "--variant",
        "qat",
        "--qat-checkpoint",
        str(tmp_path / "missing.safetensors"),
        "--out",
        str(q / "qat"),
        "--metrics",
        str(m / "quantize_qat.json"),
    )
    assert json.loads((m / "quantize_qat.json").read_text())["status"] == "skipped"
    assert json.loads((m / "quantize_8da4w.json").read_text())["weights"]["image"]["quantized_weight_ops"] > 0
    # export@<backend>: fp32 and every export.variants entry (here qat, whose source is a recorded skip)
    _stage(
        "export",
        params,
        "--backend",
        "xnnpack",
        "--quantized-root",
        str(q),
        "--out-root",
        str(pte / "xnnpack"),
        "--metrics-dir",
        str(m / "xnnpack"),
    )
    assert json.loads((m / "xnnpack" / "qat.json").read_text())["status"] == "skipped"
    # Lowering a quantized variant of the student took ~250 s here, as long as everything else in this test; the
    # quantized XNNPACK exports and their size checks are covered on the stand-in (test_deploy_export.py) and
    # in the embedded `dvc repro`. Here 8da4w goes through the QNN export, which records its skip.
    monkeypatch.delenv("QNN_SDK_ROOT", raising=False)
    _stage(
        "export",
        params,
        "--backend",
        "qnn",
        "--quantized",
        str(q / "8da4w"),
        "--reference",
        str(pte / "xnnpack" / "fp32"),
        "--out",
        str(pte / "qnn_8da4w"),
        "--metrics",
        str(m / "qnn_8da4w.json"),
    )
    fp32 = json.loads((m / "xnnpack" / "fp32.json").read_text())
    assert fp32["status"] == "ok" and fp32["file_bytes"] > 0
    files = {name: (pte / "xnnpack" / "fp32" / name).stat().st_size for name in ("text.pte", "image.pte")}
    assert fp32["file_bytes"] == sum(files.values()) and not (pte / "xnnpack" / "fp32" / "model.pte").exists()
    # the image program does not carry the text tower: a row of the token embedding (run on the portable kernels,
    # so stored as a plain fp32 constant) is in text.pte and not in image.pte
    token_embedding = build_student("tiny", seed=0).text_encoder.tower.token_embedding.weight
    row = token_embedding[1000].detach().numpy().tobytes()
    assert row in (pte / "xnnpack" / "fp32" / "text.pte").read_bytes()
    assert row not in (pte / "xnnpack" / "fp32" / "image.pte").read_bytes()
    assert fp32["parity"]["image"]["mask_logit_cosine_min"] > 0.999 and fp32["parity"]["image"]["max_abs_err"] < 1e-3
    assert fp32["parity"]["image"].get("mask_iou_min", 1.0) > 0.99  # where the eager mask has a foreground
    assert json.loads((m / "qnn_8da4w.json").read_text())["status"] == "skipped"

    # the .pte scores like the eager student through the shared Predictor contract
    from sam3_edge.deploy.runtime import PtePredictor
    from sam3_edge.types import Prompt

    predictor = PtePredictor(pte / "xnnpack" / "fp32")
    eager = StudentPredictor(build_student("tiny", seed=0).eval().reparameterize())
    images = torch.rand(2, 3, 96, 96)
    prompts = [Prompt(kind="text", text="red circle"), Prompt(kind="box", box=(10.0, 10.0, 50.0, 60.0))]
    got, ref = predictor.predict(images, prompts), eager.predict(images, prompts)
    assert got.mask_logits.shape == ref.mask_logits.shape == (2, 16, 56, 56)
    assert (got.mask_logits - ref.mask_logits).abs().max() < 1e-3
    assert (got.scores - ref.scores).abs().max() < 1e-4
    # and tracks like it: video_step with the memory carried frame to frame, later frames on follow_prompt
    frames = torch.rand(3, 3, 96, 96)
    for prompt in prompts:
        got_v, ref_v = predictor.predict_video(frames, prompt), eager.predict_video(frames, prompt)
        assert len(got_v) == len(ref_v) == 3
        for g, r in zip(got_v, ref_v, strict=True):
            for name in ("mask_logits", "boxes", "scores", "presence", "iou"):
                assert (getattr(g, name) - getattr(r, name)).abs().max() < 1e-3, name
    # the memory matters on the later frames (else this would not test the carried state)
    assert (
        ref_v[2].mask_logits - eager.predict(frames[2:], [Prompt(kind="text", text=" ")]).mask_logits
    ).abs().max() > 1e-3

    _stage(
        "benchmark",
        params,
        "--checkpoint",
        str(tmp_path / "none.safetensors"),
        "--quantized",
        str(tmp_path / "quantized"),
        "--pte",
        str(tmp_path / "pte"),
        "--video-index",
        str(tiny_data / "videos_val.json"),
        "--metrics",
        str(m / "benchmark.json"),
    )
    bench = json.loads((m / "benchmark.json").read_text())
    assert bench["student"]["status"] == "skipped"
    real = bench["real"]
    assert real["eager"]["image"]["p50_ms"] > 0 and real["eager"]["peak_rss_mb"] > 0
    pte = real["xnnpack_fp32"]
    assert pte["parity"]["mask_iou_mean"] > 0.99 and pte["parity"]["video_mask_iou_mean"] > 0.99
    assert pte["video"]["fps"] > 0 and real["qnn_8da4w"]["status"] == "skipped"
    # text and image programs measured in processes of their own; memory = the runtime's increment over the
    # process before loading, well under the whole process (which holds torch and the interpreter)
    assert pte["text"]["p50_ms"] > 0 and pte["image"]["p50_ms"] > 0
    assert 0 < pte["model_rss_mb"] < pte["peak_rss_mb"] - pte["rss_baseline_mb"] + 1e-6
    assert pte["rss_baseline_mb"] > 100 and pte["model_rss_mb"] < pte["rss_baseline_mb"]
    assert 0 <= pte["text_model_rss_mb"] < pte["text_peak_rss_mb"]
    assert pte["image_pte_mb"] + pte["text_pte_mb"] == pytest.approx(pte["pte_mb"])
    summary = bench["summary"]["fp32"]["xnnpack"]
    assert summary["size_mb"] == pte["pte_mb"] and summary["peak_memory_mb"] == pte["model_rss_mb"]
    assert summary["delegated_fraction"] == pte["min_method_delegated_fraction"] <= pte["delegated_fraction"]
    assert summary["eager_latency_ms"] == real["eager"]["image"]["p50_ms"]
