"""Fake scenes (coloured rectangles on a plain background), data index files and predictors segmenting them by colour.

Two scene sets: :data:`EVAL_SCENES` (pure colours on black, 32 px, loose colour match so lossy video frames still
segment) for the evaluation tests, :data:`REPORT_SCENES` (muted colours on grey, 48 px) for the report tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from sam3_edge.eval.samples import ConceptSample, VideoObject, VideoSample, prompt_from_mask
from sam3_edge.types import Prediction, Prompt

Rects = dict[str, list[tuple[int, int, int, int]]]  # colour -> rectangles (x0, y0, x1, y1) in pixels


@dataclass(frozen=True)
class SceneSet:
    """How the scenes are drawn and told apart: a pixel is ``colour`` when its distance to the colour (``norm``: 2
    Euclidean, inf largest channel difference) is under ``tolerance``, foreground when a channel differs from the
    background by more than ``background_tolerance``."""

    colours: dict[str, tuple[int, int, int]]
    size: int
    background: int
    tolerance: float
    norm: float
    background_tolerance: float
    layouts: tuple[Rects, ...]  # the scenes of concept_split

    def scene(self, rects: Rects) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Non-overlapping coloured rectangles -> (image uint8 [S, S, 3], colour -> GT masks bool [G, S, S])."""
        size = self.size
        image = np.full((size, size, 3), self.background, np.uint8)
        masks: dict[str, np.ndarray] = {}
        for colour, boxes in rects.items():
            ms = []
            for x0, y0, x1, y1 in boxes:
                m = np.zeros((size, size), bool)
                m[y0:y1, x0:x1] = True
                image[m] = self.colours[colour]
                ms.append(m)
            masks[colour] = np.stack(ms) if ms else np.zeros((0, size, size), bool)
        return image, masks

    def foreground(self, rgb: np.ndarray, colour: str | None) -> np.ndarray:
        """rgb int [H, W, 3] -> bool [H, W]: the pixels of ``colour``, or every non-background pixel (None)."""
        if colour is None:
            return np.abs(rgb - self.background).max(-1) > self.background_tolerance
        return np.linalg.norm(rgb - np.array(self.colours[colour]), ord=self.norm, axis=-1) < self.tolerance


EVAL_SCENES = SceneSet(
    colours={"red": (255, 0, 0), "blue": (0, 0, 255), "green": (0, 255, 0)},
    size=32,
    background=0,
    tolerance=100,
    norm=2,
    background_tolerance=100,
    layouts=(
        {"red": [(2, 2, 10, 10), (20, 4, 28, 12)], "blue": [(4, 18, 14, 28)]},
        {"red": [(12, 12, 22, 22)], "blue": [(0, 0, 6, 6), (24, 24, 32, 32)]},
        {"blue": [(8, 2, 18, 30)]},
    ),
)
REPORT_SCENES = SceneSet(
    colours={"red": (230, 30, 30), "blue": (30, 30, 230), "green": (30, 200, 30)},
    size=48,
    background=128,
    tolerance=60,
    norm=np.inf,
    background_tolerance=60,
    layouts=(
        {"red": [(4, 4, 16, 16), (28, 6, 40, 18)], "blue": [(6, 28, 20, 42)]},
        {"green": [(20, 20, 36, 36)], "blue": [(2, 2, 10, 10)]},
        {"red": [(10, 24, 30, 44)]},
    ),
)


