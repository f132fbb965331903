"""Training batches from the teacher cache (+ the GT of the same pairs), with a deterministic prompt mix.

Batches are a pure function of ``(seed, step, rank)``: the keys of step ``k`` are drawn from a generator
seeded by ``[seed, k]``, so a run resumed at step ``k`` sees exactly the batches of an uninterrupted run, and
ranks take disjoint slices of one global batch. The prompt mix re-weights the cached samples by prompt kind
(the cache fixes each sample's prompt, so the teacher outputs match it); a kind asked for but absent from the
cache is dropped from the mix and recorded in ``skipped`` with the reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from sam3_edge.types import Prompt
from sam3_edge.utils import resize_logits

LOG = logging.getLogger(__name__)


def scale_prompt(prompt: Prompt, scale: float) -> Prompt:
    """Scale a prompt's pixel coordinates (cache input size -> student input size)."""
    if scale == 1.0:
        return prompt
    return Prompt(
        kind=prompt.kind,
        text=prompt.text,
        points=tuple((x * scale, y * scale, label) for x, y, label in prompt.points),
        box=tuple(v * scale for v in prompt.box) if prompt.box is not None else None,  # type: ignore[arg-type]
    )


@dataclass
class MixSampler:
    """Draw cache keys so that prompt kinds follow ``mix``; ``skipped`` lists kinds the cache lacks."""

    keys: list[str]
    kinds: list[str]
    mix: dict[str, float]
    seed: int
    skipped: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        counts = {k: self.kinds.count(k) for k in set(self.kinds)}
        weights = np.zeros(len(self.keys))
        for kind, share in self.mix.items():
            if share <= 0:
                continue
            if not counts.get(kind):
                self.skipped[kind] = f"prompt_mix asks for {share:.2f} {kind} prompts but the cache has none"
                LOG.warning("prompt mix: %s", self.skipped[kind])
                continue
            for i, k in enumerate(self.kinds):
                if k == kind:
                    weights[i] = share / counts[kind]
        if weights.sum() <= 0:
            raise ValueError(f"no cached sample matches prompt_mix {self.mix} (cache kinds: {counts})")
        self.probs = weights / weights.sum()

    def batch(self, step: int, batch_size: int, *, rank: int = 0, world_size: int = 1) -> list[str]:
        rng = np.random.default_rng([self.seed, step])
        picks = rng.choice(len(self.keys), size=batch_size * world_size, p=self.probs)
        return [self.keys[i] for i in picks[rank::world_size]]


