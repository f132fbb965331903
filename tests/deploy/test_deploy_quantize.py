from __future__ import annotations

import pytest
import torch

from sam3_edge.deploy.quantize import (
    build_variant,
    load_programs,
    matches_layer,
    save_programs,
    weight_quantization_report,
)


def test_matches_layer_is_a_dotted_subpath():
    assert matches_layer("student.mask_decoder.head", "mask_decoder")
    assert matches_layer("student.mask_decoder.head", "mask_decoder.head")
    assert not matches_layer("student.mask_decoder2.head", "mask_decoder")
    assert not matches_layer("student.mask_decoder.head", "decoder")


@pytest.mark.parametrize(
    ("variant", "expect_quantized"), [("fp32", False), ("fp16", False), ("int8", True), ("8da4w", True)]
)
def test_variants_keep_the_float_io_and_quantize_weights(standin, standin_variants, variant, expect_quantized):
    programs, calibration = standin
    eps, report = standin_variants[variant]
    assert set(eps) == {"text", "image", "video_step"}
    counts = {name: weight_quantization_report(ep) for name, ep in eps.items()}
    quantized = sum(c["quantized_weight_ops"] for c in counts.values())
    assert (quantized > 0) == expect_quantized, counts
    if variant == "int8":  # convolutions shrink too (PT2E per-channel), and the token embedding (weight-only)
        assert report["embeddings_quantized"] == 1  # the text program's token table
        image_ops = [str(n.target) for n in eps["image"].graph.nodes if n.op == "call_function"]
        assert any("dequantize_per_channel" in op for op in image_ops)
    args = calibration["image"][0]
    ref = programs["image"][0](*args)
    got = eps["image"].module()(*args)
    for r, g in zip(ref, got, strict=True):
        assert g.dtype == torch.float32 and g.shape == r.shape
    tol = {"fp32": 1e-5, "fp16": 2e-2, "int8": 0.5, "8da4w": 0.5}[variant]
    assert (ref[0] - got[0]).abs().max().item() < tol


@pytest.mark.slow
def test_sensitive_layers_stay_float(standin):
    programs, calibration = standin
    eps, _ = build_variant("int8", programs, calibration, sensitive=("trunk",), embedding_bits=0)
    convs = [n for n in eps["image"].graph.nodes if n.op == "call_function" and "conv" in str(n.target)]
    assert convs and all("dequant" not in str(getattr(c.args[1], "target", "")) for c in convs)
    ops = [str(n.target) for n in eps["image"].graph.nodes if n.op == "call_function"]
    assert any("dequantize_per_channel" in op for op in ops)  # the linears are still quantized
    _, rep = build_variant("8da4w", programs, calibration, sensitive=("head",), group_size=32)
    assert rep["linears_kept_float"]["image:head"] == "sensitive"


def test_unknown_sensitive_layer_is_an_error(standin):
    programs, calibration = standin
    text_only = {"text": programs["text"]}
    with pytest.raises(ValueError, match=r"sensitive_layers \['no_such_layer'\]"):
        build_variant("8da4w", text_only, calibration, sensitive=("no_such_layer",))


def test_int8_without_calibration_is_an_error(standin):
    programs, _ = standin
    with pytest.raises(ValueError, match="no calibration inputs for program 'text'"):
        build_variant("int8", programs, {})


def test_programs_round_trip_through_pt2(tmp_path, standin, standin_variants):
    _, calibration = standin
    eps, _ = standin_variants["8da4w"]
    save_programs(tmp_path / "q", eps, {"status": "ok", "variant": "8da4w"})
    loaded, meta = load_programs(tmp_path / "q")
    assert meta["programs"] == ["image", "text", "video_step"]
    args = calibration["image"][1]
    for a, b in zip(eps["image"].module()(*args), loaded["image"].module()(*args), strict=True):
        torch.testing.assert_close(a, b)
    (tmp_path / "q" / "text.pt2").unlink()
    with pytest.raises(ValueError, match="text.pt2: program file listed"):
        load_programs(tmp_path / "q")
