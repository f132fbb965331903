"""Fake images, samples and predictors for the evaluation tests (colour rectangles segmented by colour)."""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from sam3_edge.eval.samples import ConceptSample, VideoObject, VideoSample, prompt_from_mask
from sam3_edge.types import Prediction, Prompt

COLOURS = {"red": (255, 0, 0), "blue": (0, 0, 255), "green": (0, 255, 0)}
SIZE = 32


def scene(
    rects: dict[str, list[tuple[int, int, int, int]]], size: int = SIZE
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Non-overlapping coloured rectangles (x0, y0, x1, y1) -> (image uint8 [H, W, 3], colour -> GT masks [G, H, W])."""
    image = np.zeros((size, size, 3), np.uint8)
    masks: dict[str, np.ndarray] = {}
    for colour, boxes in rects.items():
        ms = []
        for x0, y0, x1, y1 in boxes:
            m = np.zeros((size, size), bool)
            m[y0:y1, x0:x1] = True
            image[m] = COLOURS[colour]
            ms.append(m)
        masks[colour] = np.stack(ms) if ms else np.zeros((0, size, size), bool)
    return image, masks


def concept_split(*, negatives: bool = True, positives: bool = True, kinds=("point", "box")) -> list[ConceptSample]:
    scenes = [
        {"red": [(2, 2, 10, 10), (20, 4, 28, 12)], "blue": [(4, 18, 14, 28)]},
        {"red": [(12, 12, 22, 22)], "blue": [(0, 0, 6, 6), (24, 24, 32, 32)]},
        {"blue": [(8, 2, 18, 30)]},
    ]
    samples = []
    pid = 0
    for i, rects in enumerate(scenes):
        image, masks = scene(rects)
        for colour in COLOURS:
            gt = masks.get(colour, np.zeros((0, SIZE, SIZE), bool))
            if (len(gt) and not positives) or (not len(gt) and not negatives):
                continue
            prompts = (
                tuple((prompt_from_mask(gt[0], k, image_size=SIZE, text=f"{colour} square"), 0) for k in kinds)
                if len(gt)
                else ()
            )
            samples.append(
                ConceptSample(
                    pair_id=pid,
                    image_key=f"img{i}",
                    text=f"{colour} square",
                    image=image,
                    gt_masks=gt,
                    geometric_prompts=prompts,
                )
            )
            pid += 1
    return samples


def _logits(masks: list[np.ndarray], size: int) -> torch.Tensor:
    if not masks:
        return torch.full((1, size, size), -10.0)
    return torch.from_numpy(np.stack(masks)).float() * 20 - 10


def _box(m: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(m)
    h, w = m.shape
    return [xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h] if len(xs) else [0, 0, 0, 0]


class ColourOracle:
    """Perfect on colour scenes: segments the phrase's colour into connected components."""

    name = "oracle"
    image_size = SIZE

    def _components(self, image: torch.Tensor, colour: str | None) -> list[np.ndarray]:
        rgb = (image.permute(1, 2, 0).numpy() * 255).round().astype(int)
        if colour is None:
            fg = rgb.max(-1) > 100
        else:  # a tolerance, so lossy video frames still segment
            fg = np.linalg.norm(rgb - np.array(COLOURS[colour]), axis=-1) < 100
        labels, n = ndimage.label(fg)
        return [labels == k for k in range(1, n + 1)]

    def _one(self, image: torch.Tensor, prompt: Prompt) -> tuple[list[np.ndarray], list[float]]:
        colour = prompt.text.split()[0] if prompt.text.strip() else None  # ' ': no phrase (video frames)
        comps = self._components(image, colour)
        if prompt.kind == "text":
            return comps, [0.95] * len(comps)
        if prompt.kind == "point":
            x, y, _ = prompt.points[0]
            hit = [c for c in comps if c[int(y), int(x)]]
            return hit + [c for c in comps if not c[int(y), int(x)]], [0.9] + [0.2] * (len(comps) - 1)
        x0, y0, x1, y1 = prompt.box
        box = np.zeros_like(comps[0]) if comps else None
        if box is None:
            return [], []
        box[int(y0) : int(np.ceil(y1)), int(x0) : int(np.ceil(x1))] = True
        ious = [(c & box).sum() / (c | box).sum() for c in comps]
        order = np.argsort(ious)[::-1]
        return [comps[i] for i in order], [0.9] + [0.2] * (len(comps) - 1)

    def predict(self, images: torch.Tensor, prompts: list[Prompt]) -> Prediction:
        outs = [self._one(img, pr) for img, pr in zip(images, prompts, strict=True)]
        q = max(1, max(len(m) for m, _ in outs))
        logits = torch.full((len(outs), q, SIZE, SIZE), -10.0)
        boxes = torch.zeros(len(outs), q, 4)
        scores = torch.zeros(len(outs), q)
        for b, (masks, sc) in enumerate(outs):
            if masks:
                logits[b, : len(masks)] = _logits(masks, SIZE)
                boxes[b, : len(masks)] = torch.tensor([_box(m) for m in masks])
                scores[b, : len(masks)] = torch.tensor(sc)
        presence = (scores.max(1).values >= 0.5).float()
        return Prediction(mask_logits=logits, boxes=boxes, scores=scores, presence=presence)


class PromptIgnoring(ColourOracle):
    """Returns every coloured pixel as one instance whatever the prompt."""

    name = "ignoring"

    def _one(self, image, prompt):
        fg = self._components(image, None)
        return ([np.any(np.stack(fg), 0)], [0.9]) if fg else ([], [])


class RandomMasks:
    name = "random"
    image_size = SIZE

    def __init__(self, seed: int = 0, queries: int = 5) -> None:
        self.gen = torch.Generator().manual_seed(seed)
        self.q = queries

    def predict(self, images, prompts):
        b = len(prompts)
        return Prediction(
            mask_logits=torch.randn(b, self.q, 8, 8, generator=self.gen),
            boxes=torch.rand(b, self.q, 4, generator=self.gen).sort(-1).values,
            scores=torch.rand(b, self.q, generator=self.gen),
            presence=torch.rand(b, generator=self.gen),
        )


class VideoOracle(ColourOracle):
    """Tracks the colour of the object under the frame-0 prompt."""

    name = "video_oracle"

    def predict_video(self, frames: torch.Tensor, prompt: Prompt) -> list[Prediction]:
        first = self.predict(frames[:1], [prompt])
        top = int(first.scores[0].argmax())
        mask = (first.mask_logits[0, top] > 0).numpy()
        rgb = (frames[0].permute(1, 2, 0).numpy() * 255).round().astype(int)[mask]
        colour = min(COLOURS, key=lambda c: np.linalg.norm(rgb.mean(0) - np.array(COLOURS[c])))
        return [self.predict(f[None], [Prompt(kind="text", text=f"{colour} square")]) for f in frames]


def moving_square_video(frames: int = 9, stride: int = 2) -> VideoSample:
    imgs, red, blue = [], {}, {}
    for t in range(frames):
        image, masks = scene(
            {"red": [(2 + t, 4, 10 + t, 12)], "blue": [(18, 16 + t // 2, 26, 22 + t // 2)] if t >= 2 else []}
        )
        imgs.append(image)
        if t % stride == 0:
            red[t] = masks["red"][0]
            blue[t] = masks["blue"][0] if len(masks["blue"]) else np.zeros((SIZE, SIZE), bool)
    objects = (
        VideoObject(object_id=1, masks=red, text="red square"),
        VideoObject(object_id=2, masks=blue, text="blue square"),
    )
    return VideoSample(video_id="clip0", frames=np.stack(imgs), objects=objects)


def write_index(root, samples: list[ConceptSample], video: VideoSample | None = None) -> dict[str, object]:
    """Write the fake split as data index files (PNG images, mp4 clip) in the data stage's format."""
    from PIL import Image

    from sam3_edge.data.rle import encode_mask
    from sam3_edge.data.video import write_video
    from sam3_edge.utils import write_json

    (root / "img").mkdir(parents=True, exist_ok=True)
    pairs, images = [], {}
    for s in samples:
        name = f"img/{s.image_key}.png"
        if s.image_key not in images:
            Image.fromarray(s.image).save(root / name)
            h, w = s.image.shape[:2]
            inst = [{"rle": encode_mask(m), "box": _box_px(m), "area": float(m.sum())} for m in s.gt_masks]
            images[s.image_key] = {"image_id": len(images), "image": name, "width": w, "height": h, "instances": []}
        inst = [{"rle": encode_mask(m), "box": _box_px(m), "area": float(m.sum())} for m in s.gt_masks]
        images[s.image_key]["instances"] += inst
        pairs.append(
            {
                "pair_id": s.pair_id,
                "image": name,
                "width": s.image.shape[1],
                "height": s.image.shape[0],
                "text": s.text,
                "instances": inst,
            }
        )
    out = {"concepts": root / "concepts_val.json", "images": root / "images_val.json"}
    write_json(out["concepts"], {"root": ".", "kind": "concepts", "records": pairs})
    write_json(out["images"], {"root": ".", "kind": "images", "records": list(images.values())})
    if video is not None:
        write_video(root / "clip.mp4", video.frames)
        frames = sorted(video.objects[0].masks)
        masklets = [
            {
                "masklet_id": o.object_id,
                "text": o.text,
                "frames": {
                    str(t): encode_mask(o.masks[t]) if o.masks[t].any() else {"size": [SIZE, SIZE], "counts": ""}
                    for t in frames
                },
            }
            for o in video.objects
        ]
        out["videos"] = root / "videos_val.json"
        write_json(
            out["videos"],
            {
                "root": ".",
                "kind": "videos",
                "records": [
                    {
                        "video_id": video.video_id,
                        "video": "clip.mp4",
                        "width": SIZE,
                        "height": SIZE,
                        "num_frames": len(video.frames),
                        "fps": 24.0,
                        "annotated_frames": frames,
                        "masklets": masklets,
                    }
                ],
            },
        )
    return out


def _box_px(m: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(m)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]
