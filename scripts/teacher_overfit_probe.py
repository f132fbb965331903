"""Diagnostic: can the bootstrap teacher fit text presence on a handful of train images (text prompts only)?

Run from the repo root after `dvc repro data`:

    python scripts/teacher_overfit_probe.py [--images 8] [--steps 301] [--params params.yaml]

Trains a fresh bootstrap teacher (the `teacher` params, text prompts only) on the first ``--images`` train images
and prints, every 50 steps, the presence loss and the mean presence probability of positive and negative prompts.
If p(pos) and p(neg) do not separate here, the text path cannot learn and the full recipe will not either.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch
import yaml

from sam3_edge.config import from_dict
from sam3_edge.core.losses import set_prediction_loss
from sam3_edge.data.groups import load_groups, sample_group_prompts
from sam3_edge.teacher.adapter import TeacherAdapter
from sam3_edge.teacher.config import TeacherParams
from sam3_edge.teacher.model import build_bootstrap_model
from sam3_edge.teacher.tokenizer import build_word_tokenizer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--train-index", default="data/index/concepts_train.json")
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--steps", type=int, default=301)
    ap.add_argument("--prompts-per-image", type=int, default=4)
    args = ap.parse_args()
    os.environ.setdefault("SAM3_EDGE_QUIET", "1")

    raw = yaml.safe_load(open(args.params))["teacher"]
    raw["train"]["prompt_mix"] = {"text": 1.0, "point": 0.0, "box": 0.0}
    p = from_dict(TeacherParams, raw, prefix="teacher")
    torch.manual_seed(p.seed)
    mask_size = p.train.mask_size
    groups = load_groups(args.train_index, image_size=p.image_size, mask_size=mask_size, desc="load")[: args.images]
    tok = build_word_tokenizer(pair.text for g in groups for pair in g.pairs)
    model = build_bootstrap_model(p.model, image_size=p.image_size, vocab_size=len(tok), seed=p.seed)
    adapter = TeacherAdapter(
        model=model, tokenizer=tok, image_size=p.image_size, fpn_levels=p.fpn_levels, point_box_size=p.point_box_size
    )
    opt = torch.optim.AdamW(model.parameters(), lr=p.train.lr)
    rng = np.random.default_rng(p.seed)
    model.train()
    for step in range(args.steps):
        images, prompts, index, masks, boxes = sample_group_prompts(
            groups,
            list(range(len(groups))),
            prompts_per_image=args.prompts_per_image,
            prompt_mix=p.train.prompt_mix,
            rng=rng,
            image_size=p.image_size,
        )
        out = adapter.forward_prompts(
            adapter.encode_images(images), prompts, side=float(p.image_size), image_index=index
        )
        terms = set_prediction_loss(
            mask_logits=out["mask_logits"],
            boxes=out["boxes"],
            class_logits=out["class_logits"],
            presence_logits=out["presence_logit"],
            semantic_logits=out["semantic_logits"],
            target_masks=masks,
            target_boxes=boxes,
            weights=p.train.loss,
        )
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), p.train.grad_clip)
        opt.step()
        if step % 50 == 0:
            neg = torch.tensor([len(m) == 0 for m in masks])
            prob = torch.sigmoid(out["presence_logit"].detach().flatten())
            p_neg = f"{float(prob[neg].mean()):.3f}" if neg.any() else "n/a (no negative drawn)"
            print(
                f"step {step}: presence loss {float(terms['presence']):.3f}, "
                f"p(pos) {float(prob[~neg].mean()):.3f}, p(neg) {p_neg}",
                flush=True,
            )


if __name__ == "__main__":
    main()
