"""The report reads the real writers' schemas: eval metrics come from the evaluation driver run on fakes, gates
from the gates function; export/quantize files follow sam3_edge.deploy.pipeline's meta."""

from __future__ import annotations

import json

import pytest

from sam3_edge.eval.config import EvaluateParams, GatesParams
from sam3_edge.eval.driver import evaluate_samples
from sam3_edge.eval.gates import evaluate_gates
from sam3_edge.report.build import write_report
from sam3_edge.report.config import ReportParams
from sam3_edge.report.render import RESULTS_END, RESULTS_START
from sam3_edge.report.tables import deployment_table, gates_table, quality_table, quantization_table, report_tables
from sam3_edge.utils import write_json
from tests.support.fakes import REPORT_SCENES, ColourOracle, PromptIgnoring, concept_split

PARAMS = ReportParams(
    quality_models={"teacher": "teacher", "student": "student", "student + video": "student_video"},
    quantized={"student_int8": "pte_xnnpack_int8"},
)


@pytest.fixture(scope="module")
def metrics_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("metrics")
    params = EvaluateParams(batch_size=4)
    evals = {
        "teacher": evaluate_samples(
            ColourOracle(REPORT_SCENES), concepts=concept_split(REPORT_SCENES), params=params, latency=False
        ),
        "student": evaluate_samples(
            PromptIgnoring(REPORT_SCENES), concepts=concept_split(REPORT_SCENES), params=params, latency=False
        ),
    }
    evals["pte_xnnpack_int8"] = evals["student"] | {"miou": {"text": evals["student"]["miou"]["text"] - 0.125}}
    for name, m in evals.items():
        write_json(root / "eval" / f"{name}.json", m)
    write_json(
        root / "gates.json",
        evaluate_gates(GatesParams(), eval_metrics=evals, benchmark=None, benchmark_reason="benchmark stage not run"),
    )
    write_json(
        root / "quantize" / "student_int8.json", {"model": "student", "variant": "int8", "status": "ok", "reason": ""}
    )
    write_json(
        root / "quantize" / "student_qat.json",
        {"model": "student", "variant": "qat", "status": "skipped", "reason": "QAT checkpoint not present"},
    )
    write_json(
        root / "export" / "student" / "xnnpack_int8.json",
        {
            "backend": "xnnpack",
            "model": "student",
            "variant": "int8",
            "status": "ok",
            "reason": "",
            "file_bytes": 3 * 1024 * 1024,
            "files": {"text.pte": {"bytes": 1024 * 1024}, "image.pte": {"bytes": 2 * 1024 * 1024}},
            "size": {"ratio_to_fp32": 0.3},
            "delegated_fraction": 0.97,
        },
    )
    write_json(
        root / "export" / "student" / "coreml_int8.json",
        {
            "backend": "coreml",
            "model": "student",
            "variant": "int8",
            "status": "skipped",
            "reason": "the Core ML delegate needs an Apple OS",
        },
    )
    write_json(
        root / "benchmark.json",
        {  # sam3_edge.deploy.benchmark.run_benchmark's layout: <model>.<backend>_<variant>
            "student": {
                "status": "ok",
                "eager": {"image": {"p50_ms": 40.0}},
                "xnnpack_int8": {
                    "status": "ok",
                    "executed": True,
                    "pte_mb": 3.0,
                    "delegated_fraction": 0.97,
                    "image": {"p50_ms": 12.5},
                    "video": {"fps": 31.0},
                    "peak_rss_mb": 210.0,
                },
                "xnnpack_8da4w": {"status": "ok", "executed": False, "reason": "XnnpackBackend not registered"},
            },
            "real": {"status": "skipped", "reason": "no exports under exports/pte/real"},
            "summary": {},
        },
    )
    return root


def test_quality_rows_are_the_json_figures(metrics_dir):
    table = quality_table(metrics_dir, PARAMS)
    teacher = json.loads((metrics_dir / "eval" / "teacher.json").read_text())
    row = table.rows[0]
    assert row[1].value == teacher["miou"]["text"] == 1.0  # the oracle is perfect on the fakes
    assert row[4].value == teacher["presence"]["f1"]
    assert row[5].value == teacher["prompt_sensitivity"]["value"]
    assert row[6].value == teacher["saco"]["cgF1"]
    assert row[7].text() == "skipped: no video index given"  # the driver's own reason, not a number
    student_video = table.rows[2]
    assert student_video[1].text() == "missing (stage evaluate@student_video not run)"


