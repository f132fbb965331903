from __future__ import annotations

import numpy as np
import pytest
import torch

from sam3_edge.data.datasets import ConceptDataset, collate_concepts, decode_rle, load_image_records
from sam3_edge.data.index import IndexOptions, build_index
from sam3_edge.data.prompts import sample_prompt


@pytest.fixture(scope="module")
def index_dir(tiny_synthetic, tmp_path_factory):
    _, sources = tiny_synthetic
    index = tmp_path_factory.mktemp("idx") / "index"
    build_index(sources, index, extract_dir=index.parent / "x", options=IndexOptions(max_pixels=10**8))
    return index


def test_concept_dataset_items(index_dir):
    ds = ConceptDataset(index_dir / "concepts_train.json", image_size=64, mask_size=24)
    assert len(ds) == len(ds.pairs) > 0
    for i in range(len(ds)):
        item = ds[i]
        pair = ds.pairs[i]
        assert item["image"].shape == (3, 64, 64) and item["image"].dtype == torch.float32
        assert 0.0 <= item["image"].min() and item["image"].max() <= 1.0
        n = len(pair.instances)
        assert item["masks"].shape == (n, 24, 24) and item["masks"].dtype == torch.bool
        assert item["boxes"].shape == (n, 4) and item["negative"] == (n == 0)
        assert item["text"] == pair.text and item["pair_id"] == pair.pair_id and item["image_key"] == pair.image
        if n:
            assert item["masks"].flatten(1).any(1).all(), "every resized instance mask keeps some pixels"
            b = item["boxes"]
            assert ((b >= 0) & (b <= 1)).all() and (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()
    batch = collate_concepts([ds[0], ds[1], ds[2]])
    assert batch["image"].shape == (3, 3, 64, 64) and len(batch["masks"]) == 3 and batch["negative"].dtype == torch.bool


def test_sample_prompt_semantics(index_dir):
    ds = ConceptDataset(index_dir / "concepts_val.json", image_size=96, mask_size=96)
    rng = np.random.default_rng(0)
    positives = [p for p in ds.pairs if not p.negative]
    negative = next(p for p in ds.pairs if p.negative)
    for pair in positives:
        prompt, targets = sample_prompt(pair, "text", rng, image_size=48)
        assert prompt.text == pair.text and targets == list(range(len(pair.instances)))
        prompt, targets = sample_prompt(pair, "point", rng, image_size=48)
        ((x, y, label),) = prompt.points
        assert label == 1 and len(targets) == 1 and prompt.text == pair.text
        mask = decode_rle(pair.instances[targets[0]].rle)  # original 96 px: point scaled by 2
        assert mask[int(y * 2), int(x * 2)]
        prompt, targets = sample_prompt(pair, "box", rng, image_size=48)
        assert np.allclose(np.array(prompt.box) * 2, pair.instances[targets[0]].box)
    prompt, targets = sample_prompt(negative, "text", rng, image_size=48)
    assert targets == [] and prompt.kind == "text"
    for kind in ("point", "box"):
        with pytest.raises(ValueError, match="negative"):
            sample_prompt(negative, kind, rng, image_size=48)


def test_sample_prompt_on_sa1b_records(index_dir):
    record = load_image_records(index_dir / "images_val.json")[0]
    rng = np.random.default_rng(1)
    prompt, targets = sample_prompt(record, "box", rng, image_size=96, box_jitter=0.1)
    x0, y0, x1, y1 = prompt.box
    assert 0 <= x0 <= x1 <= 96 and 0 <= y0 <= y1 <= 96 and prompt.text == ""
    with pytest.raises(ValueError, match="noun phrase"):
        sample_prompt(record, "text", rng, image_size=96)
