"""The prompt-path check recorded after each student stage (sam3_edge.train.diagnostics)."""

from __future__ import annotations

import numpy as np
import torch

from sam3_edge.models import build_student
from sam3_edge.train.diagnostics import mean_pairwise_cosine, prompt_diagnostics, roc_auc


def test_roc_auc_and_cosine_by_hand():
    scores = np.array([0.9, 0.4, 0.4, 0.1])
    labels = np.array([True, True, False, False])
    # positive/negative pairs: (0.9 > 0.4, 0.9 > 0.1, 0.4 = 0.4 -> 1/2, 0.4 > 0.1) = 3.5 / 4
    assert roc_auc(scores, labels) == 0.875
    assert roc_auc(scores, np.ones(4, dtype=bool)) is None
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # cosines: (0, 1/sqrt2, 1/sqrt2) over the 3 pairs
    assert abs(mean_pairwise_cosine(v) - (2 / 2**0.5) / 3) < 1e-6


def test_check_runs_on_val_pairs_and_restores_training_mode(train_data, tmp_path):
    index_dir, _, _ = train_data
    student = build_student("tiny", seed=0)
    student.train()
    out = prompt_diagnostics(student, index_dir / "concepts_val.json", max_pairs=12, batch_size=4)
    assert student.training
    assert out["pairs"] == min(12, out["pairs"]) and out["pairs"] > 0
    assert 0.0 <= out["presence_auc"] <= 1.0 and out["text_presence_loss"] > 0
    gap = out["presence_logit_positive"] - out["presence_logit_negative"]
    assert abs(out["presence_gap"] - gap) < 1e-3
    assert -1.0 <= out["prompt_vec_cosine"] <= 1.0 and out["phrases"] >= 2
    again = prompt_diagnostics(student, index_dir / "concepts_val.json", max_pairs=12, batch_size=4)
    assert again == out  # the same seeded pairs every time
