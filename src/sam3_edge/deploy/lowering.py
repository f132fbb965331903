"""Lower a variant's programs to ExecuTorch ``.pte`` buffers per backend, and say what was delegated.

:func:`lower_programs` puts the programs it is given in one multi-method buffer; the export stage calls it once
per file of ``deploy.runtime.PTE_FILES`` (``text`` alone; ``image`` + ``video_step``, which share weights) and
merges the reports with :func:`merge_delegation`. Nothing falls back silently: for each
method the edge graph is walked after partitioning, every operator inside a backend delegate counts as
delegated (counted in the delegate's original edge graph), every operator left outside counts as not, and the
names and counts of those left outside are listed (they run on ExecuTorch's portable CPU kernels).

Quantized (PT2E) programs get every shared ``dequantize_per_tensor`` node split per consumer before
partitioning (:func:`_transform_passes`): the XNNPACK partitioner pulls an op's input dq nodes into the op's
partition, and a dq that also feeds an op left outside (``layer_norm``) made the ``video_step`` int8 partition
``{dq(tokens), dq(ffn(cross(norm(tokens)))), sub, q}`` a dependency cycle.

Backends: ``xnnpack`` (CPU; runs here), ``coreml`` (lowers on Linux through coremltools; runs only on an Apple
OS), ``qnn`` (needs the Qualcomm AI Engine Direct SDK, found through ``QNN_SDK_ROOT``; else a recorded skip).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from torch.export import ExportedProgram

LOG = logging.getLogger(__name__)

BACKEND_IDS = {"xnnpack": "XnnpackBackend", "coreml": "CoreMLBackend", "qnn": "QnnBackend"}
_IGNORED = {"getitem", "executorch_call_delegate"}


class BackendUnavailable(RuntimeError):
    """The backend's toolchain is not installed here: recorded as ``status: skipped`` with this reason."""


@dataclass
class LoweredProgram:
    backend: str
    buffer: bytes
    delegation: dict[str, Any]
    export_s: float
    methods: list[str] = field(default_factory=list)
    planned_bytes: dict[str, int] = field(default_factory=dict)  # method -> memory-planned activation arena bytes


def _op_name(node: Any) -> str:
    return getattr(node.target, "__name__", None) or str(node.target)  # edge ops: "aten.mean.dim", ...


def delegation_report(edge_manager: Any, methods: list[str]) -> dict[str, Any]:
    """Per method and in total: ops inside delegates (by backend), ops left outside, the fraction delegated."""
    per_method: dict[str, Any] = {}
    total_in: Counter[str] = Counter()
    total_out: Counter[str] = Counter()
    for method in methods:
        gm = edge_manager.exported_program(method).graph_module
        inside: Counter[str] = Counter()
        outside: Counter[str] = Counter()
        delegates = 0
        for node in gm.graph.nodes:
            if node.op != "call_function":
                continue
            name = _op_name(node)
            if name == "executorch_call_delegate":
                delegates += 1
                lowered = getattr(gm, node.args[0].target)
                for inner in lowered.original_module.graph.nodes:
                    if inner.op == "call_function" and _op_name(inner) not in _IGNORED:
                        inside[lowered.backend_id] += 1
            elif name not in _IGNORED:
                outside[name] += 1
        n_in, n_out = sum(inside.values()), sum(outside.values())
        per_method[method] = {
            "delegates": delegates,
            "delegated_ops": n_in,
            "non_delegated_ops": n_out,
            "delegated_fraction": n_in / max(1, n_in + n_out),
            "non_delegated": dict(sorted(outside.items(), key=lambda kv: -kv[1])),
            "delegated_by_backend": dict(inside),
        }
        total_in.update(inside)
        total_out.update(outside)
    n_in, n_out = sum(total_in.values()), sum(total_out.values())
    return {
        "delegated_ops": n_in,
        "non_delegated_ops": n_out,
        "delegated_fraction": n_in / max(1, n_in + n_out),
        "non_delegated": dict(sorted(total_out.items(), key=lambda kv: -kv[1])),
        "methods": per_method,
    }


