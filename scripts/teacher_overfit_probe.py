"""Diagnostic: can the bootstrap teacher learn text presence on 8 train images (text prompts only)?

Run from the repo root after `dvc repro data`: `python scripts/teacher_overfit_probe.py`. Prints presence loss and the
mean presence probability of positive / negative pairs every 50 steps (measured 2026-11-23: 0.743 -> 0.029 by step
100, p(pos) 0.985 vs p(neg) 0.045), i.e. the text path trains; the full-data recipe does not generalise yet.
"""
import os

import numpy as np
import torch
import yaml

os.environ["SAM3_EDGE_QUIET"] = "1"
torch.set_num_threads(2)
from sam3_edge.config import from_dict
from sam3_edge.teacher.config import TeacherParams
from sam3_edge.teacher.adapter import TeacherAdapter
from sam3_edge.data.groups import load_groups
from sam3_edge.teacher.model import build_bootstrap_model
from sam3_edge.teacher.tokenizer import build_word_tokenizer
from sam3_edge.teacher.train import _make_batch
from sam3_edge.train.losses import set_prediction_loss
base = yaml.safe_load(open("params.yaml"))["teacher"]
base["train"]["prompt_mix"] = {"text": 1.0, "point": 0.0, "box": 0.0}
base["train"]["prompts_per_image"] = 4
p = from_dict(TeacherParams, base, prefix="teacher")
groups = load_groups("data/index/concepts_train.json", image_size=224, mask_size=32, desc="x")[:8]
tok = build_word_tokenizer(pp.text for g in groups for pp in g.pairs)
model = build_bootstrap_model(p.model, image_size=224, vocab_size=len(tok), seed=0)
ad = TeacherAdapter(model=model, tokenizer=tok, image_size=224, fpn_levels=p.fpn_levels, point_box_size=p.point_box_size)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
rng = np.random.default_rng(0)
for step in range(301):
    images, prompts, index, masks, boxes = _make_batch(groups, list(range(8)), p, rng)
    out = ad.forward_prompts(ad.encode_images(images), prompts, side=224.0, image_index=index)
    terms = set_prediction_loss(mask_logits=out["mask_logits"], boxes=out["boxes"], class_logits=out["class_logits"],
        presence_logits=out["presence_logit"], semantic_logits=out["semantic_logits"], target_masks=masks, target_boxes=boxes, weights=p.train.loss)
    opt.zero_grad(); terms["total"].backward(); torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step()
    if step % 50 == 0:
        neg = torch.tensor([len(m) == 0 for m in masks])
        pres = torch.sigmoid(out["presence_logit"].detach())
        print(step, "presence loss %.3f" % float(terms["presence"]), "p(pos) %.3f p(neg) %.3f" % (pres[~neg].mean(), pres[neg].mean() if neg.any() else -1), flush=True)
