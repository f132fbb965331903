"""The eager student as a :class:`sam3_edge.types.Predictor`."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sam3_edge.models.encoders import build_tokenizer
from sam3_edge.models.prompts import prepare_prompts
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

    @torch.no_grad()
    def predict(self, images: torch.Tensor, prompts: list[Prompt]) -> Prediction:
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[-1] != images.shape[-2]:
            raise ValueError(f"images must be [B, 3, S, S], got {tuple(images.shape)}")
        if len(prompts) != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {len(prompts)} prompts")
        scale = self.image_size / images.shape[-1]
        x = images.to(self.device, torch.float32)
        if images.shape[-1] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        pt = prepare_prompts(prompts, tokenizer=self.tokenizer, max_points=self.model.config.max_points, scale=scale)
        pt = pt.to(self.device)
        out = self.model(x, pt.token_ids, pt.points, pt.box, pt.box_valid)
        return Prediction(
            mask_logits=out["mask_logits"],
            boxes=out["boxes"],
            scores=out["scores"],
            presence=out["presence_logit"].sigmoid(),
            iou=out["iou_logits"].sigmoid(),
        )
