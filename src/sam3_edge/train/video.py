"""Video-memory distillation: only the memory attention (zero-gated) and the Perceiver memory train.

It runs after the fine-tune, on the final image student (the memory learns the features it will read at
inference). A training clip is ``clip_frames`` consecutive frames that are both annotated (SA-V masklets) and
cached (teacher ``frames_fpn``). The first frame carries the prompt (the masklet's box or a point on it, or its
phrase); later frames get no point/box, so the object must be found through the memory (its prompt tokens and
its object pointer, ``sam3_edge.models.memory``). Losses per frame: the GT set criterion on the tracked masklet
(empty target where it is absent, through presence) plus alignment of the memory-conditioned encoder tokens
with the teacher's frame features. Frames decode from the clip's video.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch import nn

from sam3_edge.models.encoders import build_tokenizer
from sam3_edge.models.prompts import follow_prompt, prepare_prompts
from sam3_edge.models.student import VIDEO_PARTS, Student
from sam3_edge.train.config import VideoParams
from sam3_edge.train.distill_losses import feature_alignment_loss, tokens_to_map
from sam3_edge.train.loop import TrainRun, run_loop
from sam3_edge.train.phases import _init_student, gt_loss
from sam3_edge.types import Prompt

LOG = logging.getLogger(__name__)


class ClipBatches:
    """Deterministic per-step clips from a video cache + the SA-V masklets of its index."""

    def __init__(
        self, cache: Any, *, image_size: int, mask_size: int, clip_frames: int, prompt_kind: str, seed: int
    ) -> None:
        from sam3_edge.data.datasets import load_video_records

        self.cache, self.image_size, self.mask_size = cache, image_size, mask_size
        self.clip_frames, self.prompt_kind, self.seed = clip_frames, prompt_kind, seed
        self.clips: list[tuple[str, list[int], Any]] = []  # (cache key, usable frame positions, record)
        self.skipped: dict[str, str] = {}
        records: dict[str, dict[str, Any]] = {}
        for key in cache.keys():
            meta = cache.meta(key)
            index_file = meta["index_file"]
            if index_file not in records:
                records[index_file] = {r.video_id: r for r in load_video_records(index_file)}
            rec = records[index_file].get(key)
            if rec is None:
                self.skipped[key] = f"no video record {key!r} in {index_file}"
                continue
            annotated = set(rec.annotated_frames)
            usable = [i for i, f in enumerate(meta["frame_indices"]) if f in annotated]
            if len(usable) < clip_frames:
                self.skipped[key] = f"{len(usable)} annotated+cached frames < clip_frames={clip_frames}"
                continue
            self.clips.append((key, usable, rec))
        if not self.clips:
            raise ValueError(f"no usable clip in the video cache ({len(self.skipped)} skipped: {self.skipped})")
        self._frames: dict[str, np.ndarray] = {}

    def _video(self, key: str) -> np.ndarray:
        from sam3_edge.data.datasets import read_video_frames, resolve_path

        if key not in self._frames:
            meta = self.cache.meta(key)
            path = resolve_path(meta["index_file"], meta["video"])
            self._frames[key] = read_video_frames(path, frame_indices=list(meta["frame_indices"]))
        return self._frames[key]

    def _one(self, rng: np.random.Generator) -> dict[str, Any]:
        from sam3_edge.data.datasets import resize_image, resize_masks
        from sam3_edge.data.rle import decode_rle

        key, usable, rec = self.clips[int(rng.integers(len(self.clips)))]
        start = int(rng.integers(0, len(usable) - self.clip_frames + 1))
        pos = usable[start : start + self.clip_frames]
        frame_ids = [self.cache.meta(key)["frame_indices"][p] for p in pos]
        present = [m for m in rec.masklets if decode_rle(m.frames[frame_ids[0]]).any()] if rec.masklets else []
        if not present:
            present = list(rec.masklets)
        masklet = present[int(rng.integers(len(present)))]
        masks = np.stack(
            [
                decode_rle(masklet.frames[f]) if f in masklet.frames else np.zeros((rec.height, rec.width), bool)
                for f in frame_ids
            ]
        )
        video = self._video(key)
        frames = torch.stack([resize_image(video[p], self.image_size) for p in pos])
        gt = resize_masks(masks, self.mask_size)  # [T, M, M]
        ys, xs = np.nonzero(masks[0])
        s = self.image_size
        if self.prompt_kind == "text" and masklet.text:
            prompt = Prompt(kind="text", text=masklet.text)
        elif self.prompt_kind == "box" and len(xs):
            sx, sy = s / rec.width, s / rec.height
            box = (xs.min() * sx, ys.min() * sy, (xs.max() + 1) * sx, (ys.max() + 1) * sy)
            prompt = Prompt(kind="box", text=masklet.text, box=tuple(float(v) for v in box))
        elif len(xs):
            k = int(rng.integers(len(xs)))
            prompt = Prompt(kind="point", points=(((xs[k] + 0.5) * s / rec.width, (ys[k] + 0.5) * s / rec.height, 1),))
        else:
            prompt = Prompt(kind="text", text=masklet.text or "object")
        teacher = self.cache.load(key)["frames_fpn"][pos].float()  # [T, C, h, w]
        return {"frames": frames, "gt": gt, "prompt": prompt, "teacher": teacher}

    def __call__(self, step: int, batch_size: int, rank: int, world_size: int) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, step])
        clips = [self._one(rng) for _ in range(batch_size * world_size)][rank::world_size]
        return {
            "frames": torch.stack([c["frames"] for c in clips], dim=1),  # [T, B, 3, S, S]
            "gt": [c["gt"] for c in clips],  # B x [T, M, M]
            "prompts": [c["prompt"] for c in clips],
            "teacher": torch.stack([c["teacher"] for c in clips], dim=1),  # [T, B, C, h, w]
        }


def distill_video(student: Student, cache: Any, params: VideoParams, run: TrainRun) -> dict[str, Any]:
    """Train the video memory alone (``VIDEO_PARTS``) on cached per-frame teacher features + SA-V GT, from
    ``run.init_from`` (the fine-tuned student)."""
    o = params.optim
    _init_student(student, run.init_from)
    data = ClipBatches(
        cache,
        image_size=student.config.image_size,
        mask_size=o.mask_size,
        clip_frames=params.clip_frames,
        prompt_kind=params.prompt_kind,
        seed=o.seed,
    )
    channels = int(cache.manifest.get("frame_shape", [0])[0]) or cache.load(cache.keys()[0])["frames_fpn"].shape[1]
    extra = nn.ModuleDict({"frames": nn.Conv2d(student.config.dim, channels, 1)})
    tokenizer = build_tokenizer(student.config.context_length)

    def loss_fn(model: Student, ex: nn.ModuleDict, batch: dict) -> dict[str, torch.Tensor]:
        frames, prompts = batch["frames"], batch["prompts"]
        b = frames.shape[1]
        state, valid = model.init_memory(b)
        first = prepare_prompts(prompts, tokenizer=tokenizer, max_points=model.config.max_points)
        later = prepare_prompts(
            [follow_prompt(p) for p in prompts], tokenizer=tokenizer, max_points=model.config.max_points
        )
        terms: dict[str, list[torch.Tensor]] = {}
        for t in range(frames.shape[0]):
            pt = first if t == 0 else later
            out = model(
                frames[t], pt.token_ids, pt.points, pt.box, pt.box_valid, memory_state=state, memory_valid=valid
            )
            masks = [g[t][None] if g[t].any() else g[t][None][:0] for g in batch["gt"]]  # [1 or 0, M, M]
            boxes = [_mask_box(m) for m in masks]
            gt = gt_loss(out, {"gt_masks": masks, "gt_boxes": boxes}, params.loss, o.mask_size)
            terms.setdefault("gt_total", []).append(gt["total"])
            terms.setdefault("gt_mask_dice", []).append(gt["mask_dice"])
            feat = feature_alignment_loss(ex["frames"](tokens_to_map(out["encoder"])), batch["teacher"][t])
            terms.setdefault("align_frames", []).append(feat)
            state = model.update_memory(out, state, valid)
            valid = torch.ones_like(valid)
        mean = {k: torch.stack(v).mean() for k, v in terms.items()}
        mean["total"] = mean["gt_total"] + params.feature_weight * mean["align_frames"]
        mean["gate"] = model.memory_attention.gate.detach().tanh()
        return mean

    result = run_loop(
        stage="distill_video",
        student=student,
        trainable=VIDEO_PARTS,
        loss_fn=loss_fn,
        batch_fn=lambda step, rank, world: data(step, o.batch_size, rank, world),
        optim=o,
        run=run,
        extra=extra,
    )
    gate = float(student.memory_attention.gate.detach().tanh())
    return result.metrics(clips=len(data.clips), skipped_clips=data.skipped, memory_gate=gate)


def _mask_box(masks: torch.Tensor) -> torch.Tensor:
    """[N, M, M] bool -> [N, 4] xyxy normalised boxes of the masks."""
    if len(masks) == 0:
        return torch.zeros(0, 4)
    m = masks.shape[-1]
    out = []
    for mask in masks:
        ys, xs = torch.nonzero(mask, as_tuple=True)
        out.append(torch.stack([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).float() / m)
    return torch.stack(out)
