"""What the evaluation driver consumes: decoded samples, built from the data index through the data API.

The driver itself only sees :class:`ConceptSample` / :class:`VideoSample` (numpy images and masks at the
original resolution), so it is tested with samples made in memory; the loaders below are the one place that
reads ``data/index/*.json`` (``sam3_edge.data.datasets``, imported lazily) and samples point/box prompts
(``sam3_edge.data.prompts.sample_prompt``, seeded: every model sees the same prompts).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.ndimage import distance_transform_edt

from sam3_edge.data.records import ConceptPair, ImageRecord, VideoRecord
from sam3_edge.types import Prompt, PromptKind
from sam3_edge.utils import LOG


@dataclass(frozen=True)
class ConceptSample:
    """One image and one phrase (SA-Co pair), or one SA-1B image with geometric prompts only."""

    pair_id: int  # COCO results image_id
    image_key: str  # same key = same image (prompt sensitivity compares the phrases asked on it)
    text: str
    image: np.ndarray  # uint8 [H, W, 3]
    gt_masks: np.ndarray  # bool [G, H, W]; G = 0 for a negative pair
    geometric_prompts: tuple[tuple[Prompt, int], ...] = ()  # (point/box prompt in S x S pixels, target index)
    ask_text: bool = True  # run the text prompt (False for SA-1B images, which have no phrase)


@dataclass(frozen=True)
class VideoObject:
    object_id: int
    masks: dict[int, np.ndarray]  # annotated frame index -> bool [H, W] (all False where the object is absent)
    text: str = ""


@dataclass(frozen=True)
class VideoSample:
    video_id: str
    frames: np.ndarray  # uint8 [T, H, W, 3]
    objects: tuple[VideoObject, ...]


@dataclass
class Skips:
    """Counted, recorded skips (reason -> count); the driver writes them into the metrics JSON."""

    counts: Counter = field(default_factory=Counter)

    def add(self, reason: str, detail: str = "") -> None:
        self.counts[reason] += 1
        LOG.warning("evaluation skip (%s): %s", reason, detail)

    def to_json(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))


def prompt_from_mask(mask: np.ndarray, kind: PromptKind, *, image_size: int, text: str = "") -> Prompt:
    """A point (the interior pixel farthest from the boundary) or box prompt of a non-empty mask [H, W] bool,
    in pixels of the image resized to ``image_size`` x ``image_size``; a text prompt needs ``text``."""
    if kind == "text":
        return Prompt(kind="text", text=text)
    if not mask.any():
        raise ValueError("cannot build a point/box prompt from an empty mask")
    h, w = mask.shape
    sx, sy = image_size / w, image_size / h
    if kind == "box":
        ys, xs = np.nonzero(mask)
        return Prompt(
            kind="box", text=text, box=(xs.min() * sx, ys.min() * sy, (xs.max() + 1) * sx, (ys.max() + 1) * sy)
        )
    dist = distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return Prompt(kind="point", text=text, points=(((x + 0.5) * sx, (y + 0.5) * sy, 1),))


def _decode(rle, shape: tuple[int, int]) -> np.ndarray:
    from sam3_edge.data.datasets import decode_rle

    if not rle or not rle.get("counts"):
        return np.zeros(shape, dtype=bool)
    mask = np.asarray(decode_rle(rle), dtype=bool)
    if mask.shape != shape:
        raise ValueError(f"mask of size {mask.shape} for an image of size {shape}")
    return mask


def limit(items: list, n: int) -> list:
    """The first ``n`` items (all when ``n`` is 0)."""
    return items[:n] if n > 0 else items


def concept_samples(
    index_file: str | Path,
    pairs: Sequence[ConceptPair],
    *,
    image_size: int,
    kinds: tuple[PromptKind, ...],
    seed: int,
    skips: Skips,
) -> Iterator[ConceptSample]:
    """SA-Co pairs (records of ``index_file``) as samples; point/box prompts come from ``sample_prompt`` (positives
    only) with a generator seeded by ``(seed, pair_id)``: the same prompt for every model, whatever the chunking."""
    from sam3_edge.data.datasets import read_image, resolve_path
    from sam3_edge.data.prompts import sample_prompt

    geometric = [k for k in kinds if k != "text"]
    for pair in pairs:
        rng = np.random.default_rng([seed, pair.pair_id])
        path = resolve_path(index_file, pair.image)
        try:
            image = read_image(path)
            shape = (pair.height, pair.width)
            if image.shape[:2] != shape:
                raise ValueError(f"image is {image.shape[1]}x{image.shape[0]}, index says {pair.width}x{pair.height}")
            gt = (
                np.stack([_decode(i.rle, shape) for i in pair.instances])
                if pair.instances
                else np.zeros((0, *shape), bool)
            )
        except (ValueError, OSError) as err:  # DataError is a ValueError
            skips.add("unreadable_pair", f"{path}: pair {pair.pair_id}: {err}")
            continue
        prompts = []
        if not pair.negative:
            for kind in geometric:
                prompt, targets = sample_prompt(pair, kind, rng, image_size=image_size)
                prompts.append((prompt, int(targets[0])))
        yield ConceptSample(
            pair_id=pair.pair_id,
            image_key=str(pair.image),
            text=pair.text,
            image=image,
            gt_masks=gt,
            geometric_prompts=tuple(prompts),
            ask_text="text" in kinds,
        )


def image_samples(
    index_file: str | Path,
    records: Sequence[ImageRecord],
    *,
    image_size: int,
    kinds: tuple[PromptKind, ...],
    max_instances: int,
    skips: Skips,
) -> Iterator[ConceptSample]:
    """SA-1B images (records of ``index_file``) as samples with one point and/or box prompt for each of the first
    ``max_instances`` instances (point = the annotation's ``point_coords`` if any, else the most interior pixel)."""
    from sam3_edge.data.datasets import read_image, resolve_path

    geometric = [k for k in kinds if k != "text"]
    for rec in records:
        path = resolve_path(index_file, rec.image)
        try:
            image = read_image(path)
            shape = (rec.height, rec.width)
            if image.shape[:2] != shape:
                raise ValueError(f"image is {image.shape[1]}x{image.shape[0]}, index says {rec.width}x{rec.height}")
            instances = rec.instances[:max_instances]
            gt = np.stack([_decode(i.rle, shape) for i in instances]) if instances else np.zeros((0, *shape), bool)
        except (ValueError, OSError) as err:
            skips.add("unreadable_image", f"{path}: {err}")
            continue
        prompts = []
        for t, inst in enumerate(instances):
            if not gt[t].any():
                skips.add("empty_instance_mask", f"{path}: instance {t}")
                continue
            for kind in geometric:
                if kind == "point" and inst.point is not None:
                    px, py = inst.point
                    prompt = Prompt(
                        kind="point", points=((px * image_size / rec.width, py * image_size / rec.height, 1),)
                    )
                else:
                    prompt = prompt_from_mask(gt[t], kind, image_size=image_size)
                prompts.append((prompt, t))
        if prompts:
            yield ConceptSample(
                pair_id=rec.image_id,
                image_key=str(rec.image),
                text="",
                image=image,
                gt_masks=gt,
                geometric_prompts=tuple(prompts),
                ask_text=False,
            )


def video_samples(index_file: str | Path, records: Sequence[VideoRecord], *, skips: Skips) -> Iterator[VideoSample]:
    """SA-V clips (records of ``index_file``): all frames decoded, masklets decoded on their annotated frames."""
    from sam3_edge.data.datasets import read_video_frames, resolve_path

    for rec in records:
        path = resolve_path(index_file, rec.video)
        try:
            frames = read_video_frames(path)
            shape = (rec.height, rec.width)
            if frames.shape[1:3] != shape:
                raise ValueError(f"frames are {frames.shape[2]}x{frames.shape[1]}, index says {rec.width}x{rec.height}")
            beyond = [t for t in rec.annotated_frames if t >= len(frames)]
            if beyond:
                raise ValueError(f"annotated frames {beyond} beyond the {len(frames)} decoded frames")
            objects = tuple(
                VideoObject(
                    object_id=m.masklet_id,
                    text=m.text or "",
                    masks={
                        int(t): _decode(m.frames.get(t, m.frames.get(str(t))), shape)  # type: ignore[call-overload]
                        for t in rec.annotated_frames
                    },
                )
                for m in rec.masklets
            )
        except (ValueError, OSError) as err:
            skips.add("unreadable_video", f"{path}: {err}")
            continue
        yield VideoSample(video_id=rec.video_id, frames=frames, objects=objects)
