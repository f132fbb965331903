"""Is the student's prompt path telling phrases apart? A check on val images, run after each student stage.

Three figures, measured on text prompts of the val split (real images, real phrases), geometry prompts apart:

- ``presence_gap``: mean presence logit of the positive (image, phrase) pairs minus that of the negative ones
  (0 = presence blind to the phrase), with both means and the presence ROC AUC;
- ``text_presence_loss``: the presence BCE of those text prompts against their ground truth (ln 2 = 0.693 is a
  coin; the prior of the split's negative share is what a phrase-blind presence reaches);
- ``prompt_vec_cosine``: mean pairwise cosine of the pooled prompt vectors of the split's distinct phrases, and
  their per-dimension spread (1.0 / 0.0 = every phrase collapsed onto one vector).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from sam3_edge.models.encoders import build_tokenizer
from sam3_edge.models.prompts import prepare_prompts
from sam3_edge.types import Prompt


def mean_pairwise_cosine(vectors: torch.Tensor) -> float:
    """Mean cosine over distinct pairs of rows of [N, D] (N >= 2)."""
    v = F.normalize(vectors.float(), dim=-1)
    sim = v @ v.T
    n = len(v)
    return float((sim.sum() - sim.diagonal().sum()) / (n * (n - 1)))


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """Probability that a random positive outscores a random negative (ties count half); None without both."""
    pos, neg = scores[labels], scores[~labels]
    if not len(pos) or not len(neg):
        return None
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


@torch.no_grad()
def prompt_diagnostics(
    student, index_file: str | Path, *, max_pairs: int = 240, batch_size: int = 16, seed: int = 0
) -> dict[str, Any]:
    """The check on up to ``max_pairs`` val concept pairs (a seeded draw, so every stage sees the same pairs)."""
    from sam3_edge.data.datasets import load_concept_pairs, read_image, resize_image, resolve_path

    pairs = load_concept_pairs(index_file)
    if max_pairs and len(pairs) > max_pairs:
        pick = np.random.default_rng(seed).choice(len(pairs), size=max_pairs, replace=False)
        pairs = [pairs[i] for i in sorted(pick)]
    was_training = student.training
    student.eval()
    device = next(student.parameters()).device
    size = student.config.image_size
    tokenizer = build_tokenizer(student.config.context_length)
    logits, labels = [], []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        images = torch.stack([resize_image(read_image(resolve_path(index_file, p.image)), size) for p in chunk])
        prompts = [Prompt(kind="text", text=p.text) for p in chunk]
        pt = prepare_prompts(prompts, tokenizer=tokenizer, max_points=student.config.max_points).to(device)
        out = student(images.to(device), pt.token_ids, pt.points, pt.box, pt.box_valid)
        logits.append(out["presence_logit"].float().cpu())
        labels += [not p.negative for p in chunk]
    phrases = sorted({p.text for p in load_concept_pairs(index_file)})
    pt = prepare_prompts(
        [Prompt(kind="text", text=t) for t in phrases], tokenizer=tokenizer, max_points=student.config.max_points
    ).to(device)
    text, valid = student.encode_text(pt.token_ids)
    vec = student.encode_prompt(text, valid, pt.points, pt.box, pt.box_valid).vec.float().cpu()
    student.train(was_training)
    logit = torch.cat(logits)
    label = torch.tensor(labels)
    pos, neg = logit[label], logit[~label]
    auc = roc_auc(logit.numpy(), label.numpy())
    return {
        "pairs": len(pairs),
        "positive_pairs": int(label.sum()),
        "presence_logit_positive": round(float(pos.mean()), 4) if len(pos) else None,
        "presence_logit_negative": round(float(neg.mean()), 4) if len(neg) else None,
        "presence_gap": round(float(pos.mean() - neg.mean()), 4) if len(pos) and len(neg) else None,
        "presence_auc": None if auc is None else round(auc, 4),
        "text_presence_loss": round(float(F.binary_cross_entropy_with_logits(logit, label.float())), 4),
        "phrases": len(phrases),
        "prompt_vec_cosine": round(mean_pairwise_cosine(vec), 4) if len(phrases) > 1 else None,
        "prompt_vec_spread": round(float(vec.std(0).mean()), 4) if len(phrases) > 1 else None,
    }
