"""Quantization recipes: a student's export programs -> one ``torch.export`` program per method, per variant.

A *program set* is what :meth:`sam3_edge.models.Student.export_programs` returns: ``{name: (module, example
inputs)}`` with pure tensor I/O and static shapes (``text``, ``image``, ``video_step``). Every recipe returns
``{name: ExportedProgram}`` with the same inputs and outputs as the float programs (fp32 tensors in, fp32 out:
the fp16 variant casts inside the program), so a runner treats every variant alike.

* ``fp32``: plain ``torch.export``.
* ``fp16``: weights and compute in half precision.
* ``int8``: PT2E with the XNNPACK quantizer (symmetric, per-channel weights, static activations calibrated on
  real inputs); token embeddings weight-only int8/int4 (torchao) since the XNNPACK quantizer leaves them float.
* ``8da4w``: torchao ``Int8DynamicActivationIntxWeightConfig(int4, PerGroup)`` on ``nn.Linear`` layers.
Layers named in ``sensitive`` stay in float for the integer recipes; a name matching no layer is an error.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import operator
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.export import ExportedProgram

from sam3_edge.utils import atomic_path, read_json, write_json

LOG = logging.getLogger(__name__)

ProgramSet = dict[str, tuple[nn.Module, tuple[torch.Tensor, ...]]]
Calibration = dict[str, list[tuple[torch.Tensor, ...]]]  # program name -> input tuples for the observers
PROGRAMS_META = "meta.json"
# Only vocabulary-sized tables are worth quantizing; small ones (prompt label/corner embeddings) stay float, also
# because modules may read their ``.weight`` directly, which a quantized tensor subclass does not support.
MIN_EMBEDDING_ROWS = 1024


def matches_layer(fqn: str, name: str) -> bool:
    """``name`` is a dotted sub-path of the module path ``fqn`` (``mask_decoder`` matches ``student.mask_decoder.x``)."""
    return f".{name}." in f".{fqn}."


def _sensitive(fqn: str, sensitive: Sequence[str], hits: set[str]) -> bool:
    found = [s for s in sensitive if matches_layer(fqn, s)]
    hits.update(found)
    return bool(found)


class HalfIO(nn.Module):
    """Runs ``module`` in float16 while keeping fp32 inputs and outputs (integer tensors pass unchanged)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module.half()

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        cast = tuple(x.half() if x.is_floating_point() else x for x in inputs)
        out = self.module(*cast)
        out = out if isinstance(out, tuple) else (out,)
        return tuple(o.float() if o.is_floating_point() else o for o in out)


def _export(module: nn.Module, example: tuple[torch.Tensor, ...]) -> ExportedProgram:
    if not isinstance(module, torch.fx.GraphModule):  # PT2E graph modules refuse .eval(); they are in eval already
        module.eval()
    from executorch.exir.passes.remove_unused_parameters_pass import remove_unused_parameters_pass

    with torch.no_grad():
        ep = torch.export.export(module, example, strict=False)
    # every program wraps the whole student: drop the weights this method never reads (text.pt2 has no trunk)
    return remove_unused_parameters_pass(ep)


def _quantize_embeddings(module: nn.Module, bits: int, sensitive: Sequence[str], hits: set[str]) -> int:
    """Weight-only quantize ``nn.Embedding`` tables in place (per row); returns how many were quantized."""
    if bits == 0:
        return 0
    from torchao.quantization import quantize_
    from torchao.quantization.granularity import PerAxis
    from torchao.quantization.quant_api import IntxWeightOnlyConfig

    chosen = [
        f
        for f, m in module.named_modules()
        if isinstance(m, nn.Embedding) and m.num_embeddings >= MIN_EMBEDDING_ROWS and not _sensitive(f, sensitive, hits)
    ]
    if chosen:
        config = IntxWeightOnlyConfig(weight_dtype=getattr(torch, f"int{bits}"), granularity=PerAxis(0))
        quantize_(module, config, filter_fn=lambda m, fqn: isinstance(m, nn.Embedding) and fqn in chosen)
    return len(chosen)