def concept_split(
    scenes: SceneSet,
    *,
    negatives: bool = True,
    positives: bool = True,
    kinds=("point", "box"),
    image_key: str = "img{}",
) -> list[ConceptSample]:
    """Every colour asked on every layout ('<colour> square'; negatives where absent), with point/box prompts."""
    samples = []
    for i, rects in enumerate(scenes.layouts):
        image, masks = scenes.scene(rects)
        for colour in scenes.colours:
            gt = masks.get(colour, np.zeros((0, scenes.size, scenes.size), bool))
            if (len(gt) and not positives) or (not len(gt) and not negatives):
                continue
            prompts = (
                tuple((prompt_from_mask(gt[0], k, image_size=scenes.size, text=f"{colour} square"), 0) for k in kinds)
                if len(gt)
                else ()
            )
            samples.append(
                ConceptSample(
                    pair_id=len(samples),
                    image_key=image_key.format(i),
                    text=f"{colour} square",
                    image=image,
                    gt_masks=gt,
                    geometric_prompts=prompts,
                )
            )
    return samples


def moving_square_video(frames: int = 9, stride: int = 2) -> VideoSample:
    """An EVAL_SCENES clip: a red square moving right, a blue one entering at frame 2; GT every ``stride`` frames."""
    size = EVAL_SCENES.size
    imgs, red, blue = [], {}, {}
    for t in range(frames):
        image, masks = EVAL_SCENES.scene(
            {"red": [(2 + t, 4, 10 + t, 12)], "blue": [(18, 16 + t // 2, 26, 22 + t // 2)] if t >= 2 else []}
        )
        imgs.append(image)
        if t % stride == 0:
            red[t] = masks["red"][0]
            blue[t] = masks["blue"][0] if len(masks["blue"]) else np.zeros((size, size), bool)
    objects = (
        VideoObject(object_id=1, masks=red, text="red square"),
        VideoObject(object_id=2, masks=blue, text="blue square"),
    )
    return VideoSample(video_id="clip0", frames=np.stack(imgs), objects=objects)


def write_index(root: Path, samples: list[ConceptSample], video: VideoSample | None = None) -> dict[str, Path]:
    """Write the fake split as data index files (PNG images, mp4 clip) in the data stage's format; name -> path."""
    from PIL import Image

    from sam3_edge.data.rle import encode_mask
    from sam3_edge.data.video import write_video
    from sam3_edge.utils import write_json

    (root / "img").mkdir(parents=True, exist_ok=True)
    pairs, images = [], {}
    for s in samples:
        name = f"img/{s.image_key}.png"
        h, w = s.image.shape[:2]
        if s.image_key not in images:
            Image.fromarray(s.image).save(root / name)
            images[s.image_key] = {"image_id": len(images), "image": name, "width": w, "height": h, "instances": []}
        inst = [{"rle": encode_mask(m), "box": _box_px(m), "area": float(m.sum())} for m in s.gt_masks]
        images[s.image_key]["instances"] += inst
        pairs.append({"pair_id": s.pair_id, "image": name, "width": w, "height": h, "text": s.text, "instances": inst})
    out = {"concepts": root / "concepts_val.json", "images": root / "images_val.json"}
    write_json(out["concepts"], {"root": ".", "kind": "concepts", "records": pairs})
    write_json(out["images"], {"root": ".", "kind": "images", "records": list(images.values())})
    if video is not None:
        h, w = video.frames.shape[1:3]
        write_video(root / "clip.mp4", video.frames)
        frames = sorted(video.objects[0].masks)
        masklets = [
            {
                "masklet_id": o.object_id,
                "text": o.text,
                "frames": {
                    str(t): encode_mask(o.masks[t]) if o.masks[t].any() else {"size": [h, w], "counts": ""}
                    for t in frames
                },
            }
            for o in video.objects
        ]
        out["videos"] = root / "videos_val.json"
        record = {
            "video_id": video.video_id,
            "video": "clip.mp4",
            "width": w,
            "height": h,
            "num_frames": len(video.frames),
            "fps": 24.0,
            "annotated_frames": frames,
            "masklets": masklets,
        }
        write_json(out["videos"], {"root": ".", "kind": "videos", "records": [record]})
    return out


def write_report_index(root: Path) -> Path:
    """REPORT_SCENES as an SA-Co concepts index (every colour asked on every image: 4 negatives); its path."""
    return write_index(root, concept_split(REPORT_SCENES, kinds=(), image_key="scene{}"))["concepts"]


def _box_px(m: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(m)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def _box_norm(m: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(m)
    h, w = m.shape
    return [xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h] if len(xs) else [0.0] * 4


class ColourOracle:
    """Perfect on the fake scenes: the phrase's colour split into connected components; point/box pick one."""

    name = "oracle"

    def __init__(self, scenes: SceneSet, image_size: int | None = None) -> None:
        self.scenes = scenes
        self.image_size = scenes.size if image_size is None else image_size

    def _components(self, image: torch.Tensor, colour: str | None) -> list[np.ndarray]:
        rgb = (image.permute(1, 2, 0).numpy() * 255).round().astype(int)
        labels, n = ndimage.label(self.scenes.foreground(rgb, colour))
        return [labels == k for k in range(1, n + 1)]

    def _one(self, image: torch.Tensor, prompt: Prompt) -> tuple[list[np.ndarray], list[float]]:
        colour = prompt.text.split()[0] if prompt.text.strip() else None  # ' ': no phrase (video frames)
        comps = self._components(image, colour)
        if prompt.kind == "text" or not comps:
            return comps, [0.95] * len(comps)
        if prompt.kind == "point":
            x, y, _ = prompt.points[0]
            key = [not c[min(int(y), self.image_size - 1), min(int(x), self.image_size - 1)] for c in comps]
        else:
            x0, y0, x1, y1 = prompt.box
            box = np.zeros_like(comps[0])
            box[int(y0) : int(np.ceil(y1)), int(x0) : int(np.ceil(x1))] = True
            key = [-(c & box).sum() / (c | box).sum() for c in comps]
        order = np.argsort(key, kind="stable")
        return [comps[i] for i in order], [0.9] + [0.2] * (len(comps) - 1)

    def predict(self, images: torch.Tensor, prompts: list[Prompt]) -> Prediction:
        assert images.shape[-1] == self.image_size, images.shape
        outs = [self._one(img, pr) for img, pr in zip(images, prompts, strict=True)]
        q = max(1, max(len(m) for m, _ in outs))
        s = self.image_size
        logits = torch.full((len(outs), q, s, s), -10.0)
        boxes = torch.zeros(len(outs), q, 4)
        scores = torch.zeros(len(outs), q)
        for b, (masks, sc) in enumerate(outs):
            if masks:
                logits[b, : len(masks)] = torch.from_numpy(np.stack(masks)).float() * 20 - 10
                boxes[b, : len(masks)] = torch.tensor([_box_norm(m) for m in masks])
                scores[b, : len(masks)] = torch.tensor(sc)
        presence = (scores.max(1).values >= 0.5).float()
        return Prediction(mask_logits=logits, boxes=boxes, scores=scores, presence=presence)


class PromptIgnoring(ColourOracle):
    """Every non-background pixel as one instance whatever the prompt: wrong on negatives and on point/box."""

    name = "ignoring"

    def _one(self, image, prompt):
        fg = self._components(image, None)
        return ([np.any(np.stack(fg), 0)], [0.9]) if fg else ([], [])


class VideoOracle(ColourOracle):
    """Tracks the colour of the object under the frame-0 prompt."""

    name = "video_oracle"

    def predict_video(self, frames: torch.Tensor, prompt: Prompt) -> list[Prediction]:
        first = self.predict(frames[:1], [prompt])
        top = int(first.scores[0].argmax())
        mask = (first.mask_logits[0, top] > 0).numpy()
        rgb = (frames[0].permute(1, 2, 0).numpy() * 255).round().astype(int)[mask]
        colours = self.scenes.colours
        colour = min(colours, key=lambda c: np.linalg.norm(rgb.mean(0) - np.array(colours[c])))
        return [self.predict(f[None], [Prompt(kind="text", text=f"{colour} square")]) for f in frames]


class RandomMasks:
    name = "random"
    image_size = EVAL_SCENES.size

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
