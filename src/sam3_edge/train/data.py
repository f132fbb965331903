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

    def __init__(
        self, cache: Any, *, image_size: int, mask_size: int, with_gt: bool = True, with_phrases: bool = False
    ) -> None:
        """``with_phrases``: each batch lists the other (phrase, positive) pairs of every sample's image
        (``image_phrases``, for phase 2's phrase-contrast term); otherwise those lists are empty."""
        self.cache = cache
        self.image_size = image_size
        self.mask_size = mask_size
        self.with_gt = with_gt
        self.with_phrases = with_phrases
        teacher_size = cache.manifest.get("image_size")
        if not teacher_size:
            raise ValueError(
                f"{getattr(cache, 'dir', 'cache')}: manifest has no image_size (prompts are in its pixels)"
            )
        self.prompt_scale = image_size / float(teacher_size)
        self._pairs: dict[str, dict[int, Any]] = {}
        self._phrases: dict[str, dict[str, list[tuple[int, str, bool]]]] = {}
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

    def image_phrases(self, meta: dict) -> list[tuple[str, bool]]:
        """The other concept pairs on the sample's image: (phrase, positive) each, in index order."""
        index_file = meta["index_file"]
        if index_file not in self._phrases:
            self._pair(index_file, meta["pair_id"])  # loads the index
            by_image: dict[str, list[tuple[int, str, bool]]] = {}
            for p in self._pairs[index_file].values():
                by_image.setdefault(p.image, []).append((p.pair_id, p.text, not p.negative))
            self._phrases[index_file] = by_image
        own = meta["pair_id"]
        return [(text, pos) for pid, text, pos in self._phrases[index_file].get(meta["image"], []) if pid != own]

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
        images, prompts, teacher, gt_masks, gt_boxes, phrases = [], [], [], [], [], []
        for key in keys:
            meta = self.cache.meta(key)
            phrases.append(self.image_phrases(meta) if self.with_phrases else [])
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
            "image_phrases": phrases,
        }
