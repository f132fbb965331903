"""metrics/student_seeds.json: per-seed ratios, the quality bar and the spread (hand-computed)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from sam3_edge.eval.seeds import summarize_seeds

ROOT = Path(__file__).resolve().parents[2]


def _metrics(text, point, box, f1, sens, cg, jf=0.8):
    return {
        "miou": {"text": text, "point": point, "box": box},
        "presence": {"f1": f1},
        "prompt_sensitivity": {"value": sens},
        "saco": {"cgF1": cg},
        "video": {"J_and_F": jf},
    }


def test_ratios_bar_and_spread():
    teacher = _metrics(0.6, 0.6, 0.6, 0.9, 0.6, 0.4)
    good = _metrics(0.54, 0.6, 0.57, 0.9, 0.5, 0.3)  # text 0.9, sens 0.833, cgF1 0.75 of the teacher
    weak = _metrics(0.3, 0.6, 0.6, 0.8, 0.6, 0.4)  # text 0.5 x, F1 0.8 < 0.85
    out = summarize_seeds({0: good, 1: weak}, teacher)
    assert out["seeds"]["0"]["bar_met"] and not out["seeds"]["1"]["bar_met"]
    assert out["seeds"]["0"]["ratios"]["text_miou"] == 0.9
    assert out["seeds"]["1"]["bar"]["presence_f1"] == {"value": 0.8, "needs": 0.85, "met": False}
    assert out["summary"]["figures"]["text_miou"] == {"mean": 0.42, "std": 0.12, "min": 0.3, "max": 0.54}
    assert out["summary"]["ratios"]["text_miou"]["mean"] == 0.7
    assert not out["all_seeds_meet_bar"]


def test_a_missing_figure_is_missing_not_zero():
    teacher = _metrics(0.6, 0.6, 0.6, 0.9, 0.6, 0.4)
    partial = _metrics(0.6, 0.6, 0.6, 0.9, 0.6, 0.4)
    del partial["saco"]
    row = summarize_seeds({2: partial}, teacher)["seeds"]["2"]
    assert "cgF1" not in row["figures"] and any(m.startswith("cgF1") for m in row["missing"])
    assert not row["bar_met"]


def test_video_j_and_f_is_part_of_the_bar():
    teacher = _metrics(0.6, 0.6, 0.6, 0.9, 0.6, 0.4, jf=0.8)
    out = summarize_seeds({0: _metrics(0.6, 0.6, 0.6, 0.9, 0.6, 0.4, jf=0.64)}, teacher)  # 0.8 x the teacher's
    row = out["seeds"]["0"]
    assert row["bar"]["video_j_and_f"] == {"ratio": 0.8, "needs": 0.85, "met": False} and not row["bar_met"]
    assert out["summary"]["ratios"]["video_j_and_f"]["mean"] == 0.8


def test_the_seed_runner_reuses_the_pipeline_commands_with_outputs_moved():
    spec = importlib.util.spec_from_file_location("student_seeds", ROOT / "scripts" / "student_seeds.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cmds = dict(mod.stage_commands(ROOT))
    assert list(cmds) == [*mod.CHAIN, "evaluate@student"]
    argv = mod.redirect(cmds["distill_phase2"], "runs/seeds/seed-1", "runs/seeds/seed-1/params.yaml")
    assert argv[0] == sys.executable
    assert argv[argv.index("--params") + 1] == "runs/seeds/seed-1/params.yaml"
    assert argv[argv.index("--init") + 1] == "runs/seeds/seed-1/checkpoints/distill_phase1/final.safetensors"
    assert argv[argv.index("--cache") + 1] == "cache/teacher/train"  # shared inputs stay
    ev = mod.redirect(cmds["evaluate@student"], "runs/x", "p.yaml")
    assert ev[ev.index("--spec") + 1] == "student:runs/x/checkpoints/distill_video/final.safetensors"
    assert ev[ev.index("--metrics") + 1] == "runs/x/metrics/eval/student.json"


def test_the_seed_run_key_follows_params_and_code(tmp_path):
    """A seed's stored evaluation is reused only under the same params and code (it was reused after any change)."""
    import shutil

    spec = importlib.util.spec_from_file_location("student_seeds", ROOT / "scripts" / "student_seeds.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("dvc.yaml", "dvc.lock", "params.yaml"):
        shutil.copy(ROOT / name, root / name)
    (root / ".dvc").mkdir()
    (root / ".dvc/config").write_text("[core]\n    no_scm = True\n")
    shutil.copytree(ROOT / "stages", root / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "src", root / "src", ignore=shutil.ignore_patterns("__pycache__"))
    key = mod.run_key(root, "a: 1\n")
    assert key == mod.run_key(root, "a: 1\n")
    assert key != mod.run_key(root, "a: 2\n")
    loss = root / "src/sam3_edge/train/phases.py"
    loss.write_text(loss.read_text() + "\n# changed\n")
    assert key != mod.run_key(root, "a: 1\n")
