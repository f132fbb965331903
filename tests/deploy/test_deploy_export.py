from __future__ import annotations

import pytest
import torch

from sam3_edge.deploy.config import ExportParams
from sam3_edge.deploy.inputs import load_inputs, save_inputs
from sam3_edge.deploy.lowering import merge_delegation
from sam3_edge.deploy.pipeline import (
    INPUTS_NAME,
    ExportError,
    SizeCheckError,
    _size_check,
    export_backend,
    run_export,
)
from sam3_edge.deploy.quantize import save_programs
from sam3_edge.deploy.report import stage_metrics
from sam3_edge.deploy.runtime import PteBundle, PteProgram
from sam3_edge.utils import read_json, write_json

PARAMS = ExportParams(parity_samples=2, min_parity_mask_iou=0.5)


def _quantized_dir(tmp_path, variant, standin, standin_variants=None):
    programs, calibration = standin
    folder = tmp_path / "quantized" / variant
    if standin_variants is None:  # cheap: plain export, enough where the lowering is not reached
        from sam3_edge.deploy.quantize import export_fp32

        eps, recipe = export_fp32(programs), {"recipe": "fp32"}
    else:
        eps, recipe = standin_variants[variant]
    folder.mkdir(parents=True)
    save_inputs(folder / INPUTS_NAME, calibration)
    save_programs(
        folder, eps, {"status": "ok", "model": "standin", "variant": variant, "model_config": {}, "recipe": recipe}
    )
    return folder


@pytest.fixture(scope="module")
def exported(tmp_path_factory, standin, standin_variants):
    """variant -> xnnpack export folder of the stand-in, through ``export_backend`` (the export@<backend> stage):
    fp32 and the variants lower side by side, each variant's size check waiting for the fp32 files."""
    root = tmp_path_factory.mktemp("export")
    variants = ("fp16", "int8", "8da4w")
    for variant in ("fp32", *variants):
        _quantized_dir(root, variant, standin, standin_variants)
    # the stand-in is tiny, so quantization overhead (scales, q/dq) limits how far it shrinks
    params = ExportParams(max_size_ratio={"fp16": 0.9, "int8": 0.9, "8da4w": 0.9}, parity_samples=2, jobs=2)
    metas = export_backend(
        root / "quantized", root / "xnnpack", root / "metrics", backend="xnnpack", variants=variants, params=params
    )
    assert sorted(metas) == sorted(("fp32", *variants))
    for variant in variants:  # sized against the fp32 files written in the same run
        assert metas[variant]["size"]["reference"] == str(root / "xnnpack" / "fp32")
        assert read_json(root / "metrics" / f"{variant}.json") == stage_metrics(metas[variant])
    return {variant: root / "xnnpack" / variant for variant in metas}


