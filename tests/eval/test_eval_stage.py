from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sam3_edge.eval.config import EvaluateParams
from sam3_edge.eval.driver import evaluate_predictor
from sam3_edge.eval.samples import Skips, video_samples
from sam3_edge.predictors import load_predictor, parse_spec
from tests.support.fakes import EVAL_SCENES, VideoOracle, concept_split, moving_square_video, write_index
from tests.support.train import save_student

ROOT = Path(__file__).resolve().parents[2]
PARAMS = EvaluateParams(batch_size=4, latency_warmup=1, latency_runs=2)


@pytest.fixture
def split(tmp_path):
    return write_index(tmp_path / "data", concept_split(EVAL_SCENES), moving_square_video())


def test_evaluate_predictor_on_index_files(split, tmp_path):
    m = evaluate_predictor(
        VideoOracle(EVAL_SCENES),
        concept_index=split["concepts"],
        image_index=split["images"],
        video_index=split["videos"],
        params=PARAMS,
        predictions_dir=tmp_path / "pred",
    )
    assert m["model"] == "video_oracle" and m["skips"] == {}
    assert m["miou"]["text"] == pytest.approx(1.0) and m["presence"]["f1"] == pytest.approx(1.0)
    assert m["sa1b_miou"]["point"] == pytest.approx(1.0) and m["sa1b_miou"]["box"] == pytest.approx(1.0)
    assert m["counts"]["sa1b_point_prompts"] == 7  # 3 + 3 + 1 instances (cap 4 per image)
    assert m["video"]["objects"] == 2 and m["video"]["J_and_F"] > 0.8  # h264 blurs the colours a little
    names = sorted(p.name for p in (tmp_path / "pred").iterdir())
    assert names == ["box.json", "point.json", "sa1b_box.json", "sa1b_point.json", "text.json"]


def test_video_loader_decodes_masklets(split):
    skips = Skips()
    from sam3_edge.data.datasets import load_video_records

    (clip,) = list(video_samples(split["videos"], load_video_records(split["videos"]), skips=skips))
    ref = moving_square_video()
    assert clip.frames.shape == (9, EVAL_SCENES.size, EVAL_SCENES.size, 3) and not skips.counts
    for ours, theirs in zip(clip.objects, ref.objects, strict=True):
        assert sorted(ours.masks) == sorted(theirs.masks)
        for t in ours.masks:
            np.testing.assert_array_equal(ours.masks[t], theirs.masks[t])


class _Killed(RuntimeError):
    pass


class _CountingOracle(VideoOracle):
    """Counts predict calls; raises after ``fail_after`` calls (a killed run)."""

    def __init__(self, fail_after: int | None = None) -> None:
        super().__init__(EVAL_SCENES)
        self.calls = 0
        self.fail_after = fail_after

    def predict(self, images, prompts):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise _Killed("killed")
        return super().predict(images, prompts)


def test_killed_evaluation_resumes_from_saved_chunks(split, tmp_path):
    params = dataclasses.replace(PARAMS, chunk_size=2, batch_size=1)
    kw = dict(concept_index=split["concepts"], image_index=split["images"], params=params, latency=False)
    reference = evaluate_predictor(_CountingOracle(), **kw)
    resume = tmp_path / "partial"
    with pytest.raises(_Killed):
        evaluate_predictor(_CountingOracle(fail_after=10), **kw, resume_dir=resume, resume_key="k1")
    assert len(list(resume.glob("concepts-*.json"))) >= 1
    again = _CountingOracle()
    resumed = evaluate_predictor(again, **kw, resume_dir=resume, resume_key="k1")
    fresh = _CountingOracle()
    evaluate_predictor(fresh, **kw)
    assert again.calls < fresh.calls  # the saved chunks were not predicted again
    assert resumed == reference
    other = _CountingOracle()
    evaluate_predictor(other, **kw, resume_dir=resume, resume_key="k2")  # another model/params: nothing reused
    assert other.calls == fresh.calls