def _is_float(node: torch.fx.Node) -> bool:
    val = node.meta.get("val")
    return not isinstance(val, torch.Tensor) or val.is_floating_point()


def weight_quantization_report(ep: ExportedProgram) -> dict[str, int]:
    """Count conv/linear/embedding ops whose weight comes out of a dequantize op (quantized) vs plain float."""
    dequant = ("dequantize_per_channel", "dequantize_per_tensor", "dequantize_affine", "dequantize_per_channel_group")
    out = {"quantized_weight_ops": 0, "float_weight_ops": 0}
    for node in ep.graph.nodes:
        if node.op != "call_function":
            continue
        name = str(node.target)
        if not any(k in name for k in ("conv", "linear", "embedding")) or "dequant" in name:
            continue
        weight = node.args[0] if "embedding" in name else (node.args[1] if len(node.args) > 1 else None)
        if not isinstance(weight, torch.fx.Node):
            continue
        is_q = weight.op == "call_function" and any(k in str(weight.target) for k in dequant)
        out["quantized_weight_ops" if is_q else "float_weight_ops"] += 1
    return out


def export_fp32(programs: ProgramSet) -> dict[str, ExportedProgram]:
    return {name: _export(module, example) for name, (module, example) in programs.items()}


def export_fp16(programs: ProgramSet) -> dict[str, ExportedProgram]:
    return {name: _export(HalfIO(copy.deepcopy(module)), example) for name, (module, example) in programs.items()}


