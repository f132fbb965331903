"""The loop's learning-rate schedule: warmup, cosine to a floor, and the optional cooldown to a lower floor."""

from __future__ import annotations

import math

import pytest

from sam3_edge.config import ParamsError
from sam3_edge.train.config import OptimParams
from sam3_edge.train.loop import lr_at


def _old_lr_at(step: int, optim: OptimParams) -> float:  # the schedule before min_lr_ratio / cooldown existed
    if step < optim.warmup_steps:
        return optim.lr * (step + 1) / optim.warmup_steps
    span = max(1, optim.steps - optim.warmup_steps)
    progress = min(1.0, (step - optim.warmup_steps) / span)
    return optim.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def test_defaults_keep_the_old_schedule_bit_for_bit():
    for optim in (OptimParams(steps=100, warmup_steps=10), OptimParams(steps=4000, lr=1e-3, warmup_steps=20)):
        assert [lr_at(s, optim) for s in range(optim.steps)] == [_old_lr_at(s, optim) for s in range(optim.steps)]


def test_cooldown_continues_from_the_floor_to_the_final_ratio():
    optim = OptimParams(steps=4400, lr=1e-3, warmup_steps=20, cooldown_steps=400, final_lr_ratio=0.01)
    lrs = [lr_at(s, optim) for s in range(optim.steps)]
    assert lrs[19] == pytest.approx(1e-3)
    assert lrs[3999] == pytest.approx(1e-4, rel=1e-4)  # the main cosine ends at min_lr_ratio
    assert lrs[-1] == pytest.approx(1e-5)  # the cooldown ends at final_lr_ratio
    assert all(a >= b for a, b in zip(lrs[20:], lrs[21:], strict=False))  # never rises after warmup
    assert max(abs(a - b) for a, b in zip(lrs[3990:4010], lrs[3991:4011], strict=False)) < 2e-6  # no jump


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"min_lr_ratio": 1.5}, "min_lr_ratio"),
        ({"final_lr_ratio": 0.2}, "final_lr_ratio"),
        ({"steps": 100, "warmup_steps": 10, "cooldown_steps": 95}, "cooldown_steps"),
    ],
)
def test_bad_schedule_params_name_the_field(kwargs, field):
    with pytest.raises(ParamsError, match=field):
        OptimParams(**kwargs)
