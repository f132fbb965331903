"""The teacher's phrase-set cache (stage cache_phrases), checked against a fresh teacher forward."""

from __future__ import annotations

import torch

from sam3_edge.cache import open_cache
from sam3_edge.cache.config import CacheParams, PhraseCacheParams
from sam3_edge.cache.phrases import phrase_units, phrase_vocabulary
from sam3_edge.cache.run import cache_teacher
from sam3_edge.data.datasets import read_image, resize_image, resolve_path
from sam3_edge.teacher.load import load_teacher
from sam3_edge.types import Prompt


def test_phrase_cache_matches_a_fresh_teacher_forward(cache_inputs, tmp_path):
    index_dir, teacher_dir = cache_inputs
    images = index_dir / "images_train.json"  # any unlabeled image list; the embedded profile uses images_distill
    vocab_index = index_dir / "concepts_train.json"
    params = PhraseCacheParams(max_images=3, images_per_shard=2, batch_size=2, mask_phrases=1)

    def build() -> dict:
        return cache_teacher(
            "phrases",
            teacher_dir=teacher_dir,
            index_file=images,
            vocab_index=vocab_index,
            out_dir=tmp_path / "c",
            params=CacheParams(phrases=params),
        )

    m = build()
    vocab = phrase_vocabulary(vocab_index)
    assert m["images"] == 3 and m["vocabulary"] == len(vocab) and m["shards"] == 2 and m["verified"]
    cache = open_cache(tmp_path / "c")
    assert cache.keys() == ["img000000", "img000001", "img000002"]
    meta = cache.meta("img000001")
    assert meta["phrases"] == vocab  # phrases_per_image 0: the whole vocabulary
    got = cache.load("img000001", dtype=torch.float32)
    p = len(vocab)
    assert got["presence_logit"].shape == (p,) and got["class_logits"].shape[0] == p
    assert got["boxes"].shape[:1] == (p,) and got["mask_logits"].shape[0] == 1

    adapter = load_teacher(teacher_dir).eval()
    image = resize_image(read_image(resolve_path(images, meta["image"])), adapter.image_size)[None]
    with torch.inference_mode():
        vision = adapter.encode_images(image)
        prompts = [Prompt(kind="text", text=t) for t in vocab]
        fresh = adapter.forward_prompts(vision, prompts, side=float(image.shape[-1]), image_index=[0] * p)
    for name in ("presence_logit", "class_logits", "boxes"):
        torch.testing.assert_close(got[name], fresh[name].float(), atol=2e-2, rtol=2e-3)  # fp16 storage
    top = int(torch.argmax(fresh["presence_logit"]))
    assert int(got["mask_phrase_index"][0]) == top
    torch.testing.assert_close(got["mask_logits"][0], fresh["mask_logits"][top].float(), atol=5e-2, rtol=2e-3)

    # a second run keeps both verified shards
    again = build()
    assert again["shards_built_rank0"] == 0


def test_a_drawn_phrase_set_is_seeded_per_image():
    vocab = [f"p{i}" for i in range(20)]
    params = PhraseCacheParams(phrases_per_image=5, seed=3)
    a = phrase_units(["a.jpg", "b.jpg"], vocab, params, index_file="i.json")
    b = phrase_units(["a.jpg", "b.jpg"], vocab, params, index_file="i.json")
    pa = [u.samples[u.key]["phrases"] for u in a]
    assert pa == [u.samples[u.key]["phrases"] for u in b]
    assert all(len(p) == 5 and len(set(p)) == 5 for p in pa) and pa[0] != pa[1]