def quantize_int8(
    programs: ProgramSet,
    calibration: Calibration,
    *,
    per_channel: bool = True,
    sensitive: Sequence[str] = (),
    embedding_bits: int = 8,
    hits: set[str] | None = None,
) -> tuple[dict[str, ExportedProgram], dict[str, Any]]:
    """PT2E static int8 (XNNPACK quantizer) calibrated on ``calibration[name]`` input tuples.

    ``hits`` (given by a caller that quantizes other programs of the same student with another recipe) collects
    the ``sensitive`` names matched; the caller then checks them over all programs."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    class _FloatOnly(XNNPACKQuantizer):
        """Drops annotations on non-float tensors (a ``cat`` of bool masks would get an int8 observer)."""

        def transform_for_annotation(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
            # the parent turns scalar args of add/mul into float tensors; ``labels + 1`` on int64 must stay int
            binary = (torch.ops.aten.add.Tensor, torch.ops.aten.mul.Tensor)
            hidden = {n: n.target for n in model.graph.nodes if n.target in binary and not _is_float(n)}
            for n in hidden:
                n.target = operator.add
            model = super().transform_for_annotation(model)
            for n, target in hidden.items():
                n.target = target
            model.recompile()
            return model

        def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
            model = super().annotate(model)
            for node in model.graph.nodes:
                ann = node.meta.get("quantization_annotation")
                if ann is None:
                    continue
                if not _is_float(node):
                    ann.output_qspec = None
                for inp in [i for i in ann.input_qspec_map if not _is_float(i)]:
                    del ann.input_qspec_map[inp]
            return model

    own_hits = hits is None
    hits = set() if hits is None else hits

    def keep_quantized(node: torch.fx.Node) -> bool:
        stack = node.meta.get("nn_module_stack") or {}
        return not any(_sensitive(path, sensitive, hits) for path, _ in stack.values())

    eps, report = {}, {"embeddings_quantized": 0, "calibration_batches": {}}
    for name, (module, example) in programs.items():
        batches = calibration.get(name) or []
        if not batches:
            raise ValueError(f"int8: no calibration inputs for program {name!r}")
        module = copy.deepcopy(module).eval()
        report["embeddings_quantized"] += _quantize_embeddings(module, embedding_bits, sensitive, hits)
        quantizer = _FloatOnly().set_global(get_symmetric_quantization_config(is_per_channel=per_channel))
        quantizer.set_filter_function(keep_quantized)
        with torch.no_grad():
            graph = torch.export.export(module, example, strict=False).module()
            prepared = prepare_pt2e(graph, quantizer)
            for inputs in batches:
                prepared(*inputs)
            converted = convert_pt2e(prepared)
        eps[name] = _export(converted, example)
        report["calibration_batches"][name] = len(batches)
    if own_hits:
        _check_sensitive(sensitive, hits)
    return eps, report


def called_modules(module: nn.Module, example: tuple, kind: type[nn.Module]) -> set[str]:
    """Names of the ``kind`` sub-modules one forward of ``module`` on ``example`` calls: what its exported program
    holds (a program wrapping the whole student, as ``text`` does, exports only what its forward runs)."""
    called: set[str] = set()
    hooks = [
        m.register_forward_hook(lambda *_, fqn=fqn: called.add(fqn))
        for fqn, m in module.named_modules()
        if isinstance(m, kind)
    ]
    try:
        with torch.no_grad():
            module(*example)
    finally:
        for h in hooks:
            h.remove()
    return called


def quantize_8da4w(
    programs: ProgramSet,
    *,
    group_size: int = 32,
    sensitive: Sequence[str] = (),
    embedding_bits: int = 8,
    hits: set[str] | None = None,
) -> tuple[dict[str, ExportedProgram], dict[str, Any]]:
    """torchao int8 dynamic activation + int4 weight for ``nn.Linear`` (:func:`_quantize_linears`)."""
    from torchao.quantization.granularity import PerAxis, PerGroup
    from torchao.quantization.quant_api import Int8DynamicActivationIntxWeightConfig

    config = Int8DynamicActivationIntxWeightConfig(
        weight_dtype=torch.int4, weight_granularity=PerGroup(group_size) if group_size else PerAxis(0)
    )
    return _quantize_linears(programs, config, group_size, sensitive, embedding_bits, hits)


def _quantize_linears(
    programs: ProgramSet,
    config: Any,
    group_size: int,
    sensitive: Sequence[str],
    embedding_bits: int,
    hits: set[str] | None,
) -> tuple[dict[str, ExportedProgram], dict[str, Any]]:
    """torchao ``config`` on the ``nn.Linear`` layers each program's forward calls (+ ``embedding_bits``
    embeddings); sensitive layers, ``nn.MultiheadAttention``'s own projection and shapes not divisible by the group
    stay float, each listed with its reason. ``hits``: as :func:`quantize_int8`."""
    from torchao.quantization import quantize_

    own_hits = hits is None
    hits = set() if hits is None else hits
    eps, report = {}, {"embeddings_quantized": 0, "linears_quantized": 0, "linears_kept_float": {}}
    for name, (module, example) in programs.items():
        module = copy.deepcopy(module).eval()
        report["embeddings_quantized"] += _quantize_embeddings(module, embedding_bits, sensitive, hits)
        used = called_modules(module, example, nn.Linear)
        chosen = []
        for fqn, m in module.named_modules():
            if not isinstance(m, nn.Linear) or fqn not in used:  # not in this program (the text program wraps
                continue  # the whole student but runs only its text tower)
            if _sensitive(fqn, sensitive, hits):
                report["linears_kept_float"][f"{name}:{fqn}"] = "sensitive"
            elif isinstance(m, nn.modules.linear.NonDynamicallyQuantizableLinear):
                report["linears_kept_float"][f"{name}:{fqn}"] = "nn.MultiheadAttention reads its weight directly"
            elif group_size and m.in_features % group_size:
                report["linears_kept_float"][f"{name}:{fqn}"] = f"in_features {m.in_features} % group {group_size}"
            else:
                chosen.append(fqn)
        if chosen:
            quantize_(
                module, config, filter_fn=lambda m, fqn, chosen=chosen: isinstance(m, nn.Linear) and fqn in chosen
            )
        report["linears_quantized"] += len(chosen)
        eps[name] = _export(module, example)
    if own_hits:
        _check_sensitive(sensitive, hits)
    return eps, report


def quantize_coreml_int8(
    programs: ProgramSet,
    calibration: Calibration,
    *,
    per_channel: bool = True,
    sensitive: Sequence[str] = (),
    embedding_bits: int = 8,
    hits: set[str] | None = None,
) -> tuple[dict[str, ExportedProgram], dict[str, Any]]:
    """PT2E static int8 with Core ML's own quantizer (``executorch.backends.apple.coreml.quantizer.CoreMLQuantizer``
    over coremltools' ``LinearQuantizerConfig``: symmetric int8 weights per channel, uint8 activations), calibrated
    on ``calibration[name]``: the path ExecuTorch documents for Core ML. The XNNPACK quantizer's graphs do not
    convert (coremltools: "scale has dtype fp32 whereas input has dtype int32").

    Annotations stay on float weights and on float tensors computed from the inputs: integer tensors and constant
    sub-graphs (the sine positions: ``arange`` -> ..., which coremltools builds as int32) are left unquantized, as
    are ``sensitive`` layers."""
    from coremltools.optimize.torch.quantization.quantization_config import (
        LinearQuantizerConfig,
        QuantizationScheme,
    )
    from executorch.backends.apple.coreml.quantizer import CoreMLQuantizer

    own_hits = hits is None
    hits = set() if hits is None else hits

    def annotated(model: torch.fx.GraphModule) -> set[torch.fx.Node]:
        """Float weights (``get_attr``) and float tensors computed from the inputs: not constant sub-graphs."""
        live: set[torch.fx.Node] = set()
        for node in model.graph.nodes:
            if node.op == "placeholder" or any(i in live for i in node.all_input_nodes):
                live.add(node)
        keep = set()
        for node in model.graph.nodes:
            stack = node.meta.get("nn_module_stack") or {}
            if (node.op == "get_attr" or node in live) and _is_float(node):
                if not any(_sensitive(path, sensitive, hits) for path, _ in stack.values()):
                    keep.add(node)
        return keep

    class _Annotated(CoreMLQuantizer):
        def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
            model = super().annotate(model)
            keep = annotated(model)
            for node in model.graph.nodes:
                ann = node.meta.get("quantization_annotation")
                if ann is None:
                    continue
                if node not in keep:
                    ann.output_qspec = None
                for inp in [i for i in ann.input_qspec_map if i not in keep]:
                    del ann.input_qspec_map[inp]
            return model

    config = LinearQuantizerConfig.from_dict(
        {
            "global_config": {
                "quantization_scheme": QuantizationScheme.symmetric,
                "activation_dtype": torch.quint8,
                "weight_dtype": torch.qint8,
                "weight_per_channel": per_channel,
            }
        }
    )
    eps, report = {}, {"embeddings_quantized": 0, "calibration_batches": {}}
    with _cached_coreml_patterns():
        for name, (module, example) in programs.items():
            eps[name], report["calibration_batches"][name], n = _coreml_int8_program(
                name, module, example, calibration, config, _Annotated, embedding_bits, sensitive, hits
            )
            report["embeddings_quantized"] += n
    if own_hits:
        _check_sensitive(sensitive, hits)
    return eps, report


def _coreml_int8_program(name, module, example, calibration, config, quantizer_cls, embedding_bits, sensitive, hits):
    """One program through Core ML's PT2E quantizer: -> (program, calibration batches, embeddings quantized)."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    batches = calibration.get(name) or []
    if not batches:
        raise ValueError(f"coreml_int8: no calibration inputs for program {name!r}")
    module = copy.deepcopy(module).eval()
    quantized_embeddings = _quantize_embeddings(module, embedding_bits, sensitive, hits)
    with torch.no_grad():
        graph = torch.export.export(module, example, strict=False).module()
        prepared = prepare_pt2e(graph, quantizer_cls(config))
        for inputs in batches:
            prepared(*inputs)
        converted = convert_pt2e(prepared)
    return _export(converted, example), len(batches), quantized_embeddings