@pytest.mark.slow
def test_export_backend_reports_every_failed_variant_and_keeps_the_rest(tmp_path, standin):
    _quantized_dir(tmp_path, "fp32", standin)
    (tmp_path / "quantized" / "int8").mkdir()  # no programs: this variant's export raises
    params = ExportParams(parity_samples=1, jobs=2)
    with pytest.raises(ExportError, match=r"1 of 2 exports failed: int8: .*quantized/int8"):
        export_backend(
            tmp_path / "quantized",
            tmp_path / "pte",
            tmp_path / "metrics",
            backend="xnnpack",
            variants=["int8"],
            params=params,
        )
    assert read_json(tmp_path / "pte" / "fp32" / "meta.json")["status"] == "ok"  # the other export is kept
    assert read_json(tmp_path / "metrics" / "fp32.json")["status"] == "ok"
    assert not (tmp_path / "metrics" / "int8.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("variant", "max_err", "min_iou"),
    [("fp32", 1e-4, 0.99), ("fp16", 5e-2, 0.9), ("int8", 1.0, 0.8), ("8da4w", 1.0, 0.8)],
)
def test_xnnpack_round_trip_with_parity(exported, standin, variant, max_err, min_iou):
    programs, calibration = standin
    meta = read_json(exported[variant] / "meta.json")
    assert meta["status"] == "ok" and meta["executed"] is True
    assert 0.5 < meta["delegated_fraction"] <= 1.0
    # the split an app uses: text.pte encodes the phrase; image.pte takes its embedding
    folder = exported[variant]
    assert PteProgram(folder / "text.pte").method_names == {"text"}
    assert PteProgram(folder / "image.pte").method_names == {"image", "video_step"}
    sizes = {name: (folder / name).stat().st_size for name in ("text.pte", "image.pte")}
    assert meta["file_bytes"] == sum(sizes.values())
    assert {name: info["bytes"] for name, info in meta["files"].items()} == sizes
    assert set(meta["delegation"]["methods"]) == {"text", "image", "video_step"}
    assert meta["min_method_delegated_fraction"] <= meta["delegated_fraction"]
    assert all(m["planned_buffer_mb"] > 0 for m in meta["delegation"]["methods"].values())
    # lowering parity (pte vs the same variant's eager program), recorded by the export
    assert meta["parity"]["image"]["mask_iou_min"] >= min_iou
    # and parity with the float eager model, through executorch.runtime here, each file on its own
    pte = PteBundle(folder)
    assert pte.method_names == {"text", "image", "video_step"}
    for (tokens,), args in zip(calibration["text"][:2], calibration["image"][:2], strict=True):
        emb, valid = pte.run("text", (tokens,))
        assert (emb - args[1]).abs().max().item() < max_err and torch.equal(valid, args[2])
        ref = programs["image"][0](*args)
        got = pte.run("image", args)
        assert (ref[0] - got[0]).abs().max().item() < max_err
        union = ((ref[0] > 0) | (got[0] > 0)).sum().item()
        assert union == 0 or ((ref[0] > 0) & (got[0] > 0)).sum().item() / union >= min_iou
    if variant != "fp32":
        assert meta["size"]["ratio_to_fp32"] < 1.0, "a quantized/half variant must be smaller than fp32"
    metrics = stage_metrics(meta)
    assert metrics["status"] == "ok" and isinstance(metrics["non_delegated_ops"], dict)
    assert "model_config" not in metrics


def test_size_check_fires_for_a_variant_larger_than_fp32(tmp_path):
    ref = tmp_path / "fp32"
    files = {"text.pte": {"bytes": 400}, "image.pte": {"bytes": 600}}
    write_json(ref / "meta.json", {"status": "ok", "file_bytes": 1000, "files": files})
    check = _size_check({"text.pte": 200, "image.pte": 300}, "int8", "xnnpack", PARAMS, ref)
    assert check["ratio_to_fp32"] == 0.5 and check["file_ratios"] == {"text.pte": 0.5, "image.pte": 0.5}
    with pytest.raises(SizeCheckError, match=r"xnnpack/int8: text\.pte is .* larger than the fp32 text\.pte"):
        _size_check({"text.pte": 800, "image.pte": 1200}, "int8", "xnnpack", PARAMS, ref)
    legacy = tmp_path / "fp32_one_file"  # a reference without per-file sizes: the total alone is checked
    write_json(legacy / "meta.json", {"status": "ok", "file_bytes": 1000})
    with pytest.raises(SizeCheckError, match=r"xnnpack/int8: the \.pte files are .* = 2\.00 x the fp32"):
        _size_check({"text.pte": 800, "image.pte": 1200}, "int8", "xnnpack", PARAMS, legacy)
    with pytest.raises(SizeCheckError, match="over the limit 0.75"):  # smaller than fp32 but over its ratio
        _size_check({"text.pte": 300, "image.pte": 600}, "int8", "xnnpack", PARAMS, ref)
    # each file against its own source: a larger text.pte fails even when the total shrinks
    with pytest.raises(SizeCheckError, match="text.pte is .* larger than the fp32 text.pte"):
        _size_check({"text.pte": 500, "image.pte": 100}, "int8", "xnnpack", PARAMS, ref)


def test_merge_delegation_sums_files_and_keeps_the_lowest_method():
    def report(method, n_in, outside):
        n_out = sum(outside.values())
        entry = {"delegated_ops": n_in, "non_delegated_ops": n_out, "delegated_fraction": n_in / (n_in + n_out)}
        return {**entry, "non_delegated": outside, "methods": {method: {**entry, "non_delegated": outside}}}

    merged = merge_delegation([report("text", 90, {"aten.embedding.default": 10}), report("image", 99, {"x": 1})])
    assert merged["delegated_ops"] == 189 and merged["non_delegated_ops"] == 11
    assert merged["delegated_fraction"] == pytest.approx(189 / 200)
    assert merged["min_method_delegated_fraction"] == pytest.approx(0.9)
    assert merged["non_delegated"] == {"aten.embedding.default": 10, "x": 1}
    with pytest.raises(ValueError, match="lowered twice"):
        merge_delegation([report("text", 1, {}), report("text", 1, {})])


