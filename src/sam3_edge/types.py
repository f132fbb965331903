"""The two contracts every model in the pipeline speaks: a :class:`Prompt` in, a :class:`Prediction` out.

Teacher adapter, eager student and ExecuTorch `.pte` runners all implement :class:`Predictor`, so the
evaluation driver, the visual QA and the CLI treat them alike and their figures are comparable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import torch

PromptKind = Literal["text", "point", "box"]


@dataclass(frozen=True)
class Prompt:
    """A prompt in pixels of the model input image (``[x, y]`` origin top-left).

    ``text`` is set for every kind when known (point/box prompts of SA-Co pairs keep their phrase, so a
    student can be scored per concept); ``points`` are ``(x, y, label)`` with label 1 = foreground,
    0 = background; ``box`` is ``(x0, y0, x1, y1)``.
    """

    kind: PromptKind
    text: str = ""
    points: tuple[tuple[float, float, int], ...] = ()
    box: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        if self.kind == "text" and not self.text:
            raise ValueError("text prompt needs a non-empty phrase")
        if self.kind == "point" and not self.points:
            raise ValueError("point prompt needs at least one point")
        if self.kind == "box" and self.box is None:
            raise ValueError("box prompt needs a box")

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "text": self.text,
            "points": [list(p) for p in self.points],
            "box": list(self.box) if self.box is not None else None,
        }

    @classmethod
    def from_json(cls, data: dict) -> Prompt:
        return cls(
            kind=data["kind"],
            text=data.get("text", ""),
            points=tuple(tuple(p) for p in data.get("points") or ()),  # type: ignore[misc]
            box=tuple(data["box"]) if data.get("box") is not None else None,  # type: ignore[arg-type]
        )


@dataclass
class Prediction:
    """Model output for a batch of B (image, prompt) pairs with Q instance queries each.

    mask_logits: [B, Q, h, w] float logits at the model's mask resolution (upsample to compare)
    boxes:       [B, Q, 4] xyxy normalised to [0, 1]
    scores:      [B, Q] per-query probability that the query is an instance of the prompt, already
                 multiplied by ``presence`` (SAM 3's final score = sigmoid(class) x sigmoid(presence))
    presence:    [B] probability that the concept is present in the image at all
    iou:         [B, Q] predicted mask IoU, when the model has an IoU head (else None)
    """

    mask_logits: torch.Tensor
    boxes: torch.Tensor
    scores: torch.Tensor
    presence: torch.Tensor
    iou: torch.Tensor | None = None


class Predictor(Protocol):
    """Anything the evaluation driver can score."""

    name: str
    image_size: int  # square input side in pixels

    def predict(self, images: torch.Tensor, prompts: list[Prompt]) -> Prediction:
        """images: [B, 3, S, S] float in [0, 1]; prompts: B prompts in pixels of that S x S image."""
        ...


def follow_prompt(p: Prompt) -> Prompt:
    """Prompt of the video frames after the first: the phrase for text prompts, nothing for geometry."""
    return p if p.kind == "text" else Prompt(kind="text", text=" ")
