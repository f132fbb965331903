from __future__ import annotations

import dataclasses

import pytest

from sam3_edge.config import ParamsError, from_dict
from sam3_edge.eval.config import EvaluateParams, GatesParams
from sam3_edge.eval.gates import evaluate_gates, headline, lookup


def _eval(miou: float, *, sensitivity: float = 0.6, f1: float | dict = 0.9, latency: float = 10.0) -> dict:
    return {
        "miou": {"text": miou, "point": miou, "box": miou},
        "prompt_sensitivity": {"value": sensitivity},
        "presence": {"f1": f1},
        "latency": {"image_ms_median": latency},
    }


BENCH = {
    "summary": {
        "int8": {
            "xnnpack": {
                "size_mb": 12.0,
                "image_pte_mb": 8.0,
                "text_pte_mb": 4.0,
                "image_latency_ms": 40.0,
                "video_fps": 25.0,
                "peak_memory_mb": 300.0,
                "delegated_fraction": 0.95,
                "speedup_vs_eager": 2.0,
                "speedup_vs_teacher": 80.0,
            }
        }
    }
}


def test_all_gates_pass_is_go():
    out = evaluate_gates(
        GatesParams(), eval_metrics={"teacher": _eval(0.8, latency=100.0), "student": _eval(0.72)}, benchmark=BENCH
    )
    assert out["decision"] == "go" and out["go"] == 1 and out["failed"] == 0 and out["unknown"] == 0
    assert out["gates"]["miou_ratio_text"]["value"] == pytest.approx(0.9)
    assert out["figures"]["speedup_student_over_teacher"] == pytest.approx(10.0)


def test_missed_gate_is_no_go_and_threshold_matters():
    metrics = {"teacher": _eval(0.8), "student": _eval(0.6)}  # ratio 0.75
    out = evaluate_gates(GatesParams(), eval_metrics=metrics, benchmark=BENCH)
    assert out["decision"] == "no-go" and out["gates"]["miou_ratio_box"]["status"] == "fail"
    assert "miou_ratio_text" in out["decision_reason"]
    relaxed = evaluate_gates(GatesParams(min_miou_ratio=0.7), eval_metrics=metrics, benchmark=BENCH)
    assert relaxed["decision"] == "go"


def test_missing_figures_are_unknown_not_pass():
    undefined = {"status": "undefined", "reason": "split has no negative pairs"}
    out = evaluate_gates(
        GatesParams(),
        eval_metrics={"teacher": _eval(0.8), "student": _eval(0.8, f1=undefined)},
        benchmark=None,
        benchmark_reason="metrics/benchmark.json not found",
    )
    assert out["gates"]["presence_f1"]["status"] == "unknown" and "no negative" in out["gates"]["presence_f1"]["reason"]
    assert out["gates"]["pte_size_mb"]["status"] == "unknown" and "not found" in out["gates"]["pte_size_mb"]["reason"]
    assert "value" not in out["gates"]["pte_size_mb"] and out["decision"] == "no-go"
    no_student = evaluate_gates(GatesParams(), eval_metrics={"teacher": _eval(0.8)}, benchmark=BENCH)
    assert no_student["gates"]["miou_ratio_text"]["status"] == "unknown"
    assert "no evaluation metrics for model 'student'" in no_student["gates"]["miou_ratio_text"]["reason"]
    zero_teacher = evaluate_gates(
        GatesParams(), eval_metrics={"teacher": _eval(0.0), "student": _eval(0.5)}, benchmark=BENCH
    )
    assert zero_teacher["gates"]["miou_ratio_text"]["status"] == "unknown"


def test_budget_comparisons_are_strict():
    bench = {
        "summary": {"int8": {"xnnpack": {**BENCH["summary"]["int8"]["xnnpack"], "size_mb": 50.0, "video_fps": 15.0}}}
    }
    out = evaluate_gates(GatesParams(), eval_metrics={"teacher": _eval(0.8), "student": _eval(0.8)}, benchmark=bench)
    assert out["gates"]["pte_size_mb"]["status"] == "fail" and out["gates"]["video_fps"]["status"] == "fail"


def test_lookup():
    assert lookup({"a": {"b": 2}}, "a.b") == (2.0, "")
    assert lookup({"a": {}}, "a.b")[0] is None
    assert "not a number" in lookup({"a": "x"}, "a")[1]


