"""Grouped SA-Co batches: several prompts share one image's features, exactly as if each had its own copy."""

from __future__ import annotations

import torch

from sam3_edge.models import build_student
from sam3_edge.models.encoders import build_tokenizer
from sam3_edge.train.finetune import GroupBatches
from sam3_edge.train.phases import student_forward

MIX = {"text": 0.6, "point": 0.2, "box": 0.2}


def _batches(index, per_image=3):
    return GroupBatches(
        index, image_size=64, mask_size=16, max_pairs=0, prompts_per_image=per_image, prompt_mix=MIX, seed=0
    )


def test_shared_features_equal_one_image_per_prompt(train_data):
    index_dir, _, _ = train_data
    student = build_student("tiny", seed=0).eval()
    batch = _batches(index_dir / "concepts_train.json")(0, 2, 0, 1)
    tok = build_tokenizer(student.config.context_length)
    assert len(batch["prompts"]) == 6 and batch["image_index"].tolist() == [0, 0, 0, 1, 1, 1]
    with torch.no_grad():
        shared = student_forward(student, batch["image"], batch["prompts"], tok, image_index=batch["image_index"])
        copied = student_forward(student, batch["image"][batch["image_index"]], batch["prompts"], tok)
    for key in ("mask_logits", "boxes", "class_logits", "presence_logit", "semantic_logits"):
        torch.testing.assert_close(shared[key], copied[key], rtol=1e-4, atol=1e-5, msg=key)


def test_group_batches_targets_and_rank_split(train_data):
    index_dir, _, _ = train_data
    data = _batches(index_dir / "concepts_train.json", per_image=4)
    assert data.negatives > 0, "the fine-tune must see negative phrases"
    full = data(5, 4, 0, 1)
    assert full["image"].shape[0] == 4 and len(full["prompts"]) == 16
    for prompt, masks, boxes in zip(full["prompts"], full["gt_masks"], full["gt_boxes"], strict=True):
        assert masks.shape[0] == boxes.shape[0] and masks.shape[1:] == (16, 16)
        if prompt.kind != "text":  # a point / box prompt selects exactly one instance
            assert masks.shape[0] == 1
    # two ranks of batch 2 see the same images and prompts as one rank of batch 4, split by image slot
    parts = [data(5, 2, r, 2) for r in range(2)]
    assert sorted(len(p["prompts"]) for p in parts) == [8, 8]
    seen = [
        (p["image"][i].sum().item(), pr.text)
        for p in parts
        for i, pr in zip(p["image_index"], p["prompts"], strict=True)
    ]
    want = [
        (full["image"][i].sum().item(), pr.text) for i, pr in zip(full["image_index"], full["prompts"], strict=True)
    ]
    assert sorted(seen) == sorted(want)