def merge_delegation(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One report over several lowered files (disjoint methods): totals summed, per-method entries kept, and
    ``min_method_delegated_fraction``, the lowest fraction of any method (what the > 95 % target reads)."""
    methods: dict[str, Any] = {}
    outside: Counter[str] = Counter()
    for report in reports:
        overlap = set(methods) & set(report["methods"])
        if overlap:
            raise ValueError(f"methods {sorted(overlap)} lowered twice")
        methods.update(report["methods"])
        outside.update(report["non_delegated"])
    n_in = sum(r["delegated_ops"] for r in reports)
    n_out = sum(r["non_delegated_ops"] for r in reports)
    return {
        "delegated_ops": n_in,
        "non_delegated_ops": n_out,
        "delegated_fraction": n_in / max(1, n_in + n_out),
        "min_method_delegated_fraction": min((m["delegated_fraction"] for m in methods.values()), default=0.0),
        "non_delegated": dict(sorted(outside.items(), key=lambda kv: -kv[1])),
        "methods": dict(sorted(methods.items())),
        "constant_copies": sum(r.get("constant_copies", 0) for r in reports),
    }


def qnn_sdk_root() -> str | None:
    root = os.environ.get("QNN_SDK_ROOT")
    return root if root and os.path.isdir(root) else None


def check_backend(backend: str) -> None:
    """Raise :class:`BackendUnavailable` with the reason when ``backend`` cannot be lowered on this machine."""
    if backend == "qnn":
        if os.environ.get("QNN_SDK_ROOT") is None:
            raise BackendUnavailable("QNN_SDK_ROOT is not set: the Qualcomm AI Engine Direct SDK is needed to lower")
        if qnn_sdk_root() is None:
            raise BackendUnavailable(f"QNN_SDK_ROOT={os.environ['QNN_SDK_ROOT']!r} is not a directory")
    elif backend == "coreml":
        try:
            import coremltools  # noqa: F401
        except ImportError as err:
            raise BackendUnavailable(f"coremltools is not installed ({err})") from None
    elif backend != "xnnpack":
        raise ValueError(f"unknown backend {backend!r} (known: {sorted(BACKEND_IDS)})")


def _partitioners(backend: str, variant: str, *, coreml_target: str, qnn_soc: str) -> tuple[list, Any]:
    if backend == "xnnpack":
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

        return [XnnpackPartitioner()], None
    if backend == "coreml":
        import coremltools as ct
        from executorch.backends.apple.coreml.compiler import CoreMLBackend
        from executorch.backends.apple.coreml.partition import CoreMLPartitioner

        precision = ct.precision.FLOAT32 if variant == "fp32" else ct.precision.FLOAT16
        specs = CoreMLBackend.generate_compile_specs(
            compute_precision=precision, minimum_deployment_target=getattr(ct.target, coreml_target)
        )
        return [CoreMLPartitioner(compile_specs=specs)], None
    if backend == "qnn":
        from executorch.backends.qualcomm.partition.qnn_partitioner import QnnPartitioner
        from executorch.backends.qualcomm.serialization.qc_schema import QcomChipset
        from executorch.backends.qualcomm.utils.utils import (
            generate_htp_compiler_spec,
            generate_qnn_executorch_compiler_spec,
            qnn_edge_config,
        )

        specs = generate_qnn_executorch_compiler_spec(
            soc_model=getattr(QcomChipset, qnn_soc), backend_options=generate_htp_compiler_spec(use_fp16=True)
        )
        return [QnnPartitioner(specs)], qnn_edge_config()
    raise ValueError(f"unknown backend {backend!r}")


def _transform_passes(backend: str, methods: list[str]) -> dict[str, list]:
    """Edge passes run before partitioning, per method (the dq-duplication pass keeps per-graph state): every
    backend gets :class:`ShortenProvenancePass` (the edge conversion's passes lengthened the chains again), XNNPACK
    also one dq per consumer.

    PT2E's ``DuplicateDQPass`` only splits a dq node between *annotated* consumers; an op the quantizer leaves
    unannotated but XNNPACK runs quantized anyway (``sub`` between a dq and a q: ``MemoryAttention``'s
    ``ffn(cross(tokens)) - tokens``) keeps sharing its dq with float consumers (``layer_norm``). The XNNPACK
    partitioner puts that dq inside the ``sub`` partition while the ``layer_norm`` path outside feeds the
    partition's other input: "Invalid partition, found dependency cycles". One dq per consumer removes the
    cycle; the numerics are unchanged (a dq is a pure function of its inputs). No-op for float programs.
    """
    if backend != "xnnpack":
        return {m: [ShortenProvenancePass()] for m in methods}
    from executorch.exir.backend.canonical_partitioners.duplicate_dequant_node_pass import DuplicateDequantNodePass

    return {
        m: [ShortenProvenancePass(), ViewsAsReshapePass(), DuplicateDequantNodePass(), FoldLiteralsPass()]
        for m in methods
    }


def _view_like_ops() -> set:
    from executorch.exir.dialects._ops import ops as exir_ops

    a = exir_ops.edge.aten
    return {a.squeeze_copy.dims, a.squeeze_copy.dim, a.squeeze_copy.default, a.unsqueeze_copy.default,
            a.alias_copy.default, a.expand_copy.default, a.view_copy.default}  # fmt: skip


def _qparams(node: Any, kind: str) -> tuple | None:
    """(scale, zero point) of a per-tensor ``quantize`` / ``dequantize`` node (``kind``), else None."""
    name = str(node.target) if getattr(node, "op", None) == "call_function" else ""
    if f"quantized_decomposed.{kind}_per_tensor" not in name:
        return None
    return tuple(node.args[1:3])


def views_as_reshape(graph_module: Any) -> int:
    """Make every squeeze / unsqueeze / alias / no-op expand a ``view_copy``; -> nodes rewritten.

    XNNPACK takes a reshape anywhere (``static_reshape``) but has no squeeze, takes unsqueeze only on the trailing
    dim and no alias or expand at all, so each of these split the student's graphs into another delegate (the
    embedded ``image`` method had 23 squeezes and 16 unsqueezes outside, 13 delegates). On a static shape they are
    all the same reshape. Not rewritten: a real broadcast (``expand`` to a larger shape), and a view whose
    dequantized input and requantized output have different quantization parameters. XNNPACK runs a view between
    a dq and a q as an int8 reshape, which needs equal parameters on both sides ("Failed to create squeeze node":
    the int8 mask head's ``semantic_proj(v)[:, None]`` feeds a ``cat`` with its own scale); left as it was, the
    op stays outside the delegate as before.
    """
    from executorch.exir.dialects._ops import ops as exir_ops

    view = exir_ops.edge.aten.view_copy.default
    view_like = _view_like_ops()
    count = 0
    for node in graph_module.graph.nodes:
        if node.op != "call_function" or node.target not in view_like or node.target is view:
            continue
        src, out = node.args[0], node.meta["val"]
        if list(src.meta["val"].shape) != list(out.shape) and node.target == exir_ops.edge.aten.expand_copy.default:
            continue
        if _mismatched_requantize(node, view_like):
            continue
        node.target, node.args, node.kwargs = view, (src, [int(d) for d in out.shape]), {}
        count += 1
    if count:
        graph_module.recompile()
    return count


def _mismatched_requantize(node: Any, view_like: set) -> bool:
    """True when a chain of views through ``node`` runs from a dq to a q of other (scale, zero point)."""
    src = node.args[0]
    while getattr(src, "op", None) == "call_function" and src.target in view_like:
        src = src.args[0]
    q_in = _qparams(src, "dequantize")
    if q_in is None:
        return False
    stack, outs = list(node.users), []
    while stack:
        user = stack.pop()
        if user.op == "call_function" and user.target in view_like:
            stack.extend(user.users)
        elif (q := _qparams(user, "quantize")) is not None:
            outs.append(q)
    return any(q != q_in for q in outs)


class ViewsAsReshapePass:
    """:func:`views_as_reshape` as an edge transform pass."""

    def __call__(self, graph_module: Any) -> Any:
        from torch.fx.passes.infra.pass_base import PassResult

        return PassResult(graph_module, views_as_reshape(graph_module) > 0)


FOLD_MAX_NUMEL = 1 << 16  # a literal subgraph whose result is larger stays computed (the .pte would carry it)
FOLD_SEED_MAX_NUMEL = 16  # constant inputs this small are numbers, not weights: folding may start from them


def _constant_input(program: ExportedProgram, node: Any) -> Any:
    """The tensor of a constant placeholder (lifted constant or non-mutated buffer), else None; never a parameter."""
    from torch._export.utils import get_buffer, get_lifted_tensor_constant, is_buffer, is_lifted_tensor_constant

    if is_lifted_tensor_constant(program, node):
        return get_lifted_tensor_constant(program, node)
    sig = program.graph_signature
    if is_buffer(program, node) and sig.inputs_to_buffers[node.name] not in sig.buffers_to_mutate.values():
        return get_buffer(program, node)
    return None


def fold_literals(program: ExportedProgram) -> int:
    """Replace every value computed from literals alone by a lifted constant; -> values folded.

    ``torch.arange`` grids, ``temperature ** (arange / half)`` frequencies, ``new_zeros`` and the ``ones`` of the
    nearest-upsampling rewrite are computed from shapes and Python numbers, not from inputs or weights. XNNPACK
    takes none of ``arange``, ``pow.Scalar``, ``full`` or integer -> float ``_to_dim_order_copy``, so each chain
    of them ran on portable kernels at every call and cut the graph into another delegate. ExecuTorch's
    ``constant_prop_pass`` folds them, but it folds weights too (a ``permute`` of a weight, torchao's
    ``dequantize_affine`` of an int4 weight: the 8da4w file would carry float weights). Here the propagation
    starts only from constant inputs of at most :data:`FOLD_SEED_MAX_NUMEL` elements (the Python numbers a forward
    turns into tensors, lifted, then made buffers by the edge conversion), never from a parameter or a weight-sized
    buffer, so only input-free, weight-free values fold; the graph edits are ExecuTorch's own
    (``create_constant_nodes_and_return_specs``). Quantization ops (ExecuTorch's, torchao's) and impure ops stay,
    and a value over :data:`FOLD_MAX_NUMEL` elements stays computed.
    """
    from collections import OrderedDict

    import torch
    from executorch.exir import memory
    from executorch.exir.passes import constant_prop_pass as cp
    from torch.utils import _pytree as pytree

    consts: OrderedDict[Any, Any] = OrderedDict()
    folded = 0
    for node in program.graph.nodes:
        if node.op == "placeholder":  # a Python number the forward made a tensor (lifted; a buffer by now)
            value = _constant_input(program, node)
            if value is not None and value.numel() <= FOLD_SEED_MAX_NUMEL:
                consts[node] = value
        if node.op != "call_function" or node.target is memory.alloc or node.is_impure():
            continue
        if _is_quant_op(node.target):  # ExecuTorch's / torchao's quantization ops: a weight's quantized form stays
            continue
        if not cp.is_const(node.args, program, consts) or not cp.is_const(node.kwargs, program, consts):
            continue
        args, kwargs = pytree.tree_map(lambda x: cp.get_data(x, program, consts), (node.args, node.kwargs))
        with torch.no_grad():
            value = node.target(*args, **kwargs)
        if not isinstance(value, torch.Tensor) or value.numel() > FOLD_MAX_NUMEL:
            continue
        consts[node] = value.contiguous() if 0 in value.stride() else value
        folded += 1
    if not folded:  # only seeds: nothing to replace
        return 0
    specs = {s.arg.name: s for s in program.graph_signature.input_specs}
    specs.update(cp.create_constant_nodes_and_return_specs(consts, program))
    program.graph_signature.input_specs = [specs[n.name] for n in program.graph.find_nodes(op="placeholder")]
    cp._update_output_node_and_specs(program, _skip_dim_order=False)
    program.graph.eliminate_dead_code()
    program.graph_module.recompile()
    return folded


def _is_quant_op(target: Any) -> bool:
    name = str(target)  # an EdgeOpOverload prints its namespace and name
    return any(k in name for k in ("quantize", "dequantize", "choose_qparams", "torchao", "quantized_decomposed"))


def FoldLiteralsPass():  # noqa: N802  (constructed like the other passes)
    """:func:`fold_literals` as an ExportedProgram pass (ExecuTorch's pass base is imported lazily)."""
    from executorch.exir.pass_base import ExportedProgramPassBase, ExportedProgramPassResult

    class FoldLiterals(ExportedProgramPassBase):
        def call(self, exported_program: ExportedProgram) -> ExportedProgramPassResult:
            return ExportedProgramPassResult(exported_program, fold_literals(exported_program) > 0)

    return FoldLiterals()


def shorten_provenance(graph_module: Any) -> int:
    """Keep only the oldest ancestor in each node's ``from_node`` provenance chain; -> nodes shortened.

    ``torch.fx`` records on every node the chain of nodes it came from, one link per pass, and each pass deep-copies
    the chain of every node it visits (``torch.fx.traceback.NodeSource``). By the time a PT2E program reaches the
    partitioner the chains are dozens of links deep, and copying them was about a fifth of an XNNPACK lowering
    (py-spy over ``stages/export.py``). ExecuTorch reads one thing from a chain: its oldest link, which names the
    node's debug handle (``executorch.exir.debug_handle_utils.get_greatest_ancestor_node_identifier``). Keeping
    that link alone leaves every debug handle, and the ``.pte`` bytes, unchanged (tested).
    """
    import torch.fx

    count = 0
    for gm in graph_module.modules():
        if not isinstance(gm, torch.fx.GraphModule):
            continue
        for node in gm.graph.nodes:
            chain = node.meta.get("from_node")
            if not chain or not chain[-1].from_node:
                continue
            root = chain[-1]
            while root.from_node:
                root = root.from_node[-1]
            node.meta["from_node"] = [root]
            count += 1
    return count


class ShortenProvenancePass:
    """:func:`shorten_provenance` as an edge transform pass (ExecuTorch passes are callables on a GraphModule)."""

    def __call__(self, graph_module: Any) -> Any:
        from torch.fx.passes.infra.pass_base import PassResult

        return PassResult(graph_module, shorten_provenance(graph_module) > 0)


@contextlib.contextmanager
def shared_provenance() -> Iterator[None]:
    """Let ``copy.deepcopy`` share ``torch.fx`` provenance records (``NodeSource``) instead of copying them.

    Every node a pass visits gets a new ``NodeSource`` whose constructor deep-copies the node's whole ``from_node``
    chain (``torch.fx.traceback.NodeSource.__init__``, through ``set_current_meta``), and every ``deepcopy`` of a
    graph copies the chains again. ``cProfile`` of an int8 image lowering: 243k ``NodeSource`` constructions,
    ~10 % of the lowering in ``deepcopy`` (docs/experiments.md, 2026-12-05, ninth session). Nothing in the
    pinned torch or ExecuTorch changes a ``NodeSource`` after its constructor (``from_node`` lists are rebuilt,
    never appended to; ``_dict`` is a cache of the same content), so a copy that shares them holds the same
    provenance: same debug handles, same ``.pte`` bytes (tested). Restored on exit; the export stages lower in
    their own processes.
    """
    from torch.fx.traceback import NodeSource

    missing = object()
    previous = NodeSource.__dict__.get("__deepcopy__", missing)
    NodeSource.__deepcopy__ = lambda self, memo: self  # type: ignore[method-assign]
    try:
        yield
    finally:
        if previous is missing:
            del NodeSource.__deepcopy__
        else:
            NodeSource.__deepcopy__ = previous  # type: ignore[method-assign]


def _noop() -> None:
    pass


@contextlib.contextmanager
def batched_constant_copies() -> Iterator[Counter]:
    """Make ExecuTorch's constant duplication recompile and validate each program once, not once per copy.

    When a partitioner puts two users of one constant (a weight, a lifted scalar) into different partitions,
    ``executorch.exir.backend.utils._maybe_duplicate_constant_nodes`` copies the constant for each extra user
    through ``duplicate_constant_node``, which ends with ``graph_module.recompile()`` and
    ``exported_program._validate()``: both walk the whole program, once per copy. For the student's programs that
    is hundreds of copies per method at about 2 s each, most of a 5-9 minute lowering. Here both calls are
    deferred while the copies are made and run once per program before ``backend_api`` builds the partitions
    from the graph (``_create_partitions`` / ``_partition_and_lower``). The graph edits are ExecuTorch's own,
    unchanged, so the ``.pte`` bytes are identical (tested). Yields a Counter of copy passes per tag.
    """
    from executorch.exir.backend import backend_api

    pending: dict[int, Any] = {}
    passes: Counter[str] = Counter()
    original = {
        name: getattr(backend_api, name)
        for name in ("_maybe_duplicate_constant_nodes", "_create_partitions", "_partition_and_lower")
    }

    def duplicate(program: Any, tag: str) -> None:
        gm = program.graph_module
        before = len(program.graph_signature.input_specs)
        program._validate, gm.recompile = _noop, _noop  # instance attributes shadow the methods for this call
        try:
            original["_maybe_duplicate_constant_nodes"](program, tag)
        finally:
            del program._validate, gm.recompile
        if len(program.graph_signature.input_specs) != before:
            pending[id(program)] = program
            passes[tag] += len(program.graph_signature.input_specs) - before

    def flush() -> None:
        for program in pending.values():
            program.graph_module.recompile()
            program._validate()
        pending.clear()

    def then_flush(name: str):
        def call(*args: Any, **kwargs: Any) -> Any:
            flush()
            return original[name](*args, **kwargs)

        return call

    backend_api._maybe_duplicate_constant_nodes = duplicate
    backend_api._create_partitions = then_flush("_create_partitions")
    backend_api._partition_and_lower = then_flush("_partition_and_lower")
    try:
        yield passes
        flush()
    finally:
        for name, fn in original.items():
            setattr(backend_api, name, fn)


def lower_programs(
    programs: dict[str, ExportedProgram],
    backend: str,
    *,
    variant: str,
    coreml_target: str = "iOS17",
    qnn_soc: str = "SM8650",
) -> LoweredProgram:
    """Partition every program for ``backend`` and serialise one ``.pte`` buffer with all methods.

    Raises :class:`BackendUnavailable` (a skip, not a failure) when the toolchain is missing.
    """
    import executorch.kernels.quantized  # noqa: F401  (quantized_decomposed out-variants: embedding_byte, ...)
    from executorch.exir import ExecutorchBackendConfig, to_edge_transform_and_lower

    check_backend(backend)
    start = time.perf_counter()
    partitioners, compile_config = _partitioners(backend, variant, coreml_target=coreml_target, qnn_soc=qnn_soc)
    kwargs: dict[str, Any] = {"compile_config": compile_config} if compile_config is not None else {}
    methods = sorted(programs)
    with shared_provenance():
        if backend == "xnnpack":  # layer norm and attention as ops XNNPACK takes (deploy/decompositions.py)
            from sam3_edge.deploy.decompositions import XNNPACK_DECOMPOSITIONS

            programs = {m: programs[m].run_decompositions(XNNPACK_DECOMPOSITIONS) for m in methods}
        elif backend == "coreml":  # boolean or as logical_or, which coremltools converts (deploy/decompositions.py)
            from sam3_edge.deploy.decompositions import COREML_DECOMPOSITIONS

            programs = {m: programs[m].run_decompositions(COREML_DECOMPOSITIONS) for m in methods}
        for program in programs.values():
            shorten_provenance(program.graph_module)
        kwargs["transform_passes"] = _transform_passes(backend, methods)
        with batched_constant_copies() as copies:
            edge = to_edge_transform_and_lower(dict(programs), partitioner=partitioners, **kwargs)
        report = delegation_report(edge, methods)
        report["constant_copies"] = sum(copies.values())
        et = edge.to_executorch(
            ExecutorchBackendConfig(do_quant_fusion_and_const_prop=True, extract_delegate_segments=True)
        )
    buffer = et.buffer
    # non_const_buffer_sizes[0] is reserved; the rest are the method's memory-planned arenas (activations)
    planned = {plan.name: int(sum(plan.non_const_buffer_sizes[1:])) for plan in et.executorch_program.execution_plan}
    for method, nbytes in planned.items():
        if method in report["methods"]:
            report["methods"][method]["planned_buffer_mb"] = nbytes / 2**20
    elapsed = time.perf_counter() - start
    LOG.info(
        "%s/%s: %.2f MB, %.1f%% of ops delegated, lowered in %.1f s",
        backend,
        variant,
        len(buffer) / 1e6,
        100 * report["delegated_fraction"],
        elapsed,
    )
    return LoweredProgram(
        backend=backend, buffer=buffer, delegation=report, export_s=elapsed, methods=methods, planned_bytes=planned
    )
