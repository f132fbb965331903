"""Phase 2's phrase-contrast presence term: the other phrases of a sample's image, over its image features."""

from __future__ import annotations

import torch

from sam3_edge.cache import open_cache
from sam3_edge.data.datasets import load_concept_pairs
from sam3_edge.models import build_student
from sam3_edge.models.encoders import build_tokenizer
from sam3_edge.train.config import OptimParams, Phase2Params
from sam3_edge.train.data import CachedBatches
from sam3_edge.train.phases import contrast_presence_loss, distill_phase2, student_forward


def _batch(cache_dir, n=3):
    cache = open_cache(cache_dir)
    batches = CachedBatches(cache, image_size=64, mask_size=16, with_phrases=True)
    return cache, batches, batches.load(cache.keys()[:n])


def test_image_phrases_are_the_other_pairs_of_the_same_image(train_data):
    index_dir, cache_dir, _ = train_data
    cache, batches, _ = _batch(cache_dir)
    pairs = load_concept_pairs(index_dir / "concepts_train.json")
    for key in cache.keys()[:6]:
        meta = cache.meta(key)
        expected = sorted(
            (p.text, not p.negative) for p in pairs if p.image == meta["image"] and p.pair_id != meta["pair_id"]
        )
        got = batches.image_phrases(meta)
        assert sorted(got) == expected and len(got) > 0


def test_batches_list_image_phrases_only_when_asked(train_data):
    _, cache_dir, _ = train_data
    cache = open_cache(cache_dir)
    keys = cache.keys()[:3]
    plain = CachedBatches(cache, image_size=64, mask_size=16).load(keys)
    assert plain["image_phrases"] == [[], [], []]
    asked = CachedBatches(cache, image_size=64, mask_size=16, with_phrases=True).load(keys)
    assert all(len(p) > 0 for p in asked["image_phrases"])


def test_contrast_loss_reaches_the_text_path_and_is_drawn_from_the_keys(train_data):
    _, cache_dir, _ = train_data
    _, _, batch = _batch(cache_dir)
    torch.manual_seed(0)
    student = build_student("tiny", seed=0)
    tokenizer = build_tokenizer(student.config.context_length)
    out = student_forward(student, batch["image"], batch["prompts"], tokenizer)
    loss = contrast_presence_loss(student, out, batch, tokenizer, count=2)
    assert loss is not None and loss.ndim == 0 and float(loss.detach()) > 0
    loss.backward()
    grads = [p.grad for p in student.text_encoder.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)
    again = contrast_presence_loss(student, out, batch, tokenizer, count=2)
    assert torch.equal(again.detach(), loss.detach())  # same keys, same phrases: resumable
    assert contrast_presence_loss(student, out, {**batch, "image_phrases": [[]] * 3}, tokenizer, count=2) is None


def test_phase2_logs_the_contrast_term(train_data, tmp_path):
    _, cache_dir, _ = train_data
    opt = OptimParams(steps=2, batch_size=2, checkpoint_every=2, log_every=1, warmup_steps=1)
    m = distill_phase2(
        build_student("tiny", seed=0),
        open_cache(cache_dir),
        Phase2Params(optim=opt, contrast_phrases=2),
        out_dir=tmp_path / "p2",
        params_hash="h",
    )
    assert m["final_losses"]["contrast_presence"] > 0
