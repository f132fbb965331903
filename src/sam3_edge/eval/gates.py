"""Go/No-Go gates over the evaluation and benchmark metrics (``metrics/gates.json``).

Each gate records its value, threshold, comparison and a status: ``pass``, ``fail`` or ``unknown`` (a figure
that is missing or undefined, with the reason: never a pass). The decision is ``go`` only when every gate
passes; a missed gate does not fail the pipeline, it makes the decision ``no-go``.

Gates (thresholds in params ``gates``):
* ``miou_ratio_<kind>``: student mIoU / teacher mIoU per prompt kind (``metrics/eval/<name>.json``) >= min;
* ``prompt_sensitivity``, ``presence_f1``: the student's figures >= min;
* ``pte_size_mb`` < max, ``image_latency_ms`` < max, ``video_fps`` > min, ``peak_memory_mb`` < max,
  ``delegated_fraction`` > min: from the deploy benchmark json, at the dotted keys of ``benchmark_keys``;
* ``lowered``: the fraction of the exports named in ``required_lowerings`` (export rows of the benchmark json,
  such as the Core ML int8 files that cannot run here) whose status is ``ok``, == 1. Every Core ML export of the
  student failed for a day (2026-12-04/05) and only the report's export table showed it.
"""

from __future__ import annotations

import operator
from typing import Any

from sam3_edge.eval.config import GatesParams

_OPS = {">=": operator.ge, ">": operator.gt, "<": operator.lt, "<=": operator.le}


_MISSING = object()


def _node(tree: Any, dotted: str) -> Any:
    """What sits at ``a.b.c`` in nested dicts, or ``_MISSING``."""
    node = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def lookup(tree: Any, dotted: str) -> tuple[float | None, str]:
    """Number at ``a.b.c`` in nested dicts -> (value, '') or (None, reason)."""
    node = _node(tree, dotted)
    if node is _MISSING:
        return None, f"no key {dotted!r}"
    if isinstance(node, dict) and node.get("status"):
        return None, f"{dotted} is {node['status']}: {node.get('reason', '')}".rstrip(": ")
    if isinstance(node, bool) or not isinstance(node, (int, float)):
        return None, f"{dotted} is not a number ({node!r})"
    return float(node), ""


def _gate(value: float | None, reason: str, comparison: str, threshold: float) -> dict[str, Any]:
    out: dict[str, Any] = {"threshold": threshold, "comparison": comparison}
    if value is None:
        return {**out, "status": "unknown", "passed": 0, "reason": reason}
    ok = _OPS[comparison](value, threshold)
    return {**out, "value": value, "status": "pass" if ok else "fail", "passed": int(ok)}