def test_parse_spec_and_missing_model(tmp_path):
    assert parse_spec("student:models/s.ckpt") == ("student", Path("models/s.ckpt"))
    with pytest.raises(ValueError, match="expected '<kind>:<path>'"):
        parse_spec("models/s.ckpt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_predictor(f"student:{tmp_path}/nope.ckpt")


def _tiny_student_checkpoint(path: Path) -> None:
    from sam3_edge.models import VARIANTS, build_student

    save_student(path, build_student(dataclasses.replace(VARIANTS["tiny"], image_size=64), seed=0))


@pytest.mark.slow  # two interpreter start-ups importing torch + the student (~15-30 s on 2 shared cores)
def test_evaluate_and_gates_stages_smoke(split, tmp_path):
    ckpt = tmp_path / "student.ckpt"
    _tiny_student_checkpoint(ckpt)
    params = tmp_path / "params.yaml"
    params.write_text(
        "evaluate:\n  batch_size: 4\n  latency_warmup: 1\n  latency_runs: 2\n  max_videos: 1\n"
        "gates:\n  teacher: student\n  student: student2\n"
        f"tracking:\n  uri: sqlite:///{tmp_path / 'mlflow.db'}\n  experiment: eval-test\n"
    )
    metrics = tmp_path / "metrics" / "eval"
    cmd = [
        sys.executable,
        "stages/evaluate.py",
        "--params",
        str(params),
        "--model",
        "student",
        "--spec",
        f"student:{ckpt}",
        "--concept-index",
        str(split["concepts"]),
        "--image-index",
        str(split["images"]),
        "--video-index",
        str(split["videos"]),
        "--metrics",
        str(metrics / "student.json"),
        "--predictions",
        str(tmp_path / "pred" / "student"),
    ]
    subprocess.run(cmd, cwd=ROOT, check=True, env={"SAM3_EDGE_QUIET": "1", "PATH": "/usr/bin:/bin"})
    m = json.loads((metrics / "student.json").read_text())
    assert m["model"] == "student" and m["counts"]["pairs"] == 9
    # the student follows each masklet through its memory (StudentPredictor.predict_video): J&F is measured
    assert m["video"]["objects"] > 0 and 0.0 <= m["video"]["J_and_F"] <= 1.0
    assert isinstance(m["miou"]["text"], float) and m["latency"]["image_ms_median"] > 0
    assert (tmp_path / "pred" / "student" / "text.json").exists()
    # one MLflow run for the evaluation: its params, the final metrics and the metrics JSON as an artifact
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("eval-test").experiment_id])
    assert run.data.tags["stage"] == "evaluate" and run.data.params["evaluate.batch_size"] == "4"
    assert run.data.metrics["final.miou.text"] == pytest.approx(m["miou"]["text"])
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["student.json"]
    # the gates stage compares two evaluations: a copy named student2 stands in for the second model
    (metrics / "student2.json").write_text(json.dumps({**m, "model": "student2"}))
    out = tmp_path / "metrics" / "gates.json"
    subprocess.run(
        [
            sys.executable,
            "stages/gates.py",
            "--params",
            str(params),
            "--eval-dir",
            str(metrics),
            "--benchmark",
            str(tmp_path / "missing.json"),
            "--out",
            str(out),
            "--summary-dir",
            str(out.with_name("summary")),
            "--summary-models",
            "student",
            "absent_model",
        ],
        cwd=ROOT,
        check=True,
    )
    gates = json.loads(out.read_text())
    assert gates["decision"] == "no-go" and gates["gates"]["pte_size_mb"]["status"] == "unknown"
    assert gates["figures"]["speedup_student_over_teacher"] > 0
    summary = {f.stem: json.loads(f.read_text()) for f in out.with_name("summary").glob("*.json")}
    assert summary["student"]["text"] == pytest.approx(m["miou"]["text"], abs=1e-4)
    assert "absent_model" not in summary and summary["_gates"]["go"] == 0


def test_skipped_pte_export_is_unavailable_not_a_crash(tmp_path):
    from sam3_edge.predictors import PredictorUnavailable
    from sam3_edge.utils import write_json

    export = tmp_path / "coreml_int8"
    write_json(export / "meta.json", {"status": "skipped", "reason": "coremltools lowering needs macOS"})
    with pytest.raises(PredictorUnavailable, match="needs macOS"):
        load_predictor(f"pte:{export}")


def test_fingerprint_follows_content(tmp_path):
    from sam3_edge.predictors import fingerprint

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "w.bin").write_bytes(b"1")
    before = fingerprint([tmp_path / "d", tmp_path / "missing.json"])
    assert before == fingerprint([tmp_path / "d", tmp_path / "missing.json"])
    (tmp_path / "d" / "w.bin").write_bytes(b"2")
    assert fingerprint([tmp_path / "d", tmp_path / "missing.json"]) != before


def test_intermediate_scope_replaces_only_its_limits():
    from sam3_edge.eval.config import EvaluateParams, IntermediateScope

    params = EvaluateParams(max_pairs=0, max_videos=3, intermediate=IntermediateScope(max_pairs=10, max_images=5))
    assert params.scoped("full") is params
    quick = params.scoped("intermediate")
    assert (quick.max_pairs, quick.max_images, quick.max_videos) == (10, 5, 3)  # 0 keeps the full value
    with pytest.raises(ValueError, match="unknown evaluation scope"):
        params.scoped("tiny")