def test_params_are_strict():
    with pytest.raises(ParamsError, match="unknown key gates.min_miou_ration"):
        from_dict(GatesParams, {"min_miou_ration": 0.8}, prefix="gates")
    with pytest.raises(ParamsError, match="benchmark_keys"):
        from_dict(GatesParams, {"benchmark_keys": {"size": "a.b"}}, prefix="gates")
    with pytest.raises(ParamsError, match="score_threshold"):
        from_dict(EvaluateParams, {"score_threshold": 1.5}, prefix="evaluate")
    with pytest.raises(ParamsError, match="prompt_kinds"):
        from_dict(EvaluateParams, {"prompt_kinds": ["text", "scribble"]}, prefix="evaluate")
    assert dataclasses.asdict(from_dict(EvaluateParams, {}))["batch_size"] == 8


def test_skipped_real_size_benchmark_says_how_to_measure_the_mobile_gates():
    bench = {"real": {"status": "skipped", "reason": "no exports under exports/pte/real"}, "summary": {}}
    out = evaluate_gates(GatesParams(), eval_metrics={"teacher": _eval(0.8), "student": _eval(0.8)}, benchmark=bench)
    gate = out["gates"]["pte_size_mb"]
    assert gate["status"] == "unknown" and "make bench-real" in gate["reason"] and "exports/pte/real" in gate["reason"]


def test_headline_holds_numbers_only_for_a_readable_dvc_metrics_show():
    evals = {"teacher": _eval(0.8, latency=100.0), "student": _eval(0.4)}
    evals["student"]["video"] = {"J_and_F": {"status": "skipped", "reason": "no clips"}}
    gates = evaluate_gates(GatesParams(), eval_metrics=evals, benchmark=None, benchmark_reason="not run")
    out = headline(evals, gates)
    assert out["student"] == {"text": 0.4, "point": 0.4, "box": 0.4, "presence_f1": 0.9, "sensitivity": 0.6}
    assert out["_gates"]["go"] == 0 and out["_gates"]["ratio_text"] == 0.5
    assert set(out["_gates"]) == {"go", "failed", "ratio_text", "ratio_point", "ratio_box"}
    assert "_deploy" not in out  # no benchmark: no deploy row
    bench = {"summary": {"int8": {"xnnpack": {"size_mb": 64.06, "image_latency_ms": 187.1, "video_fps": 5.1}}}}
    gates = evaluate_gates(GatesParams(), eval_metrics=evals, benchmark=bench)
    out = headline(evals, gates)
    assert out["_deploy"] == {"mb": 64.06, "ms": 187.1, "fps": 5.1}  # the measured benchmark gates only

    def leaves(node):
        return [x for v in node.values() for x in (leaves(v) if isinstance(v, dict) else [v])]

    assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in leaves(out))
    assert all(not isinstance(v, dict) for row in out.values() for v in row.values())  # one flat row per file


def test_lowered_gate_names_the_exports_that_failed():
    ok = {"status": "ok", "delegated_fraction": 1.0, "executed": False}
    failed = {"status": "failed", "reason": "ValueError: Method 'video_step' has 3 partitions"}
    params = GatesParams(required_lowerings=("student.coreml_coreml_int8", "real.coreml_coreml_int8"))
    metrics = {"teacher": _eval(0.8), "student": _eval(0.8)}
    passing = evaluate_gates(
        params,
        eval_metrics=metrics,
        benchmark={**BENCH, "student": {"coreml_coreml_int8": ok}, "real": {"coreml_coreml_int8": ok}},
    )
    assert passing["gates"]["lowered"]["status"] == "pass" and passing["decision"] == "go"
    out = evaluate_gates(
        params,
        eval_metrics=metrics,
        benchmark={**BENCH, "student": {"coreml_coreml_int8": ok}, "real": {"coreml_coreml_int8": failed}},
    )
    gate = out["gates"]["lowered"]
    assert gate["status"] == "fail" and gate["value"] == 0.5 and out["decision"] == "no-go"
    assert "real.coreml_coreml_int8: failed: ValueError" in gate["reason"] and "student" not in gate["reason"]
    missing = evaluate_gates(params, eval_metrics=metrics, benchmark=BENCH)["gates"]["lowered"]
    assert missing["value"] == 0.0 and "no such export row" in missing["reason"]
    assert "lowered" not in evaluate_gates(GatesParams(), eval_metrics=metrics, benchmark=BENCH)["gates"]
