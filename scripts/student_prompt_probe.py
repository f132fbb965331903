"""Does a student checkpoint tell phrases apart? A diagnostic for text prompts that never learn.

Run from the repo root after `dvc repro`: `python scripts/student_prompt_probe.py CKPT [CKPT ...]`. For up to 24
distinct val phrases it prints the mean pairwise cosine of the pooled text embeddings, of the resampler's prompt
latents and of its pooled prompt vector, and the spread (std) of the presence logit over the phrases on one
image, and on the first 64 val pairs the mean presence logit of positive and of negative pairs. A student whose
text path has collapsed shows a presence std near 0 and no gap between positives and negatives: its presence does
not depend on the phrase, so the fine-tune's presence loss stays at the prior's entropy (~0.6).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from sam3_edge.core.checkpoint import load_checkpoint
from sam3_edge.data.datasets import read_image, resize_image
from sam3_edge.models.config import StudentConfig
from sam3_edge.models.encoders import build_tokenizer
from sam3_edge.models.factory import build_student
from sam3_edge.models.prompts import prepare_prompts
from sam3_edge.types import Prompt
from sam3_edge.utils import masked_mean


def mean_pairwise_cosine(x: torch.Tensor) -> float:
    x = F.normalize(x.flatten(1), dim=-1)
    n = len(x)
    return float(((x @ x.T).sum() - n) / (n * n - n))


def probe(path: str, phrases: list[str], pairs: list[tuple[Path, str, bool]]) -> dict:
    ckpt = load_checkpoint(path)
    student = build_student(StudentConfig.from_json(ckpt.model_config))
    student.load_state_dict(ckpt.model_state)
    student.eval()
    tokenizer = build_tokenizer(student.config.context_length)

    def text_prompts(texts):
        return prepare_prompts(
            [Prompt(kind="text", text=t) for t in texts], tokenizer=tokenizer, max_points=student.config.max_points
        )

    pt = text_prompts(phrases)
    gen = torch.Generator().manual_seed(0)
    size = student.config.image_size
    image = torch.rand(1, 3, size, size, generator=gen).expand(len(phrases), -1, -1, -1)
    with torch.no_grad():
        tokens, valid = student.encode_text(pt.token_ids)
        pooled = masked_mean(tokens, valid)  # as phase 1 pools them for the text distillation
        latents, vec = student.encode_prompt(tokens, valid, pt.points, pt.box, pt.box_valid)
        out = student(image, pt.token_ids, pt.points, pt.box, pt.box_valid)
        pp = text_prompts([t for _, t, _ in pairs])
        images = torch.stack([resize_image(read_image(f), size) for f, _, _ in pairs])
        presence = student(images, pp.token_ids, pp.points, pp.box, pp.box_valid)["presence_logit"]
    positive = torch.tensor([p for _, _, p in pairs])
    return {
        "checkpoint": path,
        "phrases": len(phrases),
        "cos_text": round(mean_pairwise_cosine(pooled), 3),
        "cos_latents": round(mean_pairwise_cosine(latents), 3),
        "cos_prompt_vec": round(mean_pairwise_cosine(vec), 3),
        "presence_logit_std": round(float(out["presence_logit"].std()), 3),
        "presence_logit_positive": round(float(presence[positive].mean()), 3),
        "presence_logit_negative": round(float(presence[~positive].mean()), 3),
    }


def main() -> None:
    index = Path("data/index/concepts_val.json")
    data = json.loads(index.read_text())
    root = index.parent / data["root"]
    records = data["records"]
    phrases = sorted({r["text"] for r in records})[:24]
    pairs = [(root / r["image"], r["text"], bool(r["instances"])) for r in records[:64]]
    for path in sys.argv[1:]:
        print(json.dumps(probe(path, phrases, pairs)))


if __name__ == "__main__":
    main()