@pytest.mark.slow
def test_run_export_fails_when_the_quantized_file_outgrows_its_source(tmp_path, standin, standin_variants):
    q = _quantized_dir(tmp_path, "8da4w", standin, standin_variants)
    write_json(tmp_path / "fp32" / "meta.json", {"status": "ok", "file_bytes": 1024})  # a (fake) tiny fp32 .pte
    with pytest.raises(SizeCheckError, match="a quantized file must shrink"):
        run_export(q, tmp_path / "out", backend="xnnpack", params=PARAMS, reference_dir=tmp_path / "fp32")
    assert not list((tmp_path / "out").glob("*.pte"))


@pytest.mark.parametrize("sdk", [None, "/definitely/not/here"])
def test_missing_qnn_sdk_is_a_recorded_skip(tmp_path, monkeypatch, standin, sdk):
    if sdk is None:
        monkeypatch.delenv("QNN_SDK_ROOT", raising=False)
    else:
        monkeypatch.setenv("QNN_SDK_ROOT", sdk)
    q = _quantized_dir(tmp_path, "int8", standin)
    meta = run_export(q, tmp_path / "qnn", backend="qnn", params=PARAMS, reference_dir=tmp_path / "none")
    assert meta["status"] == "skipped" and "QNN_SDK_ROOT" in meta["reason"]
    assert read_json(tmp_path / "qnn" / "meta.json")["status"] == "skipped"
    assert not list((tmp_path / "qnn").glob("*.pte"))


def test_skipped_source_variant_propagates(tmp_path):
    write_json(
        tmp_path / "q" / "meta.json",
        {"status": "skipped", "reason": "no QAT checkpoint", "model": "s", "variant": "qat"},
    )
    meta = run_export(tmp_path / "q", tmp_path / "out", backend="xnnpack", params=PARAMS)
    assert meta["status"] == "skipped" and "no QAT checkpoint" in meta["reason"]


@pytest.mark.slow
def test_coreml_lowers_on_linux_and_records_not_executed(tmp_path, standin):
    q = _quantized_dir(tmp_path, "fp32", standin)
    meta = run_export(q, tmp_path / "coreml", backend="coreml", params=PARAMS)
    assert meta["status"] == "ok", meta.get("reason")
    assert meta["executed"] is False and "Apple" in meta["not_executed_reason"]
    sizes = [(tmp_path / "coreml" / name).stat().st_size for name in ("text.pte", "image.pte")]
    assert sum(sizes) == meta["file_bytes"] and min(sizes) > 0
    assert meta["delegation"]["methods"]["image"]["delegated_by_backend"].get("CoreMLBackend", 0) > 0


def test_inputs_round_trip(tmp_path, standin):
    _, calibration = standin
    save_inputs(tmp_path / "i.safetensors", calibration)
    loaded = load_inputs(tmp_path / "i.safetensors")
    assert set(loaded) == set(calibration)
    for a, b in zip(loaded["video_step"][1], calibration["video_step"][1], strict=True):
        assert torch.equal(a, b)