@contextlib.contextmanager
def _cached_coreml_patterns() -> Iterator[None]:
    """Build each of Core ML's quantizer patterns once. Its ``annotate`` torch.exports every pattern it matches
    (about 400 per program, 0.18 s each: 74 s of a stand-in's 78 s), and the patterns depend only on their
    arguments (op, activation, in-place flag), not on the model. The matcher edits the graph it is given, so each
    call gets a copy of the built one."""
    from executorch.backends.apple.coreml.quantizer import _coreml_quantizer_utils as utils

    names = [n for n in dir(utils) if n.startswith("get_") and n.endswith("_pattern")]
    originals = {n: getattr(utils, n) for n in names}
    built: dict[tuple, Any] = {}

    def cached(name: str, fn: Any) -> Any:
        @functools.wraps(fn)
        def get(*args: Any, **kwargs: Any) -> Any:
            key = (name, args, tuple(sorted(kwargs.items())))
            if key not in built:
                built[key] = fn(*args, **kwargs)
            return copy.deepcopy(built[key])  # the matcher rewrites the pattern graph's output: a fresh copy each

        return get

    try:
        for n, fn in originals.items():
            setattr(utils, n, cached(n, fn))
        yield
    finally:
        for n, fn in originals.items():
            setattr(utils, n, fn)