def _lowered(benchmark: dict | None, benchmark_reason: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """The ``lowered`` gate: share of the export rows at ``keys`` with status ok (the others named in ``reason``)."""
    if benchmark is None:
        return _gate(None, benchmark_reason or "no benchmark metrics", ">=", 1.0)
    failed = []
    for dotted in keys:
        node = _node(benchmark, dotted)
        if not isinstance(node, dict):
            failed.append(f"{dotted}: no such export row")
        elif node.get("status") != "ok":
            failed.append(f"{dotted}: {node.get('status')}: {node.get('reason', '')}".rstrip(": "))
    gate = _gate((len(keys) - len(failed)) / len(keys), "", ">=", 1.0)
    return {**gate, "reason": "; ".join(failed)} if failed else gate


def _model_figure(metrics: dict[str, dict], model: str, dotted: str) -> tuple[float | None, str]:
    if model not in metrics:
        return None, f"no evaluation metrics for model {model!r} (have {sorted(metrics)})"
    value, reason = lookup(metrics[model], dotted)
    return value, f"{model}: {reason}" if reason else ""


def evaluate_gates(
    params: GatesParams,
    *,
    eval_metrics: dict[str, dict],
    benchmark: dict | None,
    benchmark_reason: str = "",
) -> dict[str, Any]:
    """eval_metrics: model name -> metrics dict of the evaluate stage; benchmark: the deploy benchmark json, or
    None with ``benchmark_reason`` (e.g. file not produced yet). Returns the ``metrics/gates.json`` dict."""
    gates: dict[str, dict[str, Any]] = {}
    figures: dict[str, Any] = {}
    for kind in params.miou_kinds:
        s, s_reason = _model_figure(eval_metrics, params.student, f"miou.{kind}")
        t, t_reason = _model_figure(eval_metrics, params.teacher, f"miou.{kind}")
        if s is None or t is None:
            value, reason = None, "; ".join(r for r in (s_reason, t_reason) if r)
        elif t <= 0:
            value, reason = None, f"{params.teacher}: miou.{kind} is {t}: the ratio is undefined"
        else:
            value, reason = s / t, ""
        gates[f"miou_ratio_{kind}"] = _gate(value, reason, ">=", params.min_miou_ratio)
    gates["prompt_sensitivity"] = _gate(
        *_model_figure(eval_metrics, params.student, "prompt_sensitivity.value"), ">=", params.min_prompt_sensitivity
    )
    gates["presence_f1"] = _gate(
        *_model_figure(eval_metrics, params.student, "presence.f1"), ">=", params.min_presence_f1
    )
    budgets = {
        "pte_size_mb": ("<", params.max_pte_size_mb),
        "image_pte_mb": ("<", params.max_image_pte_mb),
        "text_pte_mb": ("<", params.max_text_pte_mb),
        "image_latency_ms": ("<", params.max_image_latency_ms),
        "video_fps": (">", params.min_video_fps),
        "peak_memory_mb": ("<", params.max_peak_memory_mb),
        "delegated_fraction": (">", params.min_delegated_fraction),
        "speedup_vs_eager": (">=", params.min_speedup_vs_eager),
        "speedup_vs_teacher": (">=", params.min_speedup_vs_teacher),
    }
    for figure, (comparison, threshold) in budgets.items():
        dotted = params.benchmark_keys.get(figure)
        if benchmark is None:
            value, reason = None, benchmark_reason or "no benchmark metrics"
        elif dotted is None:
            value, reason = None, f"gates.benchmark_keys has no entry for {figure}"
        else:
            value, reason = lookup(benchmark, dotted)
            reason = f"benchmark: {reason}" if reason else ""
            real = benchmark.get("real")
            if reason and isinstance(real, dict) and real.get("status") == "skipped":
                reason += f"; the real-size student was not benchmarked ({real.get('reason')}): run `make bench-real`"
        gates[figure] = _gate(value, reason, comparison, threshold)
    if params.required_lowerings:
        gates["lowered"] = _lowered(benchmark, benchmark_reason, params.required_lowerings)
    t_ms, _ = _model_figure(eval_metrics, params.teacher, "latency.image_ms_median")
    s_ms, _ = _model_figure(eval_metrics, params.student, "latency.image_ms_median")
    if t_ms is not None and s_ms:
        figures["speedup_student_over_teacher"] = t_ms / s_ms  # teacher latency / student latency, eager CPU
    statuses = [g["status"] for g in gates.values()]
    failed, unknown = statuses.count("fail"), statuses.count("unknown")
    if failed:
        decision, why = (
            "no-go",
            f"{failed} gate(s) failed: {', '.join(k for k, g in gates.items() if g['status'] == 'fail')}",
        )
    elif unknown:
        decision, why = (
            "no-go",
            f"{unknown} gate(s) unknown: {', '.join(k for k, g in gates.items() if g['status'] == 'unknown')}",
        )
    else:
        decision, why = "go", "every gate passed"
    return {
        "decision": decision,
        "decision_reason": why,
        "go": int(decision == "go"),
        "passed": statuses.count("pass"),
        "failed": failed,
        "unknown": unknown,
        "gates": gates,
        "figures": figures,
    }


# headline figure -> dotted key in an evaluate-stage metrics json (short names: they are `dvc metrics show` columns)
HEADLINE_KEYS = {
    "text": "miou.text",
    "point": "miou.point",
    "box": "miou.box",
    "presence_f1": "presence.f1",
    "sensitivity": "prompt_sensitivity.value",
    "cgF1": "saco.cgF1",
    "J&F": "video.J_and_F",
}
# gate -> its column in the summary's gates row (the presence / sensitivity gates repeat the student's row)
GATE_COLUMNS = {"miou_ratio_text": "ratio_text", "miou_ratio_point": "ratio_point", "miou_ratio_box": "ratio_box"}
GATES_ROW = "_gates"
# benchmark gate -> its column in the summary's deploy row (the real-size int8 XNNPACK figures the gates read)
DEPLOY_COLUMNS = {
    "pte_size_mb": "mb",
    "image_latency_ms": "ms",
    "video_fps": "fps",
    "peak_memory_mb": "peak_mb",
    "delegated_fraction": "deleg",
}
DEPLOY_ROW = "_deploy"


def headline(eval_metrics: dict[str, dict], gates: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The few numbers a user compares first: one flat row per evaluated model (the HEADLINE_KEYS figures it
    has) and a ``_gates`` row (decision, failed count, student/teacher mIoU ratios). The gates stage writes each
    row as ``metrics/summary/<row>.json``, the declared DVC metrics: ``dvc metrics show`` prints one line per
    model, a dozen columns wide. Numbers only; the detailed files stay where they are (``dvc metrics show FILE``).
    A ``_deploy`` row holds the benchmark figures the deploy gates read (``DEPLOY_COLUMNS``), where measured."""
    out: dict[str, dict[str, Any]] = {}
    for model, metrics in sorted(eval_metrics.items()):
        row = {}
        for key, dotted in HEADLINE_KEYS.items():
            value, _ = lookup(metrics, dotted)
            if value is not None:
                row[key] = round(value, 4)
        out[model] = row
    out[GATES_ROW] = {
        "go": gates["go"],
        "failed": gates["failed"],
        **{
            col: round(gates["gates"][g]["value"], 4)
            for g, col in GATE_COLUMNS.items()
            if "value" in gates["gates"].get(g, {})
        },
    }
    deploy = {
        col: round(gates["gates"][g]["value"], 4)
        for g, col in DEPLOY_COLUMNS.items()
        if isinstance(gates["gates"].get(g, {}).get("value"), (int, float))
    }
    if deploy:
        out[DEPLOY_ROW] = deploy
    return out
