"""Self-describing checkpoints: round trip, strict loading, model rebuilt from model_config alone."""

from __future__ import annotations

import pytest
import torch

from sam3_edge.core.checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from sam3_edge.models import build_student, load_student


def test_round_trip_and_load_student(tmp_path):
    model = build_student("tiny", seed=5)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(**model.example_inputs(1))["mask_logits"].mean().backward()
    opt.step()
    rng = capture_rng_state()
    path = tmp_path / "ck.safetensors"
    save_checkpoint(
        path,
        model=model,
        model_config=model.config.to_json(),
        step=7,
        epoch=1,
        params_hash="abc",
        stage="unit",
        optimizer=opt,
        rng_state=rng,
        extra_state={"a.w": torch.ones(2)},
    )
    ck = load_checkpoint(path)
    assert (ck.step, ck.epoch, ck.params_hash, ck.stage) == (7, 1, "abc", "unit")
    assert torch.equal(ck.extra_state["a.w"], torch.ones(2))
    opt2 = torch.optim.AdamW(model.parameters(), lr=1e-3)
    opt2.load_state_dict(ck.optimizer_state)  # optimizer state survives without pickle
    a = torch.rand(3)
    restore_rng_state(ck.rng_state)
    assert torch.equal(torch.rand(3), (restore_rng_state(rng), torch.rand(3))[1]) and not torch.equal(a, torch.rand(3))
    loaded, meta = load_student(path)
    assert meta["step"] == 7 and loaded.config == model.config
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k


def test_strict_errors_name_the_file(tmp_path):
    model = build_student("tiny", seed=0)
    path = tmp_path / "ck.safetensors"
    save_checkpoint(path, model=model, model_config=model.config.to_json(), step=0, epoch=0, params_hash="h", stage="s")
    bad = tmp_path / "trunc.safetensors"
    bad.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match="trunc.safetensors"):
        load_checkpoint(bad)
    with pytest.raises(FileNotFoundError, match="nope"):
        load_checkpoint(tmp_path / "nope.safetensors")
    cfg = model.config.to_json()
    cfg["dim"] = 32  # weights no longer fit the config: strict load refuses
    save_checkpoint(path, model=model, model_config=cfg, step=0, epoch=0, params_hash="h", stage="s")
    with pytest.raises(RuntimeError, match="size mismatch"):
        load_student(path)