def test_quantization_drop_and_skips(metrics_dir):
    rows = {r[0].value: r for r in quantization_table(metrics_dir, PARAMS).rows}
    student = json.loads((metrics_dir / "eval" / "student.json").read_text())["miou"]["text"]
    int8 = rows["int8"]
    assert int8[3].value == pytest.approx(3.0) and int8[4].value == 0.3
    assert int8[5].value == pytest.approx(student - 0.125)
    assert int8[6].value == pytest.approx(0.125)
    assert rows["qat"][2].text() == "skipped: QAT checkpoint not present"
    assert rows["qat"][5].value is None and rows["qat"][6].value is None


def test_deployment_reads_export_and_benchmark(metrics_dir):
    rows = {r[0].value: r for r in deployment_table(metrics_dir).rows}
    x = rows["xnnpack"]
    assert [c.value for c in x[3:]] == ["ok", pytest.approx(3.0), 12.5, 31.0, 210.0, 0.97]
    c = rows["coreml"]
    assert c[3].text() == "skipped: the Core ML delegate needs an Apple OS"
    assert all(cell.value is None for cell in c[4:])


def test_deployment_states_why_a_benchmark_figure_is_absent(metrics_dir, tmp_path):
    import shutil

    root = tmp_path / "m"
    shutil.copytree(metrics_dir, root)
    for model, variant in (("student", "8da4w"), ("real", "int8")):
        write_json(
            root / "export" / model / f"xnnpack_{variant}.json",
            {
                "backend": "xnnpack",
                "model": model,
                "variant": variant,
                "status": "ok",
                "reason": "",
                "file_bytes": 1024 * 1024,
                "files": {"text.pte": {}, "image.pte": {}},
                "delegated_fraction": 1.0,
            },
        )
    rows = {(r[1].value, r[2].value): r for r in deployment_table(root).rows}
    assert rows[("student", "8da4w")][5].text() == "not run here: XnnpackBackend not registered"
    assert rows[("real", "int8")][5].text() == "skipped: no exports under exports/pte/real"
    assert rows[("student", "8da4w")][8].value == 1.0  # from the export metrics itself
    (root / "benchmark.json").unlink()
    rows = {(r[1].value, r[2].value): r for r in deployment_table(root).rows}
    assert rows[("student", "int8")][5].text() == "missing (stage benchmark not run)"


def test_gates_verdicts_come_from_gates_json(metrics_dir):
    table = gates_table(metrics_dir)
    rows = {r[0].value: r for r in table.rows}
    assert rows["miou_ratio_text"][3].value in ("GO", "NO-GO")
    assert rows["pte_size_mb"][3].text().startswith("unknown: benchmark stage not run")
    assert any("Decision: **NO-GO**" in n for n in table.notes)


def test_everything_missing_never_crashes(tmp_path):
    sections = report_tables(tmp_path / "none", PARAMS, lock=None)
    cells = [c for t in sections["main"] for r in t.rows for c in r]
    assert not any(c.number() is not None for c in cells)  # no figure made up
    texts = {c.text() for c in cells}
    assert "missing (stage quantize not run)" in texts and "missing (stage gates not run)" in texts
    assert "missing (no dvc.lock: run dvc repro)" in texts


