"""One interface over transformers ``Sam3Model`` for text, point and box prompts, whatever the weights.

``TeacherAdapter.forward`` returns everything distillation needs (FPN levels, DETR encoder output, per-query
mask logits, boxes, class logits, presence logit); ``predict`` implements :class:`sam3_edge.types.Predictor`.

Prompt encoding (HF ``Sam3Model`` has a box-only geometry encoder):
* text -> the phrase, no geometry (all instances of the concept);
* box -> phrase ``visual`` + the box as a positive geometry prompt (SAM 3's visual-exemplar convention);
* point -> phrase ``visual`` + a box of side ``point_box_size`` centred on each point (label = point label).
Text and geometry prompts of one batch run as two groups over shared vision features, so a text prompt never
sees a padded geometry token and the output equals a single-prompt call.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from transformers import Sam3Model
from transformers.models.sam3.modeling_sam3 import Sam3VisionEncoderOutput

from sam3_edge.teacher.tokenizer import MAX_TEXT_LEN, VISUAL
from sam3_edge.types import Prediction, Prompt
from sam3_edge.utils import masked_mean

PAD_LABEL = -10  # Sam3Model's label for padded geometry prompts


class TeacherAdapter(nn.Module):
    def __init__(
        self,
        *,
        model: Sam3Model,
        tokenizer,
        image_size: int,
        fpn_levels: tuple[int, ...],
        point_box_size: float,
        name: str = "teacher",
        image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5),
        image_std: tuple[float, float, float] = (0.5, 0.5, 0.5),
    ) -> None:
        super().__init__()
        num_levels = len(model.config.vision_config.scale_factors)
        bad = [i for i in fpn_levels if i >= num_levels]
        if bad:
            raise ValueError(f"fpn_levels {bad} out of range: the model has {num_levels} FPN levels")
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.image_size = image_size
        self.fpn_levels = tuple(fpn_levels)
        self.point_box_size = point_box_size
        self.register_buffer("image_mean", torch.tensor(image_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("image_std", torch.tensor(image_std).view(1, 3, 1, 1), persistent=False)

    # -- inputs -------------------------------------------------------------------------------------------------
    def tokenize(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """texts: B phrases -> (input_ids [B, 32] int64, attention_mask [B, 32] int64)."""
        enc = self.tokenizer(texts, padding="max_length", max_length=MAX_TEXT_LEN, truncation=True, return_tensors="pt")
        device = self.image_mean.device
        return enc["input_ids"].to(device), enc["attention_mask"].to(device)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """images: [B, 3, S, S] in [0, 1] -> normalised [B, 3, image_size, image_size]."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be [B, 3, S, S], got {tuple(images.shape)}")
        x = images.to(self.image_mean.device, torch.float32)
        if x.shape[-2:] != (self.image_size, self.image_size):
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        return (x - self.image_mean) / self.image_std

    def geometry(self, prompts: list[Prompt], side: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Point/box prompts in pixels of an S x S image -> (boxes [B, N, 4] cxcywh in [0, 1], labels [B, N])."""
        rows: list[list[tuple[float, float, float, float, int]]] = []
        for p in prompts:
            if p.kind == "box":
                x0, y0, x1, y1 = (v / side for v in p.box)  # type: ignore[union-attr]
                rows.append([((x0 + x1) / 2, (y0 + y1) / 2, abs(x1 - x0), abs(y1 - y0), 1)])
            elif p.kind == "point":
                s = self.point_box_size
                rows.append([(x / side, y / side, s, s, int(label)) for x, y, label in p.points])
            else:
                raise ValueError(f"not a geometry prompt: {p.kind}")
        n = max(len(r) for r in rows)
        boxes = torch.zeros(len(rows), n, 4)
        labels = torch.full((len(rows), n), PAD_LABEL, dtype=torch.long)
        for b, r in enumerate(rows):
            for k, (cx, cy, w, h, lab) in enumerate(r):
                boxes[b, k] = torch.tensor([cx, cy, w, h]).clamp(0, 1)
                labels[b, k] = lab
        return boxes.to(self.image_mean.device), labels.to(self.image_mean.device)

    # -- forward ------------------------------------------------------------------------------------------------
    def encode_images(self, images: torch.Tensor) -> Sam3VisionEncoderOutput:
        """images: [B, 3, S, S] in [0, 1] -> vision features (FPN levels [B, C_i, h_i, w_i] + position encodings)."""
        return self.model.get_vision_features(pixel_values=self.preprocess(images))

    @contextmanager
    def _capture_encoder(self, store: list[torch.Tensor]):
        handle = self.model.detr_encoder.register_forward_hook(
            lambda _m, _i, out: store.append(out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0])
        )
        try:
            yield
        finally:
            handle.remove()

    def forward_prompts(
        self,
        vision: Sam3VisionEncoderOutput,
        prompts: list[Prompt],
        *,
        side: float,
        image_index: list[int] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Run the prompt-dependent heads for B prompts over shared vision features.

        vision: features of I images; prompts: B prompts in pixels of the S x S input (``side`` = S);
        image_index: image of each prompt (default ``range(B)``). Returns
        mask_logits [B, Q, h, w], boxes [B, Q, 4] xyxy normalised, class_logits [B, Q], presence_logit [B],
        semantic_logits [B, h, w], encoder [B, L, D] (DETR encoder output, text-fused image tokens), text [B, D]
        (the text encoder's projected tokens averaged over the phrase: what the student's text tower distils).
        """
        index = list(range(len(prompts))) if image_index is None else list(image_index)
        if len(index) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(index)} image indices")
        groups = {
            "text": [i for i, p in enumerate(prompts) if p.kind == "text"],
            "geometry": [i for i, p in enumerate(prompts) if p.kind != "text"],
        }
        parts: dict[str, list[tuple[list[int], torch.Tensor]]] = {}
        for group, members in groups.items():
            if not members:
                continue
            sel = torch.tensor([index[i] for i in members], device=vision.fpn_hidden_states[0].device)
            sub = Sam3VisionEncoderOutput(
                fpn_hidden_states=tuple(f.index_select(0, sel) for f in vision.fpn_hidden_states),
                fpn_position_encoding=tuple(
                    p.index_select(0, sel) if p.shape[0] == f.shape[0] else p
                    for p, f in zip(vision.fpn_position_encoding, vision.fpn_hidden_states, strict=True)
                ),
            )
            kwargs = {}
            if group == "text":
                ids, mask = self.tokenize([prompts[i].text for i in members])
            else:
                ids, mask = self.tokenize([VISUAL] * len(members))
                kwargs["input_boxes"], kwargs["input_boxes_labels"] = self.geometry([prompts[i] for i in members], side)
            # the text encoder runs once: its output feeds the model and is the cached phrase embedding
            text = self.model.get_text_features(input_ids=ids, attention_mask=mask, return_dict=True)
            store: list[torch.Tensor] = []
            with self._capture_encoder(store):
                out = self.model(vision_embeds=sub, text_embeds=text, attention_mask=mask, **kwargs)
            result = {
                "mask_logits": out.pred_masks,
                "boxes": out.pred_boxes,
                "class_logits": out.pred_logits,
                "presence_logit": out.presence_logits.reshape(-1),
                "semantic_logits": out.semantic_seg[:, 0],
                "encoder": store[-1],
                "text": masked_mean(text.pooler_output, mask),  # [b, D]
            }
            for name, value in result.items():
                parts.setdefault(name, []).append((members, value))
        merged = {}
        for name, chunks in parts.items():
            first = chunks[0][1]
            full = first.new_empty((len(prompts), *first.shape[1:]))
            for members, value in chunks:
                full[torch.tensor(members, device=full.device)] = value
            merged[name] = full
        return merged

    def forward(self, images: torch.Tensor, prompts: list[Prompt]) -> dict[str, torch.Tensor]:
        """images: [B, 3, S, S] in [0, 1]; B prompts -> forward_prompts outputs + ``fpn_<i>`` [B, C_i, h_i, w_i]."""
        if len(prompts) != images.shape[0]:
            raise ValueError(f"{images.shape[0]} images but {len(prompts)} prompts")
        vision = self.encode_images(images)
        out = self.forward_prompts(vision, prompts, side=float(images.shape[-1]))
        for level in self.fpn_levels:
            out[f"fpn_{level}"] = vision.fpn_hidden_states[level]
        return out

    @torch.inference_mode()
    def predict_video(self, frames: torch.Tensor, prompt: Prompt, *, min_score: float = 0.5) -> list[Prediction]:
        """The video reference of an image teacher: tracking by detection, with no memory of its own.

        frames [T, 3, S, S] in [0, 1]; frame 0 gets ``prompt``. A text prompt is asked again on every frame. A box
        or point prompt is followed: each later frame is prompted with the box of the previous frame's top-scored
        query, when that score is at least ``min_score`` (else the last box that was, so a lost object can be
        found again where it was last seen). The real profile's facebook/sam3 has its own video path
        (transformers ``Sam3VideoModel``); this one is what an image-only teacher can do.
        """
        if frames.ndim != 4:
            raise ValueError(f"frames must be [T, 3, S, S], got {tuple(frames.shape)}")
        side = float(frames.shape[-1])
        current, preds = prompt, []
        for t in range(frames.shape[0]):
            pred = self.predict(frames[t : t + 1], [current])
            preds.append(pred)
            if prompt.kind == "text":
                continue
            top = int(torch.argmax(pred.scores[0]))
            if float(pred.scores[0, top]) >= min_score:
                box = (pred.boxes[0, top].clamp(0, 1) * side).tolist()
                if box[2] > box[0] and box[3] > box[1]:
                    current = Prompt(kind="box", box=tuple(box), text=prompt.text)
        return preds

    @torch.inference_mode()
    def predict(self, images: torch.Tensor, prompts: list[Prompt]) -> Prediction:
        """Predictor contract: score = sigmoid(class logit) * sigmoid(presence logit)."""
        self.eval()
        vision = self.encode_images(images)
        out = self.forward_prompts(vision, prompts, side=float(images.shape[-1]))
        presence = out["presence_logit"].sigmoid()
        return Prediction(
            mask_logits=out["mask_logits"].float(),
            boxes=out["boxes"].float(),
            scores=out["class_logits"].sigmoid() * presence[:, None],
            presence=presence,
        )