class CachedBatches:
    """Assemble student batches from a :class:`sam3_edge.cache.TeacherCache`-like object.

    ``cache`` needs ``keys()``, ``meta(key)``, ``load(key)`` and ``manifest["image_size"]``. Images and GT come
    from the index file each sample names (``meta["index_file"]``, paths relative to its root).
    """

    def __init__(self, cache: Any, *, image_size: int, mask_size: int, with_gt: bool = True) -> None:
        self.cache = cache
        self.image_size = image_size
        self.mask_size = mask_size
        self.with_gt = with_gt
        teacher_size = cache.manifest.get("image_size")
        if not teacher_size:
            raise ValueError(
                f"{getattr(cache, 'dir', 'cache')}: manifest has no image_size (prompts are in its pixels)"
            )
        self.prompt_scale = image_size / float(teacher_size)
        self._pairs: dict[str, dict[int, Any]] = {}
        self._images: dict[str, torch.Tensor] = {}

    def kinds(self, keys: list[str]) -> list[str]:
        return [self.cache.meta(k)["prompt"]["kind"] for k in keys]

    def _pair(self, index_file: str, pair_id: int):
        from sam3_edge.data.datasets import load_concept_pairs

        if index_file not in self._pairs:
            self._pairs[index_file] = {p.pair_id: p for p in load_concept_pairs(index_file)}
        try:
            return self._pairs[index_file][pair_id]
        except KeyError:
            raise KeyError(f"{index_file}: no concept pair {pair_id} (cache built from another index?)") from None

    def _image(self, index_file: str, rel: str) -> torch.Tensor:
        from sam3_edge.data.datasets import read_image, resize_image, resolve_path

        key = f"{index_file}::{rel}"
        if key not in self._images:
            img = resize_image(read_image(resolve_path(index_file, rel)), self.image_size)
            self._images[key] = (img * 255).round().to(torch.uint8)  # keep memory small
        return self._images[key].float() / 255.0

    def _gt(self, meta: dict) -> tuple[torch.Tensor, torch.Tensor]:
        from sam3_edge.data.datasets import resize_masks
        from sam3_edge.data.rle import decode_rle

        pair = self._pair(meta["index_file"], meta["pair_id"])
        inst = [pair.instances[t] for t in meta["targets"]]
        if not inst:
            return torch.zeros(0, self.mask_size, self.mask_size, dtype=torch.bool), torch.zeros(0, 4)
        masks = resize_masks(np.stack([decode_rle(i.rle) for i in inst]), self.mask_size)
        scale = torch.tensor([pair.width, pair.height, pair.width, pair.height], dtype=torch.float32)
        boxes = (torch.tensor([i.box for i in inst], dtype=torch.float32) / scale).clamp(0, 1)
        return masks, boxes

    def load(self, keys: list[str]) -> dict[str, Any]:
        """-> {image [B,3,S,S], prompts [B], teacher {name: [B, ...] float32}, gt_masks [B x [N,M,M]], gt_boxes}."""
        images, prompts, teacher, gt_masks, gt_boxes = [], [], [], [], []
        for key in keys:
            meta = self.cache.meta(key)
            images.append(self._image(meta["index_file"], meta["image"]))
            prompts.append(scale_prompt(Prompt.from_json(meta["prompt"]), self.prompt_scale))
            teacher.append({k: v.float() for k, v in self.cache.load(key).items()})
            if self.with_gt:
                m, b = self._gt(meta)
                gt_masks.append(m)
                gt_boxes.append(b)
        names = sorted(teacher[0])
        stacked = {n: torch.stack([t[n] for t in teacher]) for n in names}
        if "mask_logits" in stacked:
            stacked["mask_logits"] = resize_logits(stacked["mask_logits"], self.mask_size)
        if "presence_logit" in stacked:
            stacked["presence_logit"] = stacked["presence_logit"].reshape(-1)
        return {
            "keys": keys,
            "image": torch.stack(images),
            "prompts": prompts,
            "teacher": stacked,
            "gt_masks": gt_masks,
            "gt_boxes": gt_boxes,
        }