def test_write_report_end_to_end(metrics_dir, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{RESULTS_START}\n{RESULTS_END}\n")
    lock = {"schema": "2.0", "stages": {"data": {"outs": [{"path": "data/index", "size": 2048, "nfiles": 3}]}}}
    (tmp_path / "data" / "index").mkdir(parents=True)
    written = write_report(
        metrics_dir,
        PARAMS,
        lock=lock,
        out_dir=tmp_path / "reports",
        plots_dir=tmp_path / "reports" / "plots",
        gallery=tmp_path / "reports" / "visual_qa" / "index.html",
        readme=readme,
        root=tmp_path,
    )
    md = (tmp_path / "reports" / "report.md").read_text()
    assert "| data | data/index | 2.0 KiB | 3 | yes |" in md
    assert "Visual QA gallery (missing: stage visual_qa not run)](visual_qa/index.html)" in md
    assert "### metrics/gates.json" in md  # the appendix lists every metrics file
    assert "### Quality (val split)" in readme.read_text()
    student_miou = json.loads((metrics_dir / "eval" / "student.json").read_text())["miou"]["text"]
    variants = json.loads((tmp_path / "reports" / "plots" / "variants.json").read_text())
    assert variants == [
        {
            "variant": "student/int8@xnnpack",
            "backend": "xnnpack",
            "size_mb": pytest.approx(3.0),
            "latency_ms": 12.5,
            "fps": 31.0,
            "miou": pytest.approx(student_miou - 0.125),  # metrics/eval/pte_xnnpack_int8.json via report.quantized
        }
    ]
    presence = json.loads((tmp_path / "reports" / "plots" / "presence.json").read_text())
    assert [p["model"] for p in presence] == ["teacher", "student"]
    assert len(written) == 6
    assert written[3].name == "pipeline.json" and json.loads(written[3].read_text()) == {}  # no stage times


def test_stage_times_table_reads_the_stages_own_records(tmp_path):
    from sam3_edge.report.tables import stage_times_table
    from stages._common import record_stage_time  # the writer every stage uses

    missing = stage_times_table(tmp_path)
    assert missing.rows[0][0].value is None and "missing" in missing.rows[0][0].note
    record_stage_time(tmp_path / "pipeline.json", "data", 20.0)
    record_stage_time(tmp_path / "pipeline.json", "export@xnnpack-int8", 60.0)
    table = stage_times_table(tmp_path)
    assert [r[0].value for r in table.rows] == ["export@xnnpack-int8", "data", "total"]  # slowest first
    assert [r[1].value for r in table.rows] == [60.0, 20.0, 80.0] and table.rows[0][2].value == 0.75
    # a stage dvc.yaml no longer has (renamed) is not counted when the lock is given
    pruned = stage_times_table(tmp_path, {"stages": {"data": {}}})
    assert [(r[0].value, r[1].value) for r in pruned.rows] == [("data", 20.0), ("total", 20.0)]
    assert "export@xnnpack-int8" in pruned.notes[0]
    # the declared pipeline-time metric sums the same stages as the table
    from sam3_edge.report.tables import pipeline_summary

    assert pipeline_summary(tmp_path) == {"total_s": 80.0}
    assert pipeline_summary(tmp_path, {"stages": {"data": {}}}) == {"total_s": 20.0}
    assert pipeline_summary(tmp_path / "nowhere") == {}


def test_deployment_marks_an_export_from_before_the_split_stale(metrics_dir, tmp_path):
    import shutil

    root = tmp_path / "m"
    shutil.copytree(metrics_dir, root)
    one_file = {"backend": "xnnpack", "model": "real", "variant": "int8", "status": "ok", "file_bytes": 1024 * 1024}
    write_json(root / "export" / "real" / "xnnpack_int8.json", one_file)  # no per-file sizes: one model.pte
    rows = {(r[1].value, r[2].value): r for r in deployment_table(root).rows}
    assert rows[("real", "int8")][3].text().startswith("ok (stale: one model.pte")
    assert rows[("student", "int8")][3].value == "ok"


def test_quantization_table_shows_the_pte_video_figure(metrics_dir, tmp_path):
    """A .pte's J&F (its eval's video block: the deployed video_step) beside the baseline's, and the drop."""
    import shutil

    root = tmp_path / "metrics"
    shutil.copytree(metrics_dir, root)
    for name, jf in (("student", 0.8), ("pte_xnnpack_int8", 0.7)):
        path = root / "eval" / f"{name}.json"
        data = json.loads(path.read_text())
        data["video"] = {"J_and_F": jf, "video_path": "predict_video"}
        path.write_text(json.dumps(data))
    int8 = {r[0].value: r for r in quantization_table(root, PARAMS).rows}["int8"]
    assert int8[7].value == pytest.approx(0.7) and int8[8].value == pytest.approx(0.1)
    # the fixture's own eval files hold no video figure: said, not a number
    plain = {r[0].value: r for r in quantization_table(metrics_dir, PARAMS).rows}["int8"]
    assert plain[7].value is None and plain[8].value is None and plain[7].text()
