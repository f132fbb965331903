"""The image teacher's video reference (``TeacherAdapter.predict_video``): tracking by detection."""

from __future__ import annotations

import pytest
import torch

from sam3_edge.teacher.adapter import TeacherAdapter
from sam3_edge.types import Prediction, Prompt


class _Recorder:
    """Stands in for the adapter: records each frame's prompt, answers with one query at a scripted box/score."""

    def __init__(self, answers):
        self.answers, self.prompts = answers, []

    def predict(self, images, prompts):
        self.prompts.append(prompts[0])
        box, score = self.answers[len(self.prompts) - 1]
        return Prediction(
            mask_logits=torch.zeros(1, 1, 8, 8),
            boxes=torch.tensor([[box]]),
            scores=torch.tensor([[score]]),
            presence=torch.tensor([score]),
        )


def test_a_box_prompt_follows_the_previous_frame_and_keeps_the_last_confident_box():
    answers = [
        ((0.1, 0.1, 0.3, 0.3), 0.9),
        ((0.2, 0.1, 0.4, 0.3), 0.9),
        ((0.0, 0.0, 1.0, 1.0), 0.1),
        ((0.5, 0.5, 0.6, 0.6), 0.8),
    ]
    fake = _Recorder(answers)
    start = Prompt(kind="box", box=(0.0, 0.0, 10.0, 10.0), text="red square")
    preds = TeacherAdapter.predict_video(fake, torch.rand(4, 3, 100, 100), start)
    assert len(preds) == 4
    boxes = [p.box for p in fake.prompts]
    assert boxes[0] == start.box
    assert boxes[1] == pytest.approx((10.0, 10.0, 30.0, 30.0))  # frame 0's box, in pixels
    assert boxes[2] == pytest.approx((20.0, 10.0, 40.0, 30.0))
    assert boxes[3] == boxes[2]  # frame 2 scored 0.1 < 0.5: the last confident box is kept
    assert all(p.kind == "box" and p.text == "red square" for p in fake.prompts)


def test_a_text_prompt_is_asked_on_every_frame():
    fake = _Recorder([((0.1, 0.1, 0.3, 0.3), 0.9)] * 3)
    TeacherAdapter.predict_video(fake, torch.rand(3, 3, 32, 32), Prompt(kind="text", text="blue circle"))
    assert [p.text for p in fake.prompts] == ["blue circle"] * 3 and {p.kind for p in fake.prompts} == {"text"}
