"""``PtePredictor.predict_video`` on a stub program: the protocol it drives and the refusal of old files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sam3_edge.deploy.runtime import PtePredictor
from sam3_edge.models.config import StudentConfig
from sam3_edge.models.encoders import build_tokenizer
from sam3_edge.types import Prompt

CONFIG = StudentConfig(name="stub", image_size=32, backbone="repvit_m0_9", dim=8, context_length=8, num_queries=3)


class _Bundle:
    """``text`` -> (emb, valid); ``video_step`` -> the image outputs + the state + 1 (or only masks, scores, state)."""

    folder = Path("stub")

    def __init__(self, outputs: int) -> None:
        self.outputs, self.calls = outputs, []

    def run(self, method, inputs):
        if method == "text":
            ids = inputs[0]
            return [torch.ones(1, ids.shape[1], CONFIG.dim), (ids > 0).float()]
        frame, emb, valid, points, box, box_valid, state, state_valid = inputs
        self.calls.append((frame.shape, float(box_valid), float(state_valid), float(state.mean())))
        q = CONFIG.num_queries
        masks, scores = torch.zeros(1, q, 8, 8), torch.full((1, q), 0.9)
        if self.outputs == 3:
            return [masks, scores, state + 1]
        return [masks, torch.zeros(1, q, 4), scores, torch.ones(1), torch.ones(1, q), state + 1]


def _predictor(outputs: int) -> PtePredictor:
    p = object.__new__(PtePredictor)  # the constructor loads files; the protocol needs none of them
    p.config, p.image_size, p.name = CONFIG, CONFIG.image_size, "stub"
    p.tokenizer = build_tokenizer(CONFIG.context_length)
    p.program = _Bundle(outputs)
    return p


def test_predict_video_carries_the_state_and_prompts_the_first_frame_only():
    p = _predictor(6)
    preds = p.predict_video(torch.rand(3, 3, 64, 64), Prompt(kind="box", box=(4.0, 4.0, 40.0, 40.0)))
    assert len(preds) == 3 and preds[0].scores.shape == (1, CONFIG.num_queries)
    # frames resized to the student's size; the box on frame 0 only (follow_prompt); the memory invalid on frame 0,
    # then the state the step before returned
    assert [c[0] for c in p.program.calls] == [(1, 3, 32, 32)] * 3
    assert [c[1] for c in p.program.calls] == [1.0, 0.0, 0.0]
    assert [c[2:] for c in p.program.calls] == [(0.0, 0.0), (1.0, 1.0), (1.0, 2.0)]


def test_predict_video_refuses_a_video_step_exported_before_the_whole_prediction():
    with pytest.raises(ValueError, match="video_step returns 3 outputs.*re-export"):
        _predictor(3).predict_video(torch.rand(2, 3, 32, 32), Prompt(kind="text", text="red circle"))
