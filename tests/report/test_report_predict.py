from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sam3_edge.cli import main
from sam3_edge.report.predict import build_prompt, load_model
from tests.support.train import save_student


def test_build_prompt_kinds_and_errors():
    assert build_prompt("red circle", None, None, width=64, height=48).kind == "text"
    p = build_prompt("red circle", (10, 20), None, width=64, height=48)
    assert p.kind == "point" and p.points == ((10, 20, 1),) and p.text == "red circle"
    assert build_prompt(None, None, (1, 2, 30, 40), width=64, height=48).box == (1, 2, 30, 40)
    with pytest.raises(ValueError, match="not both"):
        build_prompt("x", (1, 1), (0, 0, 2, 2), width=64, height=48)
    with pytest.raises(ValueError, match="outside the 64x48 image"):
        build_prompt("x", (10, 50), None, width=64, height=48)
    with pytest.raises(ValueError, match="give --prompt"):
        build_prompt(None, None, None, width=64, height=48)


def test_load_model_needs_exactly_one_source(tmp_path):
    with pytest.raises(ValueError, match="exactly one"):
        load_model()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(pte=str(tmp_path / "missing.pte"))


@pytest.mark.parametrize("args", [["--point", "1"], ["--box", "5,5,1,1"], ["--box", "a,b,c,d"]])
def test_bad_coordinates_are_usage_errors(args, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["predict", "--image", "x.png", "--checkpoint", "c", "--out", str(tmp_path / "o.png"), *args])
    assert exc.value.code == 2
    assert "X" in capsys.readouterr().err


def test_checkpoint_and_pte_are_exclusive_and_required(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--image", "x.png", "--prompt", "a", "--out", "o.png"])
    with pytest.raises(SystemExit):
        main(["predict", "--image", "x.png", "--prompt", "a", "--checkpoint", "c", "--pte", "p", "--out", "o.png"])


def test_unreadable_image_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    rc = main(
        [
            "predict",
            "--image",
            str(tmp_path / "bad.png"),
            "--prompt",
            "a",
            "--checkpoint",
            "c",
            "--out",
            str(tmp_path / "o.png"),
        ]
    )
    assert rc == 2 and "cannot read image" in capsys.readouterr().err


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    path = tmp_path_factory.mktemp("ckpt") / "student.safetensors"
    return save_student(path)


@pytest.mark.parametrize(
    "prompt", [["--prompt", "red circle"], ["--prompt", "red circle", "--point", "30,40"], ["--box", "10,10,60,50"]]
)
def test_predict_with_a_checkpoint_prints_and_writes_overlay(checkpoint, tmp_path, capsys, prompt):
    image = np.zeros((64, 80, 3), np.uint8)
    image[20:50, 20:50] = (220, 40, 40)
    Image.fromarray(image).save(tmp_path / "img.png")
    out = tmp_path / "overlay.png"
    rc = main(
        [
            "predict",
            "--image",
            str(tmp_path / "img.png"),
            *prompt,
            "--checkpoint",
            str(checkpoint),
            "--out",
            str(out),
            "--threshold",
            "0.5",
        ]
    )
    text = capsys.readouterr().out
    assert rc == 0 and "presence " in text and f"overlay written to {out}" in text
    assert "(80x64)" in text
    if "--prompt" in prompt and len(prompt) == 2:
        assert "#1  score" in text or "is absent" in text  # instances listed, or the absent answer stated
    else:
        assert "#1  score" in text and "top query" in text
    overlay = np.asarray(Image.open(out))
    assert overlay.shape == (64, 80, 3)


def test_pte_path_lists_every_instance(monkeypatch, tmp_path, capsys):
    """--pte goes to sam3_edge.deploy.runtime.PtePredictor (here an oracle in its place: the real runner needs an
    export, minutes of lowering); the instances it finds are printed with their boxes and drawn."""
    import sam3_edge.deploy.runtime as runtime
    from tests.support.fakes import REPORT_SCENES, ColourOracle

    class OraclePte(ColourOracle):
        def __init__(self, path, *, name=None):
            super().__init__(REPORT_SCENES)
            self.name = name or f"pte:{path.name}"

    monkeypatch.setattr(runtime, "PtePredictor", OraclePte)
    image, masks = REPORT_SCENES.scene(REPORT_SCENES.layouts[0])
    Image.fromarray(image).save(tmp_path / "img.png")
    (tmp_path / "export").mkdir()
    out = tmp_path / "o.png"
    rc = main(
        [
            "predict",
            "--image",
            str(tmp_path / "img.png"),
            "--prompt",
            "red square",
            "--pte",
            str(tmp_path / "export"),
            "--out",
            str(out),
        ]
    )
    text = capsys.readouterr().out
    assert rc == 0 and text.startswith("pte:export: ")
    assert "#1  score 0.950  box [4, 4, 16, 16]  area 144 px" in text
    assert "#2  score 0.950  box [28, 6, 40, 18]  area 144 px" in text and "#3" not in text
    overlay = np.asarray(Image.open(out)).astype(int)
    assert (overlay[masks["red"].any(0)] != image[masks["red"].any(0)]).any()  # the instances are drawn
    assert (overlay[30:40, 30:40] == image[30:40, 30:40]).all()  # background untouched
