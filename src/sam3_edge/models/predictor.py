"""The eager student as a :class:`sam3_edge.types.Predictor`."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sam3_edge.models.encoders import build_tokenizer
from sam3_edge.models.prompts import follow_prompt, prepare_prompts
from sam3_edge.models.student import Student
from sam3_edge.types import Prediction, Prompt


class StudentPredictor:
    """Wraps a :class:`Student`; images of another size are resized to the student's input (prompts scaled)."""

    def __init__(self, model: Student, *, name: str = "student", device: str | torch.device = "cpu") -> None:
        self.model = model.eval().to(device)
        self.name = name
        self.device = torch.device(device)
        self.image_size = model.config.image_size
        self.tokenizer = build_tokenizer(model.config.context_length)

    def _frame(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, S, S] in [0, 1] -> float32 on the device at the student's input size."""
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[-1] != images.shape[-2]:
            raise ValueError(f"images must be [B, 3, S, S], got {tuple(images.shape)}")
        x = images.to(self.device, torch.float32)
        if images.shape[-1] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        return x

    def _prompts(self, prompts: list[Prompt], side: int):
        """Prompts in pixels of a ``side`` x ``side`` input -> prompt tensors at the student's input size."""
        scale = self.image_size / side
        pt = prepare_prompts(prompts, tokenizer=self.tokenizer, max_points=self.model.config.max_points, scale=scale)
        return pt.to(self.device)

    def _inputs(self, images: torch.Tensor, prompts: list[Prompt]):
        x = self._frame(images)
        if len(prompts) != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {len(prompts)} prompts")
        return x, self._prompts(prompts, images.shape[-1])

    @torch.no_grad()
    def predict(self, images: torch.Tensor, prompts: list[Prompt]) -> Prediction:
        x, pt = self._inputs(images, prompts)
        return self._prediction(self.model(x, pt.token_ids, pt.points, pt.box, pt.box_valid))

    @torch.no_grad()
    def predict_video(self, frames: torch.Tensor, prompt: Prompt) -> list[Prediction]:
        """frames [T, 3, S, S] in [0, 1]; ``prompt`` on frame 0 -> T predictions (batch 1 each).

        The protocol of video distillation (``sam3_edge.train.video``): frame 0 carries the prompt, later frames
        only its phrase (nothing for a point / box prompt), so the object is followed through the memory.
        """
        if frames.ndim != 4:
            raise ValueError(f"frames must be [T, 3, S, S], got {tuple(frames.shape)}")
        state, valid = self.model.init_memory(1)
        # the two prompt tensor sets (frame 0, later frames) are prepared once, not re-tokenised per frame
        side = frames.shape[-1]
        first = self._prompts([prompt], side)
        later = first if frames.shape[0] == 1 else self._prompts([follow_prompt(prompt)], side)
        preds = []
        for t in range(frames.shape[0]):
            x = self._frame(frames[t : t + 1])
            pt = first if t == 0 else later
            out = self.model(x, pt.token_ids, pt.points, pt.box, pt.box_valid, memory_state=state, memory_valid=valid)
            preds.append(self._prediction(out))
            state = self.model.update_memory(out, state, valid)
            valid = torch.ones_like(valid)
        return preds

    @staticmethod
    def _prediction(out: dict) -> Prediction:
        return Prediction(
            mask_logits=out["mask_logits"],
            boxes=out["boxes"],
            scores=out["scores"],
            presence=out["presence_logit"].sigmoid(),
            iou=out["iou_logits"].sigmoid(),
        )