class PhraseBatches:
    """Grouped batches from the teacher's phrase-set cache (``sam3_edge.cache.phrases``).

    A batch is ``images`` unlabeled images and ``phrases`` phrases on each: up to ``positive_fraction`` of them
    phrases the teacher finds present (probability >= 0.5), the rest drawn from the others, so every image is
    seen under present and absent phrases in the same step. A pure function of ``(seed, step, rank)``, like
    :class:`MixSampler`: ranks take disjoint images of one global draw.
    """

    def __init__(
        self,
        cache: Any,
        *,
        image_size: int,
        phrases: int,
        positive_fraction: float = 0.5,
        seed: int = 0,
        vocab_phrases: int = 0,
    ) -> None:
        """``vocab_phrases`` > 0: every batch also carries that many vocabulary phrases with the teacher's
        embeddings (``vocab_phrases``, ``vocab_text``; needs the cache's ``vocabulary.safetensors``)."""
        self.cache = cache
        self.keys = cache.keys()
        if not self.keys:
            raise ValueError(f"{getattr(cache, 'dir', 'phrase cache')}: no images")
        self.image_size = image_size
        self.phrases = phrases
        self.positive_fraction = positive_fraction
        self.seed = seed
        self.vocab_phrases = vocab_phrases
        self._images: dict[str, torch.Tensor] = {}
        self._vocab: tuple[list[str], torch.Tensor] | None = None

    def _image(self, index_file: str, rel: str) -> torch.Tensor:
        from sam3_edge.data.datasets import read_image, resize_image, resolve_path

        key = f"{index_file}::{rel}"
        if key not in self._images:
            img = resize_image(read_image(resolve_path(index_file, rel)), self.image_size)
            self._images[key] = (img * 255).round().to(torch.uint8)
        return self._images[key].float() / 255.0

    def vocabulary(self, step: int, count: int) -> tuple[list[str], torch.Tensor]:
        """Up to ``count`` vocabulary phrases (all when the vocabulary is that small; else a draw seeded by the
        step) and the teacher's embedding of each [n, D], for the phrase-contrast term."""
        if self._vocab is None:
            self._vocab = self.cache.vocabulary()  # sam3_edge.cache.phrases.PhraseCache
        phrases, text = self._vocab
        if len(phrases) <= count:
            return list(phrases), text
        picks = np.sort(np.random.default_rng([self.seed, step, 1]).choice(len(phrases), size=count, replace=False))
        return [phrases[i] for i in picks], text[torch.from_numpy(picks)]

    def pick_phrases(self, presence: torch.Tensor, rng: np.random.Generator) -> list[int]:
        """Indices of the phrases drawn for one image, from the teacher's presence logits of all of its phrases."""
        present = np.flatnonzero(presence.float().numpy() >= 0.0)
        absent = np.flatnonzero(presence.float().numpy() < 0.0)
        n = min(self.phrases, len(presence))
        n_pos = min(len(present), int(round(n * self.positive_fraction)))
        n_neg = min(len(absent), n - n_pos)
        n_pos = min(len(present), n - n_neg)  # too few absent phrases: more present ones
        pos = rng.choice(present, size=n_pos, replace=False) if n_pos else np.zeros(0, dtype=np.int64)
        neg = rng.choice(absent, size=n_neg, replace=False) if n_neg else np.zeros(0, dtype=np.int64)
        return sorted(int(i) for i in np.concatenate([pos, neg]))

    def batch(self, step: int, images: int, *, rank: int = 0, world_size: int = 1) -> dict[str, Any]:
        """-> {image [I,3,S,S], prompts [I*P] text prompts, image_index [I*P], group [I*P] (= image_index),
        phrases [I*P] str, teacher {presence_logit [I*P], class_logits [I*P, Q], boxes [I*P, Q, 4]} float32}."""
        rng = np.random.default_rng([self.seed, step])
        picks = rng.choice(len(self.keys), size=images * world_size, replace=len(self.keys) < images * world_size)
        pixels, prompts, index, texts, teacher = [], [], [], [], []
        for slot, i in enumerate(picks[rank::world_size]):
            key = self.keys[int(i)]
            meta = self.cache.meta(key)
            t = self.cache.load(key)
            chosen = self.pick_phrases(t["presence_logit"], np.random.default_rng([self.seed, step, int(i)]))
            pixels.append(self._image(meta["index_file"], meta["image"]))
            for j in chosen:
                prompts.append(Prompt(kind="text", text=meta["phrases"][j]))
                index.append(slot)
                texts.append(meta["phrases"][j])
            teacher.append({n: t[n][chosen].float() for n in ("presence_logit", "class_logits", "boxes")})
        image_index = torch.tensor(index, dtype=torch.int64)
        vocab, vocab_text = self.vocabulary(step, self.vocab_phrases) if self.vocab_phrases else ([], None)
        return {
            "vocab_phrases": vocab,
            "vocab_text": vocab_text,
            "image": torch.stack(pixels),
            "prompts": prompts,
            "image_index": image_index,
            "group": image_index,
            "phrases": texts,
            "teacher": {n: torch.cat([t[n] for t in teacher]) for n in teacher[0]},
        }