def quantize_weight_only(
    programs: ProgramSet,
    *,
    bits: int = 4,
    group_size: int = 32,
    sensitive: Sequence[str] = (),
    embedding_bits: int = 4,
    hits: set[str] | None = None,
) -> tuple[dict[str, ExportedProgram], dict[str, Any]]:
    """torchao weight-only ``bits``-bit grouped weights for the ``nn.Linear`` layers a program runs (float
    activations: what Core ML takes; int4 needs iOS18's ``constexpr_blockwise_shift_scale``) and ``embedding_bits``
    token embeddings (:func:`_quantize_linears`)."""
    from torchao.quantization.granularity import PerAxis, PerGroup
    from torchao.quantization.quant_api import IntxWeightOnlyConfig

    config = IntxWeightOnlyConfig(
        weight_dtype=getattr(torch, f"int{bits}"), granularity=PerGroup(group_size) if group_size else PerAxis(0)
    )
    return _quantize_linears(programs, config, group_size, sensitive, embedding_bits, hits)


def _check_sensitive(sensitive: Sequence[str], hits: set[str]) -> None:
    missing = sorted(set(sensitive) - hits)
    if missing:
        raise ValueError(f"sensitive_layers {missing} match no quantizable layer of the student (typo?)")


# Core ML variants (export.backend_variants.coreml): the recipe and the lowest Core ML deployment target that runs it
COREML_RECIPES: dict[str, dict[str, str]] = {
    "coreml_int8": {"recipe": "int8_pt2e_coreml (W8A8, embedding int8)", "coreml_min_target": "iOS17"},
    "coreml_w4": {"recipe": "w4_torchao_weight_only (linears int4, embedding int4)", "coreml_min_target": "iOS18"},
}


