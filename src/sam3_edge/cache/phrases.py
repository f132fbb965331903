"""The teacher's phrase-set cache (stage ``cache_phrases``): what the teacher thinks of many phrases per image.

For each image of an unlabeled split (``data/index/images_distill.json``: images the teacher was not fitted on,
as SA-1B is for the real profile) the teacher scores a phrase set drawn from the SA-Co training vocabulary: every
phrase of the vocabulary when ``phrases_per_image`` is 0 (the embedded vocabulary is small), else that many
drawn at random per image (the real profile's noun-phrase vocabulary is large). Per image it stores, fp16:
``presence_logit`` [P], ``class_logits`` [P, Q] and ``boxes`` [P, Q, 4] (xyxy, normalised) of its P phrases, and
``mask_logits`` [M, Q, h, w] of the M = ``mask_phrases`` phrases the teacher finds most present (the masks of
every phrase would be P times the size). The manifest lists each image's phrases in order.

The student distils these with images grouped: every step contrasts several phrases on the same image
(``sam3_edge.train.data.PhraseBatches``, ``sam3_edge.train.distill_losses.phrase_set_distill_loss``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sam3_edge.cache.build import config_hash
from sam3_edge.cache.config import PhraseCacheParams
from sam3_edge.cache.job import CacheJob, cache_header, image_loader
from sam3_edge.cache.store import VOCABULARY_FILE, TeacherCache, Unit
from sam3_edge.config import to_dict
from sam3_edge.teacher.adapter import TeacherAdapter
from sam3_edge.types import Prompt

PHRASE_TENSORS = ("boxes", "class_logits", "mask_logits", "presence_logit")


@torch.inference_mode()
def vocabulary_embeddings(adapter: TeacherAdapter, vocab: list[str], batch_size: int = 256) -> torch.Tensor:
    """The teacher's pooled text embedding of each phrase [V, D] (its text tokens averaged, as the cache's ``text``)."""
    from sam3_edge.utils import masked_mean

    out = []
    for start in range(0, len(vocab), batch_size):
        ids, mask = adapter.tokenize(vocab[start : start + batch_size])
        text = adapter.model.get_text_features(input_ids=ids, attention_mask=mask, return_dict=True)
        out.append(masked_mean(text.pooler_output, mask).float())
    return torch.cat(out)


def write_vocabulary(out_dir: str | Path, vocab: list[str], embeddings: torch.Tensor) -> Path:
    """``vocabulary.safetensors`` beside the shards: ``text`` [V, D] fp32, the phrases in its metadata (json)."""
    import json

    from sam3_edge.utils import atomic_path, save_safetensors

    path = Path(out_dir) / VOCABULARY_FILE
    with atomic_path(path) as tmp:
        save_safetensors({"text": embeddings.contiguous()}, tmp, metadata={"phrases": json.dumps(vocab)})
    return path


def phrase_vocabulary(vocab_index: str | Path) -> list[str]:
    """Distinct noun phrases of an SA-Co concepts index (positives and negatives), sorted."""
    from sam3_edge.data.datasets import load_concept_pairs

    phrases = sorted({p.text.strip() for p in load_concept_pairs(vocab_index) if p.text.strip()})
    if not phrases:
        raise ValueError(f"{vocab_index}: no noun phrases to build the phrase vocabulary from")
    return phrases


def phrase_units(images: list[str], vocab: list[str], params: PhraseCacheParams, *, index_file: str) -> list[Unit]:
    """One unit (= one sample) per image, key ``img<no>``, with its phrase set (all, or a seeded draw)."""
    units = []
    for n, image in enumerate(images):
        if params.phrases_per_image and params.phrases_per_image < len(vocab):
            rng = np.random.default_rng([params.seed, n])
            picks = sorted(rng.choice(len(vocab), size=params.phrases_per_image, replace=False).tolist())
            phrases = [vocab[i] for i in picks]
        else:
            phrases = list(vocab)
        key = f"img{n:06d}"
        units.append(
            Unit(key=key, samples={key: {"image": image, "index_file": index_file, "phrases": phrases}}, meta={})
        )
    return units


@torch.inference_mode()
def compute_phrase_units(
    adapter: TeacherAdapter, units: list[Unit], load_image, params: PhraseCacheParams
) -> dict[str, torch.Tensor]:
    """Teacher outputs of every (image, phrase) of ``units``, keyed ``<key>/<name>``."""
    adapter.eval()
    tensors: dict[str, torch.Tensor] = {}
    for start in range(0, len(units), params.batch_size):
        chunk = units[start : start + params.batch_size]
        images = torch.stack([load_image(next(iter(u.samples.values()))["image"]) for u in chunk])
        vision = adapter.encode_images(images)
        prompts, index, owner = [], [], []
        for i, u in enumerate(chunk):
            for text in u.samples[u.key]["phrases"]:
                prompts.append(Prompt(kind="text", text=text))
                index.append(i)
                owner.append(u.key)
        out = adapter.forward_prompts(vision, prompts, side=float(images.shape[-1]), image_index=index)
        for u in chunk:
            rows = torch.tensor([j for j, k in enumerate(owner) if k == u.key])
            presence = out["presence_logit"][rows]
            tensors[f"{u.key}/presence_logit"] = presence.half()
            tensors[f"{u.key}/class_logits"] = out["class_logits"][rows].half()
            tensors[f"{u.key}/boxes"] = out["boxes"][rows].half()
            top = torch.argsort(presence, descending=True, stable=True)[: params.mask_phrases]
            tensors[f"{u.key}/mask_logits"] = out["mask_logits"][rows][top].half()
            tensors[f"{u.key}/mask_phrase_index"] = top.to(torch.int64)
    return tensors


def build_phrase_cache(
    adapter: TeacherAdapter,
    *,
    teacher_id: str,
    images_index: str | Path,
    vocab_index: str | Path,
    params: PhraseCacheParams,
    job: CacheJob,
) -> dict:
    """The phrase-set cache of every image of ``images_index`` (``vocab_index``'s phrases) and its vocabulary file;
    returns the write stats and, under ``metrics``, what this kind reports beyond the store's figures."""
    from sam3_edge.data.datasets import load_image_records

    records = load_image_records(images_index)
    if not records:
        raise ValueError(f"{images_index}: no images (is data.synthetic.num_distill_images / data.real.distill set?)")
    images = [r.image for r in records][: params.max_images or None]
    vocab = phrase_vocabulary(vocab_index)
    units = phrase_units(images, vocab, params, index_file=str(images_index))
    q = adapter.model.config.detr_decoder_config.num_queries
    per_phrase = q * 5 + 1
    p = max(len(u.samples[u.key]["phrases"]) for u in units)
    side = adapter.image_size // adapter.model.config.vision_config.backbone_config.patch_size
    side = int(side * adapter.model.config.vision_config.scale_factors[0])
    per_unit = 2 * (p * per_phrase + params.mask_phrases * q * side * side) + 8 * params.mask_phrases
    header = cache_header(
        "phrases",
        teacher_id=teacher_id,
        image_size=adapter.image_size,
        config_hash=config_hash(
            teacher_id=teacher_id,
            params={k: v for k, v in to_dict(params).items() if k not in ("batch_size", "disk_margin")},
            index_file=images_index,
            extra={"vocabulary": vocab, "image_size": adapter.image_size},
        ),
        vocabulary=vocab,
        sample_tensors=sorted((*PHRASE_TENSORS, "mask_phrase_index")),
    )

    load_image = image_loader(images_index, adapter.image_size)
    compute = lambda us: compute_phrase_units(adapter, us, load_image, params)  # noqa: E731
    stats = job.write(units, compute, header, (params.images_per_shard, per_unit), "cache_phrases")
    if job.ranks.rank == 0:
        write_vocabulary(job.out_dir, vocab, vocabulary_embeddings(adapter, vocab))
    job.ranks.barrier()
    cache = TeacherCache(job.out_dir)
    probs = torch.cat([cache.load(key)["presence_logit"].float() for key in cache.keys()[:64]]).sigmoid()
    stats.update(units=len(units), samples=len(units))
    stats["metrics"] = {
        "images": len(units),
        "vocabulary": len(vocab),
        "phrases_per_image": p,
        "prompts": sum(len(u.samples[u.key]["phrases"]) for u in units),
        # how soft the targets are (first 64 images): share of phrases the teacher calls present, and how many
        # of its presence probabilities sit away from 0 and 1 (graded, not a relabelled ground truth)
        "teacher_present_fraction": round(float((probs >= 0.5).float().mean()), 4),
        "teacher_uncertain_fraction": round(float(((probs > 0.05) & (probs < 0.95)).float().mean()), 4),
    }
    return stats
