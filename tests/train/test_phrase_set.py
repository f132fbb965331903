"""Grouped multi-phrase distillation: the soft-target losses (hand-computed values) and the grouped batches."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from sam3_edge.train.data import PhraseBatches
from sam3_edge.train.distill_losses import grouped_rank_loss, phrase_set_distill_loss


def test_grouped_rank_loss_by_hand():
    # group 0: teacher softmax [0.75, 0.25], student [0.5, 0.5]; group 1 has one member and is skipped
    student = torch.tensor([0.0, 0.0, 5.0])
    teacher = torch.tensor([math.log(3.0), 0.0, 1.0])
    got = grouped_rank_loss(student, teacher, torch.tensor([0, 0, 1]), temperature=1.0)
    want = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert abs(float(got) - want) < 1e-6
    # at temperature 2 the logits halve: teacher softmax of [ln 3 / 2, 0] = [sqrt 3, 1] / (sqrt 3 + 1)
    got2 = grouped_rank_loss(student, teacher, torch.tensor([0, 0, 1]), temperature=2.0)
    p = math.sqrt(3) / (math.sqrt(3) + 1)
    assert abs(float(got2) - (p * math.log(p / 0.5) + (1 - p) * math.log((1 - p) / 0.5))) < 1e-6
    assert float(grouped_rank_loss(student, teacher, torch.tensor([0, 1, 2]), temperature=1.0)) == 0.0


def test_phrase_set_distill_loss_by_hand():
    # prompt 0: a present phrase, the teacher's query 0 (box [.5 .5 .9 .9]) confident; prompt 1: an absent phrase
    t_presence = torch.tensor([10.0, -10.0])
    t_class = torch.tensor([[10.0, -10.0], [-10.0, -10.0]])
    t_boxes = torch.tensor([[[0.5, 0.5, 0.9, 0.9], [0.0, 0.0, 0.2, 0.2]]] * 2)
    s_presence = torch.tensor([0.0, 0.0])
    s_class = torch.tensor([[2.0, 0.0], [2.0, 0.0]])
    s_boxes = torch.tensor([[[0.0, 0.0, 0.1, 0.1], [0.5, 0.5, 0.8, 0.9]]] * 2)
    out = phrase_set_distill_loss(
        presence_logits=s_presence,
        class_logits=s_class,
        boxes=s_boxes,
        group=torch.tensor([0, 0]),
        teacher_presence_logits=t_presence,
        teacher_class_logits=t_class,
        teacher_boxes=t_boxes,
        temperature=2.0,
    )
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    bce = lambda logit, t: -(t * math.log(sig(logit)) + (1 - t) * math.log(1 - sig(logit)))  # noqa: E731
    # presence: student 0 / T = 0 against sigmoid(+-5)
    want_presence = (bce(0.0, sig(5.0)) + bce(0.0, sig(-5.0))) / 2
    assert abs(float(out["ps_presence"]) - want_presence) < 1e-5
    # rank: teacher softmax over [5, -5] vs the student's [0, 0]
    p = sig(10.0)
    assert abs(float(out["ps_rank"]) - (p * math.log(p / 0.5) + (1 - p) * math.log((1 - p) / 0.5))) < 1e-5
    # class: prompt 0 matches student query 1 (nearest box) -> targets [0, sigmoid(10 / 2)]; prompt 1: all 0
    c0 = (bce(1.0, 0.0) + bce(0.0, sig(5.0))) / 2
    c1 = (bce(1.0, 0.0) + bce(0.0, 0.0)) / 2
    assert abs(float(out["ps_class"]) - (c0 + c1) / 2) < 1e-5
    assert abs(float(out["ps_box"]) - 0.1) < 1e-6  # x1 0.8 vs 0.9, one matched box


def test_phrase_set_loss_has_gradients_on_every_prompt():
    s_presence = torch.zeros(3, requires_grad=True)
    s_class = torch.zeros(3, 4, requires_grad=True)
    out = phrase_set_distill_loss(
        presence_logits=s_presence,
        class_logits=s_class,
        boxes=torch.rand(3, 4, 4),
        group=torch.tensor([0, 0, 1]),
        teacher_presence_logits=torch.tensor([3.0, -3.0, 1.0]),
        teacher_class_logits=torch.randn(3, 5),
        teacher_boxes=torch.rand(3, 5, 4),
    )
    sum(out.values()).backward()
    assert (s_presence.grad.abs() > 0).all() and (s_class.grad.abs().sum(-1) > 0).all()


class _FakePhraseCache:
    """Two images, six phrases each; the teacher finds phrases 0-1 present on image 0 and 0-3 on image 1."""

    def __init__(self, index_file: str, images: list[str]) -> None:
        self.images = images
        self.index_file = index_file
        self.phrases = [f"phrase {i}" for i in range(6)]

    def keys(self):
        return ["img000000", "img000001"]

    def meta(self, key):
        return {"image": self.images[int(key[-1])], "index_file": self.index_file, "phrases": self.phrases}

    def load(self, key):
        n_pos = 2 if key.endswith("0") else 4
        presence = torch.tensor([5.0] * n_pos + [-5.0] * (6 - n_pos)).half()
        return {
            "presence_logit": presence,
            "class_logits": torch.arange(6 * 3, dtype=torch.float16).reshape(6, 3),
            "boxes": torch.rand(6, 3, 4).half(),
        }


def test_phrase_batches_group_present_and_absent_phrases_per_image(train_data):
    index_dir, _, _ = train_data
    records = json.loads((index_dir / "images_train.json").read_text())["records"]
    cache = _FakePhraseCache(str(index_dir / "images_train.json"), [r["image"] for r in records[:2]])
    batches = PhraseBatches(cache, image_size=64, phrases=4, positive_fraction=0.5, seed=0)
    b = batches.batch(step=3, images=2)
    assert b["image"].shape == (2, 3, 64, 64)
    assert len(b["prompts"]) == 8 and b["image_index"].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert torch.equal(b["group"], b["image_index"])
    pos = (b["teacher"]["presence_logit"] > 0).reshape(2, 4).sum(1)
    assert pos.tolist() == [2, 2]  # half present, half absent on each image
    assert b["teacher"]["class_logits"].shape == (8, 3) and b["teacher"]["boxes"].shape == (8, 3, 4)
    for text, row in zip(b["phrases"], b["teacher"]["class_logits"], strict=True):
        assert float(row[0]) == 3 * int(text.split()[-1])  # each phrase carries its own teacher row
    again = batches.batch(step=3, images=2)
    assert again["phrases"] == b["phrases"]  # a pure function of the step (resumable)
    # two ranks split one global draw of images
    r0 = batches.batch(step=3, images=1, rank=0, world_size=2)
    r1 = batches.batch(step=3, images=1, rank=1, world_size=2)
    assert r0["phrases"] + r1["phrases"] == b["phrases"]
    # with few absent phrases the draw takes more present ones
    rng = np.random.default_rng(0)
    few_absent = torch.tensor([5.0, 5.0, 5.0, 5.0, 5.0, -5.0])
    chosen = PhraseBatches(cache, image_size=64, phrases=4, positive_fraction=0.25).pick_phrases(few_absent, rng)
    assert len(chosen) == 4 and 5 in chosen


def _fake_phrase_cache(index_dir, out_dir):
    """A phrase-set cache in the real on-disk format (random teacher outputs), 3 images x 5 phrases, Q = 4."""
    from sam3_edge.cache.config import PhraseCacheParams
    from sam3_edge.cache.phrases import phrase_units, write_vocabulary
    from sam3_edge.cache.store import open_phrase_cache, write_sharded

    records = json.loads((index_dir / "images_train.json").read_text())["records"][:3]
    vocab = ["red circle", "blue square", "small green cross", "yellow triangle", "large red square"]
    units = phrase_units(
        [r["image"] for r in records], vocab, PhraseCacheParams(), index_file=str(index_dir / "images_train.json")
    )
    gen = torch.Generator().manual_seed(0)

    def compute(us):
        out = {}
        for u in us:
            presence = torch.tensor([4.0, 3.0, -4.0, -3.0, -5.0])
            out[f"{u.key}/presence_logit"] = presence.half()
            out[f"{u.key}/class_logits"] = (torch.randn(5, 4, generator=gen) * 4).half()
            out[f"{u.key}/boxes"] = torch.rand(5, 4, 4, generator=gen).sort(-1).values.half()
        return out

    header = {"kind": "phrases", "teacher_id": "fake", "image_size": 64, "config_hash": "x", "dtype": "float16"}
    write_sharded(out_dir, units=units, units_per_shard=2, compute=compute, header=header, bytes_per_unit=1)
    write_vocabulary(out_dir, vocab, torch.randn(5, 32, generator=gen))
    return open_phrase_cache(out_dir)


def test_phases_distil_the_phrase_set_and_its_contrast(train_data, tmp_path):
    from sam3_edge.cache import open_cache
    from sam3_edge.train.config import OptimParams, Phase1Params, Phase2Params, PhraseSetParams
    from sam3_edge.train.loop import FINAL
    from sam3_edge.train.phases import distill_phase1, distill_phase2
    from tests.support.train import train_tiny

    index_dir, cache_dir, _ = train_data
    phrases = _fake_phrase_cache(index_dir, tmp_path / "phrases")
    assert phrases.vocabulary()[1].shape == (5, 32)
    opt = OptimParams(steps=2, batch_size=2, checkpoint_every=2, log_every=1, warmup_steps=1)
    ps = PhraseSetParams(weight=1.0, images_per_step=2, phrases_per_image=4)
    cache = open_cache(cache_dir)
    m1 = train_tiny(
        distill_phase1, cache, Phase1Params(optim=opt, phrase_set=ps), tmp_path / "p1", phrase_cache=phrases
    )
    for key in ("ps_presence", "ps_rank", "ps_class", "ps_box", "ps_text", "ps_total"):
        assert key in m1["final_losses"], key
    assert m1["final_losses"]["ps_text"] > 0
    m2 = train_tiny(
        distill_phase2,
        cache,
        Phase2Params(optim=opt, phrase_set=ps),
        tmp_path / "p2",
        init_from=tmp_path / "p1" / FINAL,
        phrase_cache=phrases,
    )
    assert "ps_presence" in m2["final_losses"]
    with pytest.raises(ValueError, match="phrase-set cache"):
        train_tiny(distill_phase1, cache, Phase1Params(optim=opt, phrase_set=ps), tmp_path / "p3")


def test_finetune_distils_the_phrase_set_beside_the_gt_loss(train_data, tmp_path):
    """finetune_saco with phrase_set.weight > 0 adds the ps_* terms to its GT loss (and needs the phrase cache);
    the adapter travels in the checkpoint's extra state, the student keeps its strict keys."""
    from sam3_edge.models import load_student
    from sam3_edge.train.config import FinetuneParams, OptimParams, PhraseSetParams
    from sam3_edge.train.finetune import finetune_saco
    from sam3_edge.train.loop import FINAL
    from tests.support.train import train_tiny

    index_dir, _, _ = train_data
    phrases = _fake_phrase_cache(index_dir, tmp_path / "phrases")
    opt = OptimParams(steps=2, batch_size=2, checkpoint_every=2, log_every=1, warmup_steps=1)
    params = FinetuneParams(optim=opt, phrase_set=PhraseSetParams(weight=1.0, images_per_step=2, phrases_per_image=4))
    index = index_dir / "concepts_train.json"
    m = train_tiny(finetune_saco, index, params, tmp_path / "ft", phrase_cache=phrases)
    losses = m["final_losses"]
    for key in ("presence", "ps_presence", "ps_rank", "ps_class", "ps_text", "ps_total"):
        assert key in losses, key
    assert losses["total"] > losses["ps_total"] > 0 and m["phrase_set_weight"] == 1.0
    load_student(tmp_path / "ft" / FINAL)
    plain = train_tiny(finetune_saco, index, FinetuneParams(optim=opt), tmp_path / "plain")
    assert not any(k.startswith("ps_") for k in plain["final_losses"]) and plain["phrase_set_weight"] == 0.0
    with pytest.raises(ValueError, match="phrase-set cache"):
        train_tiny(finetune_saco, index, params, tmp_path / "no_cache")
