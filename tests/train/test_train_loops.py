"""Training loops on a fake teacher cache: smoke runs, no teacher loaded, resume == uninterrupted, video freeze."""

from __future__ import annotations

import sys

import pytest
import torch

from sam3_edge.cache import open_cache
from sam3_edge.models import build_student, load_student
from sam3_edge.train.config import FinetuneParams, OptimParams, Phase1Params, Phase2Params, QatParams, VideoParams
from sam3_edge.train.finetune import finetune_saco, qat
from sam3_edge.train.loop import FINAL, LAST, TrainRun
from sam3_edge.train.phases import distill_phase1, distill_phase2
from sam3_edge.train.video import distill_video
from tests.support.train import train_tiny

OPT = OptimParams(steps=3, batch_size=2, checkpoint_every=2, log_every=1, warmup_steps=1)


@pytest.fixture
def no_teacher(monkeypatch):
    """Any import of sam3_edge.teacher (or transformers' Sam3Model) during the test raises ImportError."""
    for name in [m for m in sys.modules if m.startswith("sam3_edge.teacher")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sam3_edge.teacher", None)


def test_phase1_then_phase2_without_the_teacher(train_data, tmp_path, no_teacher):
    _, cache_dir, _ = train_data
    cache = open_cache(cache_dir)
    m1 = train_tiny(distill_phase1, cache, Phase1Params(optim=OPT, gt_weight=0.5), tmp_path / "p1")
    assert m1["steps"] == 3 and m1["final_losses"]["align_fpn"] > 0 and m1["feature_levels"] == {"fpn_0": 1, "fpn_1": 2}
    assert m1["final_losses"]["align_text"] > 0  # the text tower is distilled from the cached phrase embeddings
    assert (tmp_path / "p1" / FINAL).exists() and (tmp_path / "p1" / LAST).exists()
    m2 = train_tiny(
        distill_phase2, cache, Phase2Params(optim=OPT), tmp_path / "p2", seed=1, init_from=tmp_path / "p1" / FINAL
    )
    for key in ("kd_mask", "kd_presence", "gt_total", "total"):
        assert key in m2["final_losses"]
    assert m2["samples_per_s"] > 0 and m2["wall_s"] > 0 and m2["prompt_mix_skipped"] == {}
    assert "sam3_edge.teacher" not in [k for k, v in sys.modules.items() if v is not None]
    model, meta = load_student(tmp_path / "p2" / FINAL)
    assert meta["stage"] == "distill_phase2" and meta["step"] == 3


@pytest.mark.slow
def test_killed_and_resumed_equals_uninterrupted(train_data, tmp_path):
    _, cache_dir, _ = train_data
    cache = open_cache(cache_dir)
    params = Phase2Params(optim=OptimParams(steps=5, batch_size=2, checkpoint_every=2, log_every=1, warmup_steps=1))
    train_tiny(distill_phase2, cache, params, tmp_path / "a", params_hash="h")
    # "killed" after 3 steps of the first run: the last checkpoint is at step 2, step 3 is lost
    partial = train_tiny(distill_phase2, cache, params, tmp_path / "b", params_hash="h", stop_after=3)
    assert not (tmp_path / "b" / FINAL).exists()
    assert partial["steps"] == 3
    resumed = train_tiny(distill_phase2, cache, params, tmp_path / "b", params_hash="h")
    assert resumed["resumed_from_step"] == 2 and resumed["steps"] == 5
    a, _ = load_student(tmp_path / "a" / FINAL)
    b, _ = load_student(tmp_path / "b" / FINAL)
    for k, v in a.state_dict().items():
        torch.testing.assert_close(b.state_dict()[k], v, rtol=0, atol=0, msg=k)
    # other params: the stale checkpoint is not resumed
    fresh = train_tiny(distill_phase2, cache, params, tmp_path / "b", params_hash="other")
    assert fresh["resumed_from_step"] == 0


def test_prompt_mix_skip_is_recorded(train_data, tmp_path):
    _, cache_dir, _ = train_data
    cache = open_cache(cache_dir)
    from sam3_edge.train.data import CachedBatches, MixSampler

    keys = cache.keys()
    kinds = CachedBatches(cache, image_size=224, mask_size=32).kinds(keys)
    only_text = [k for k, kind in zip(keys, kinds, strict=True) if kind == "text"]
    sampler = MixSampler(keys=only_text, kinds=["text"] * len(only_text), mix={"text": 0.5, "box": 0.5}, seed=0)
    assert "box" in sampler.skipped and set(sampler.batch(0, 4)) <= set(only_text)
    full = MixSampler(keys=keys, kinds=kinds, mix={"text": 0.0, "point": 1.0}, seed=0)
    picked = full.batch(3, 16)
    assert all(kinds[keys.index(k)] == "point" for k in picked) and picked == full.batch(3, 16)  # deterministic


def test_video_trains_only_the_memory(train_data, tmp_path, no_teacher):
    _, _, video_dir = train_data
    student = build_student("tiny", seed=0)
    before = {k: v.clone() for k, v in student.state_dict().items()}
    params = VideoParams(optim=OPT, clip_frames=2, prompt_kind="box")
    m = distill_video(student, open_cache(video_dir), params, TrainRun(tmp_path / "v", "v"))
    assert m["steps"] == 3 and m["clips"] >= 1
    changed = {k for k, v in student.state_dict().items() if not torch.equal(v, before[k])}
    assert changed, "memory parameters did not train"
    assert all(k.startswith(("memory_attention.", "memory.")) for k in changed), sorted(changed)[:5]
    assert "memory_attention.gate" in changed
    assert not any(k.startswith("memory.prompt_proj.") for k in changed)  # the latents are no prompt tokens (default)


@pytest.mark.slow
def test_finetune_and_qat_smoke(train_data, tmp_path):
    index_dir, _, _ = train_data
    index = index_dir / "concepts_train.json"
    m = train_tiny(finetune_saco, index, FinetuneParams(optim=OPT), tmp_path / "ft")
    assert m["negative_pairs"] > 0 and m["final_losses"]["presence"] > 0
    q = train_tiny(qat, index, QatParams(optim=OPT), tmp_path / "qat", init_from=tmp_path / "ft" / FINAL)
    assert q["fake_quantized_linears"] > 0 and q["converted_linears"] == q["fake_quantized_linears"]
    model, meta = load_student(tmp_path / "qat" / FINAL)  # plain float weights, strict keys
    assert meta["qat_scheme"] == "8da4w" and meta["stage"] == "qat"
