"""TeacherAdapter: output shapes for every prompt kind, grouping, Predictor contract, save/load, tokenizer."""

from __future__ import annotations

import pytest
import torch

from sam3_edge.cache.build import output_shapes
from sam3_edge.teacher import TeacherWeightsMissing, load_teacher
from sam3_edge.teacher.tokenizer import build_word_tokenizer
from sam3_edge.types import Prompt
from tests.support.teacher import TINY_TEACHER

S = 96  # prompts are in pixels of the S x S input; the adapter resizes to its 56 px
PROMPTS = [
    Prompt(kind="text", text="red circle"),
    Prompt(kind="point", text="red circle", points=((10.0, 20.0, 1), (50.0, 60.0, 0))),
    Prompt(kind="box", box=(5.0, 6.0, 40.0, 70.0)),
    Prompt(kind="text", text="large blue square"),
]


@pytest.fixture(scope="module")
def adapter(tiny_teacher_dir):
    return load_teacher(tiny_teacher_dir)


def test_outputs_have_contract_shapes_for_every_prompt_kind(adapter):
    images = torch.rand(len(PROMPTS), 3, S, S)
    out = adapter(images, PROMPTS)
    shapes = output_shapes(adapter.model.config, levels=(0, 1), image_size=56)
    q = TINY_TEACHER.model.num_queries
    assert out["mask_logits"].shape == (4, q, 8, 8)
    assert out["boxes"].shape == (4, q, 4)
    assert out["class_logits"].shape == (4, q)
    assert out["presence_logit"].shape == (4,)
    for name, shape in {**shapes["image"], **shapes["sample"]}.items():
        key = "presence_logit" if name == "presence_logit" else name
        assert tuple(out[key].shape[1:]) == (shape if name != "presence_logit" else ()), name
    assert out["fpn_0"].shape == (4, 32, 8, 8) and out["fpn_1"].shape == (4, 32, 4, 4)
    boxes = out["boxes"]
    assert torch.all(boxes[..., 2] >= boxes[..., 0]) and torch.all(boxes[..., 3] >= boxes[..., 1])  # xyxy


def test_mixed_batch_equals_single_prompt_calls(adapter):
    images = torch.rand(len(PROMPTS), 3, S, S)
    with torch.no_grad():
        batched = adapter(images, PROMPTS)
        for i, prompt in enumerate(PROMPTS):
            single = adapter(images[i : i + 1], [prompt])
            for name in ("mask_logits", "class_logits", "presence_logit", "encoder", "text"):
                torch.testing.assert_close(batched[name][i], single[name][0], atol=1e-4, rtol=1e-4)


def test_text_embedding_follows_the_phrase(adapter):
    images = torch.rand(3, 3, S, S)
    prompts = [Prompt(kind="text", text=t) for t in ("red circle", "large blue square", "red circle")]
    with torch.no_grad():
        text = adapter(images, prompts)["text"]  # [B, D]: the phrase only, whatever the image
    torch.testing.assert_close(text[0], text[2])
    assert not torch.allclose(text[0], text[1])


def test_geometry_changes_the_answer(adapter):
    images = torch.rand(1, 3, S, S).repeat(2, 1, 1, 1)
    with torch.no_grad():
        out = adapter(
            images, [Prompt(kind="box", box=(0.0, 0.0, 20.0, 20.0)), Prompt(kind="box", box=(50, 50, 90, 90))]
        )
    assert not torch.allclose(out["mask_logits"][0], out["mask_logits"][1])


def test_predict_implements_predictor(adapter):
    pred = adapter.predict(torch.rand(4, 3, S, S), PROMPTS)
    assert adapter.image_size == 56 and isinstance(adapter.name, str)
    assert pred.scores.shape == (4, TINY_TEACHER.model.num_queries) and pred.presence.shape == (4,)
    assert torch.all((pred.scores >= 0) & (pred.scores <= pred.presence[:, None] + 1e-6))


def test_reload_gives_identical_outputs(tiny_teacher_dir, adapter):
    again = load_teacher(tiny_teacher_dir)
    images = torch.rand(2, 3, S, S)
    with torch.no_grad():
        a, b = adapter(images, PROMPTS[:2]), again(images, PROMPTS[:2])
    torch.testing.assert_close(a["mask_logits"], b["mask_logits"])


def test_word_tokenizer_is_clip_shaped_and_offline():
    tok = build_word_tokenizer(["Red circle", "small blue square"])
    ids = tok(["red circle", "purple circle"], padding="max_length", max_length=32)["input_ids"]
    assert len(ids[0]) == 32
    assert ids[0][:4] == [0, tok.convert_tokens_to_ids("red"), tok.convert_tokens_to_ids("circle"), 1]
    assert ids[1][1] == tok.unk_token_id  # unseen word


def test_missing_real_weights_fail_with_instructions(tmp_path):
    with pytest.raises(TeacherWeightsMissing, match="huggingface-cli download facebook/sam3"):
        load_teacher(tmp_path)  # a directory without weights
    with pytest.raises(TeacherWeightsMissing, match="teacher.source"):
        load_teacher("facebook/sam3-not-cached-here")
    with pytest.raises(FileNotFoundError, match="dvc repro teacher"):
        load_teacher("bootstrap")


def test_bad_fpn_level_is_rejected(tiny_teacher_dir):
    with pytest.raises(ValueError, match="fpn_levels"):
        load_teacher(tiny_teacher_dir, fpn_levels=(7,))