@pytest.mark.slow
def test_text_program_int4_recipe_lowers_and_runs(tmp_path, standin):
    """quantize.text_recipe 8da4w: the int8 variant's text program gets int4 grouped weights and an int4 embedding
    table; it lowers on XNNPACK, runs, stays close to the float text program and is smaller than the int8 one."""
    from sam3_edge.deploy.quantize import build_variant

    programs, calibration = standin
    variants = {
        "fp32": build_variant("fp32", programs, calibration),
        "int8": build_variant("int8", programs, calibration),
        "int8_text4": build_variant(
            "int8", programs, calibration, text_recipe="8da4w", text_group_size=32, text_embedding_bits=4
        ),
    }
    recipe = variants["int8_text4"][1]
    assert recipe["programs"] == {
        "text": "8da4w_torchao (group 32, embedding int4)",
        "image": "int8_pt2e_xnnpack",
        "video_step": "int8_pt2e_xnnpack",
    }
    assert recipe["text"]["embeddings_quantized"] == 1 and recipe["text"]["linears_quantized"] == 1
    sizes = {}
    for name, (eps, rep) in variants.items():
        folder = tmp_path / "q" / name
        folder.mkdir(parents=True)
        save_inputs(folder / INPUTS_NAME, calibration)
        save_programs(
            folder,
            eps,
            {"status": "ok", "model": "standin", "variant": name.split("_")[0], "model_config": {}, "recipe": rep},
        )
        params = ExportParams(max_size_ratio={"int8": 0.9}, parity_samples=2)
        ref = None if name == "fp32" else tmp_path / "x" / "fp32"
        meta = run_export(folder, tmp_path / "x" / name, backend="xnnpack", params=params, reference_dir=ref)
        sizes[name] = meta["files"]["text.pte"]["bytes"]
    assert sizes["int8_text4"] < sizes["int8"] < sizes["fp32"]
    pte = PteBundle(tmp_path / "x" / "int8_text4")
    for (tokens,), args in zip(calibration["text"], calibration["image"], strict=True):
        emb, _ = pte.run("text", (tokens,))
        assert torch.nn.functional.cosine_similarity(emb.flatten(), args[1].flatten(), dim=0) > 0.98


def test_8da4w_counts_only_the_linears_a_program_runs():
    """The text program wraps the whole student; its count names the text tower's linears, not every linear."""
    from torch import nn

    from sam3_edge.deploy.quantize import quantize_8da4w

    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.unused = nn.Linear(32, 8), nn.Linear(32, 8)

        def forward(self, x):
            return self.used(x)

    eps, report = quantize_8da4w({"text": (Wrapper(), (torch.randn(1, 32),))}, group_size=32, embedding_bits=0)
    assert report["linears_quantized"] == 1 and report["linears_kept_float"] == {}
    assert set(eps) == {"text"}


@pytest.mark.slow
@pytest.mark.parametrize(("variant", "target"), [("coreml_int8", "iOS17"), ("coreml_w4", "iOS18")])
def test_coreml_recipes_lower_every_method_on_coreml(tmp_path, standin, variant, target):
    """Core ML's own recipes (its PT2E quantizer; int4 weight-only) lower whole on Core ML, at the deployment
    target the recipe needs; the XNNPACK recipes failed there (int4 embedding, dynamic int8 activations)."""
    from sam3_edge.deploy.quantize import build_variant

    programs, calibration = standin
    eps, recipe = build_variant(variant, programs, calibration, group_size=32)
    assert recipe["coreml_min_target"] == target and recipe["embeddings_quantized"] >= 1
    ref = run_export(_quantized_dir(tmp_path, "fp32", standin), tmp_path / "fp32", backend="coreml", params=PARAMS)
    folder = tmp_path / "quantized" / variant
    folder.mkdir(parents=True)
    save_inputs(folder / INPUTS_NAME, calibration)
    save_programs(
        folder, eps, {"status": "ok", "model": "standin", "variant": variant, "model_config": {}, "recipe": recipe}
    )
    params = ExportParams(max_size_ratio={variant: 1.0}, coreml_deployment_target="iOS17")
    meta = run_export(folder, tmp_path / variant, backend="coreml", params=params, reference_dir=tmp_path / "fp32")
    assert ref["status"] == "ok" and meta["status"] == "ok", meta.get("reason")
    assert meta["coreml_deployment_target"] == target and meta["executed"] is False
    assert meta["delegated_fraction"] == 1.0 and meta["file_bytes"] < ref["file_bytes"]


@pytest.mark.slow
def test_coreml_int8_leaves_arange_positions_in_float(tmp_path):
    """coremltools builds ``arange`` as int32: a quantize node on it failed the conversion ("scale has dtype fp32
    whereas input has dtype int32"), as the student's sine positions did."""
    from torch import nn

    from sam3_edge.deploy.lowering import lower_programs
    from sam3_edge.deploy.quantize import quantize_coreml_int8

    class Positions(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(16, 16)

        def forward(self, x):
            pos = torch.arange(x.shape[1], dtype=torch.float32)[None, :, None] * 0.1
            return self.proj(x + pos)

    x = torch.randn(1, 8, 16)
    eps, _ = quantize_coreml_int8({"image": (Positions().eval(), (x,))}, {"image": [(x,), (x * 2,)]})
    low = lower_programs(eps, "coreml", variant="coreml_int8")
    assert low.delegation["delegated_fraction"] == 1.0
