"""Turn :class:`sam3_edge.types.Prompt` objects into the student's static-shape prompt tensors.

Shared by the eager :class:`StudentPredictor` and the ExecuTorch runner, so both feed the model alike.
Text goes to the text tower only for ``text`` prompts: point and box prompts are class-agnostic (SAM's
interactive semantics: the one instance under the point / in the box), so their phrase is not used.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sam3_edge.types import Prompt, follow_prompt  # noqa: F401  (follow_prompt: re-exported for the video loop)


@dataclass
class PromptTensors:
    token_ids: torch.Tensor  # [B, L] int64
    points: torch.Tensor  # [B, P, 3] float (x, y, label), label -1 = unused slot
    box: torch.Tensor  # [B, 4] float xyxy pixels
    box_valid: torch.Tensor  # [B] float {0, 1}

    def to(self, device: torch.device | str) -> PromptTensors:
        return PromptTensors(*(t.to(device) for t in (self.token_ids, self.points, self.box, self.box_valid)))


def prepare_prompts(prompts: list[Prompt], *, tokenizer, max_points: int, scale: float = 1.0) -> PromptTensors:
    """Prompts in pixels (times ``scale`` to reach the model's input size) -> :class:`PromptTensors`.

    More than ``max_points`` points is an error (the exported program has that many slots).
    """
    texts = [p.text if p.kind == "text" else "" for p in prompts]
    token_ids = tokenizer(texts).long()  # [B, L]
    b = len(prompts)
    points = torch.full((b, max_points, 3), -1.0)
    points[..., :2] = 0.0
    box = torch.zeros(b, 4)
    box_valid = torch.zeros(b)
    for i, p in enumerate(prompts):
        if p.kind == "point":
            if len(p.points) > max_points:
                raise ValueError(f"prompt {i} has {len(p.points)} points; the student takes at most {max_points}")
            for j, (x, y, label) in enumerate(p.points):
                points[i, j] = torch.tensor([x * scale, y * scale, float(label)])
        elif p.kind == "box":
            assert p.box is not None
            box[i] = torch.tensor(p.box) * scale
            box_valid[i] = 1.0
    return PromptTensors(token_ids, points, box, box_valid)