def build_variant(
    variant: str,
    programs: ProgramSet,
    calibration: Calibration,
    *,
    per_channel: bool = True,
    group_size: int = 32,
    sensitive: Sequence[str] = (),
    embedding_bits: int = 8,
    recipe: str | None = None,
    text_recipe: str = "variant",
    text_group_size: int = 32,
    text_embedding_bits: int = 8,
) -> tuple[dict[str, ExportedProgram], dict[str, Any]]:
    """Programs of one variant; ``recipe`` (``int8``/``8da4w``) says how a ``qat`` student is converted.

    ``text_recipe`` ``8da4w`` quantizes the ``text`` program of every integer variant with int4 grouped weights
    (``text_group_size``) and ``text_embedding_bits`` token embeddings, whatever the variant's own recipe: the text
    program runs once per phrase, so its size matters and its latency does not. ``variant`` = the variant's recipe.
    """
    kind = recipe if variant == "qat" else variant
    if kind == "fp32":
        return export_fp32(programs), {"recipe": "fp32"}
    if kind == "fp16":
        return export_fp16(programs), {"recipe": "fp16"}
    if kind in COREML_RECIPES:  # Core ML's own recipes: every program, the text program included
        if kind == "coreml_int8":
            eps, rep = quantize_coreml_int8(
                programs, calibration, per_channel=per_channel, sensitive=sensitive, embedding_bits=8
            )
        else:
            eps, rep = quantize_weight_only(programs, bits=4, group_size=group_size, sensitive=sensitive)
        return eps, {**rep, **COREML_RECIPES[kind], "programs": {name: COREML_RECIPES[kind]["recipe"] for name in eps}}
    if kind not in ("int8", "8da4w"):
        raise ValueError(f"unknown variant {variant!r} (recipe {recipe!r})")
    hits: set[str] = set()
    own = dict(programs)
    eps: dict[str, ExportedProgram] = {}
    report: dict[str, Any] = {"recipe": "int8_pt2e_xnnpack" if kind == "int8" else "8da4w_torchao", "programs": {}}
    if text_recipe == "8da4w" and "text" in own:
        text_eps, text_rep = quantize_8da4w(
            {"text": own.pop("text")},
            group_size=text_group_size,
            sensitive=sensitive,
            embedding_bits=text_embedding_bits,
            hits=hits,
        )
        eps.update(text_eps)
        report["text"] = text_rep
        report["programs"]["text"] = f"8da4w_torchao (group {text_group_size}, embedding int{text_embedding_bits})"
    if kind == "int8":
        rest, rep = quantize_int8(
            own, calibration, per_channel=per_channel, sensitive=sensitive, embedding_bits=embedding_bits, hits=hits
        )
    else:
        rest, rep = quantize_8da4w(
            own, group_size=group_size, sensitive=sensitive, embedding_bits=embedding_bits, hits=hits
        )
    eps.update(rest)
    report.update(rep)
    report["programs"].update({name: report["recipe"] for name in rest})
    _check_sensitive(sensitive, hits)
    return {name: eps[name] for name in programs}, report


def save_programs(out_dir: str | Path, programs: dict[str, ExportedProgram], meta: dict[str, Any]) -> None:
    """``out_dir/<name>.pt2`` per program (``torch.export.save``) + ``meta.json`` (written last: marks complete)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, ep in programs.items():
        with atomic_path(out_dir / f"{name}.pt2") as tmp, open(tmp, "wb") as fh:
            torch.export.save(ep, fh)
    write_json(out_dir / PROGRAMS_META, {**meta, "programs": sorted(programs)})


def load_programs(out_dir: str | Path) -> tuple[dict[str, ExportedProgram], dict[str, Any]]:
    """Inverse of :func:`save_programs`; a skipped variant (``status != ok``) returns no programs."""
    out_dir = Path(out_dir)
    meta = read_json(out_dir / PROGRAMS_META)
    if meta.get("status") != "ok":
        return {}, meta
    import torchao.quantization  # noqa: F401  (registers torchao ops used by 8da4w / embedding programs)

    from sam3_edge.deploy.pt2_guard import check_pt2_archive

    programs = {}
    for name in meta["programs"]:
        path = out_dir / f"{name}.pt2"
        if not path.is_file():
            raise ValueError(f"{path}: program file listed in {out_dir / PROGRAMS_META} is missing")
        # torch.export.load unpickles some members: refuse archives whose pickles hold anything but tensors first
        check_pt2_archive(path)
        try:
            programs[name] = torch.export.load(str(path))
        except Exception as err:  # noqa: BLE001 - any loader failure is a bad file, reported with its path
            raise ValueError(f"{path}: cannot load the exported program ({type(err).__name__}: {err})") from None
    return programs, meta
