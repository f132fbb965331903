"""The EfficientSAM3-style student: one ``nn.Module`` assembling encoders, prompt fusion, DETR, masks and memory."""

from __future__ import annotations

import torch
from torch import nn

from sam3_edge.models.config import StudentConfig
from sam3_edge.models.detr import DetrDecoder, DetrEncoder, EncodedPrompt, PromptFusion
from sam3_edge.models.encoders import ImageEncoder, PromptEncoder, TextEncoder
from sam3_edge.models.heads import MaskDecoder
from sam3_edge.models.layers import sine_grid_embedding
from sam3_edge.models.memory import MemoryAttention, PerceiverMemory, next_pointer, object_prob_on_grid, pointer_row

# The parts whose parameter counts are reported (module attribute names).
PARTS = (
    "image_encoder",
    "text_encoder",
    "prompt_encoder",
    "prompt_fusion",
    "detr_encoder",
    "detr_decoder",
    "mask_decoder",
    "memory_attention",
    "memory",
)
VIDEO_PARTS = ("memory_attention", "memory")


class Student(nn.Module):
    """Promptable concept segmentation student.

    Inputs (pixels of the S x S input): image [B, 3, S, S] in [0, 1]; token_ids [B, L] int64 (open_clip BPE,
    0 = pad); points [B, P, 3] (x, y, label; label -1 = unused); box [B, 4] xyxy; box_valid [B] in {0, 1}.
    """

    def __init__(
        self,
        *,
        config: StudentConfig,
        image_encoder_weights: str | None = None,
        text_encoder_weights: str | None = None,
    ) -> None:
        super().__init__()
        c = config
        self.config = config
        self.image_encoder = ImageEncoder(
            backbone=c.backbone,
            dim=c.dim,
            embed_dim=c.backbone_embed_dim,
            depth=c.backbone_depth,
            weights=image_encoder_weights,
        )
        self.text_encoder = TextEncoder(
            dim=c.dim,
            width=c.text_width,
            heads=c.text_heads,
            layers=c.text_layers,
            mlp_ratio=c.text_mlp_ratio,
            context_length=c.context_length,
            vocab_size=c.vocab_size,
            weights=text_encoder_weights,
        )
        self.prompt_encoder = PromptEncoder(dim=c.dim, image_size=c.image_size)
        self.prompt_fusion = PromptFusion(dim=c.dim, ffn_dim=c.ffn_dim)
        self.detr_encoder = DetrEncoder(
            dim=c.dim, num_heads=c.num_heads, ffn_dim=c.ffn_dim, num_layers=c.enc_layers, dropout=c.dropout
        )
        self.detr_decoder = DetrDecoder(
            dim=c.dim,
            num_heads=c.num_heads,
            ffn_dim=c.ffn_dim,
            num_layers=c.dec_layers,
            num_queries=c.num_queries,
            dropout=c.dropout,
            locality=c.decoder_locality,
            presence_grounding=c.presence_grounding,
        )
        self.mask_decoder = MaskDecoder(dim=c.dim)
        self.memory_attention = MemoryAttention(dim=c.dim, num_heads=c.num_heads, ffn_dim=c.ffn_dim)
        self.memory = PerceiverMemory(dim=c.dim, num_latents=c.memory_latents, num_heads=c.num_heads, ffn_dim=c.ffn_dim)

    # ---- parts -------------------------------------------------------------------------------------------
    def encode_text(self, token_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """token_ids [B, L] -> text tokens [B, L, D], valid [B, L] bool."""
        return self.text_encoder(token_ids)

    def encode_prompt(
        self,
        text_tokens: torch.Tensor,
        text_valid: torch.Tensor,
        points: torch.Tensor,
        box: torch.Tensor,
        box_valid: torch.Tensor,
        memory_state: torch.Tensor | None = None,
        memory_valid: torch.Tensor | None = None,
    ) -> EncodedPrompt:
        """-> the prompt tokens [B, L+P+2(+M), D] with their padding bias and the pooled prompt vector [B, D].

        With a memory (``config.memory_prompt_tokens``) its latents join the prompt as M more tokens, padding on an
        invalid memory (the first frame). The memory's object pointer is the box of a prompt that has none: the
        caller fills it in first (:meth:`memory_box`, as :meth:`decode_frame` does)."""
        if memory_state is not None and memory_valid is None:
            raise ValueError("memory_state needs memory_valid")
        geo, geo_valid = self.prompt_encoder(points, box, box_valid)  # [B, P+2, D], [B, P+2]
        if memory_state is not None and self.config.memory_prompt_tokens:
            latents = memory_state[:, :-1]
            geo = torch.cat([geo, self.memory.prompt_tokens(latents)], dim=1)
            geo_valid = torch.cat([geo_valid, (memory_valid > 0.5)[:, None].expand(-1, latents.shape[1])], dim=1)
        return self.prompt_fusion(text_tokens, text_valid, geo, geo_valid)

    def memory_box(
        self, box: torch.Tensor, box_valid: torch.Tensor, memory_state: torch.Tensor, memory_valid: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The box a frame is prompted with: its own (box [B, 4] pixels, box_valid [B]); where it has none and the
        memory is valid, the memory's object pointer."""
        if memory_valid is None:
            raise ValueError("memory_state needs memory_valid")
        use = (memory_valid > 0.5) & (box_valid < 0.5)  # [B]: no box of its own, a memory to point with
        pointer = memory_state[:, -1, :4] * self.config.image_size  # [B, 4] pixels
        return torch.where(use[:, None], pointer, box), torch.where(use, torch.ones_like(box_valid), box_valid)

    def detect(
        self,
        fpn: list[torch.Tensor],
        prompt: EncodedPrompt,
        memory_state: torch.Tensor | None = None,
        memory_valid: torch.Tensor | None = None,
        image_index: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict]:
        """The DETR part alone (no masks): -> encoder tokens [B, N, D], the decoder's dict (queries, boxes, class
        and presence logits). Enough for a loss on presence only. ``fpn`` is per image; ``image_index`` [B] names
        each prompt's image (None: prompt b on image b)."""
        p4 = fpn[2] if image_index is None else fpn[2][image_index]
        _, d, h, w = p4.shape
        tokens = p4.flatten(2).transpose(1, 2)  # [B, N=h*w, D]
        pos = sine_grid_embedding(h, w, d, device=p4.device, dtype=p4.dtype)  # [N, D]
        if memory_state is not None:
            tokens = self.memory_attention(tokens, pos, memory_state[:, :-1], memory_valid)  # the latents
        enc = self.detr_encoder(tokens, pos, prompt)  # [B, N, D]
        return enc, self.detr_decoder(prompt, enc, pos, size=(h, w))

    def decode(
        self,
        fpn: list[torch.Tensor],
        prompt: EncodedPrompt,
        memory_state: torch.Tensor | None = None,
        memory_valid: torch.Tensor | None = None,
        image_index: torch.Tensor | None = None,
    ) -> dict:
        """Detection and masks for B prompts on the per-image ``fpn`` levels (``image_index`` as in ``detect``).
        The stride-4 pixel path runs once per image; everything prompt-conditioned runs per prompt."""
        p2, p3, p4, _ = fpn
        enc, dec = self.detect(fpn, prompt, memory_state, memory_valid, image_index)
        b, _, d = enc.shape
        h, w = p4.shape[-2:]
        enc_map = enc.transpose(1, 2).reshape(b, d, h, w)
        p3 = p3 if image_index is None else p3[image_index]
        masks, semantic, iou = self.mask_decoder(enc_map, p3, p2, dec["queries"], prompt.vec, image_index)
        scores = dec["class_logits"].sigmoid() * dec["presence_logit"].sigmoid()[:, None]
        return {
            "mask_logits": masks,  # [B, Q, S/4, S/4]
            "boxes": dec["boxes"],  # [B, Q, 4] xyxy normalised
            "class_logits": dec["class_logits"],  # [B, Q]
            "presence_logit": dec["presence_logit"],  # [B]
            "scores": scores,  # [B, Q]
            "iou_logits": iou,  # [B, Q]
            "semantic_logits": semantic,  # [B, 1, S/4, S/4]
            "aux_boxes": dec["aux_boxes"],
            "queries": dec["queries"],
            "encoder": enc,  # [B, N, D]
            "fpn": fpn,  # per image (I levels; with image_index, prompts index into them)
            "prompt_vec": prompt.vec,  # [B, D] (diagnostics: how far phrases spread)
        }

    def forward(
        self,
        image: torch.Tensor,
        token_ids: torch.Tensor,
        points: torch.Tensor,
        box: torch.Tensor,
        box_valid: torch.Tensor,
        memory_state: torch.Tensor | None = None,
        memory_valid: torch.Tensor | None = None,
        image_index: torch.Tensor | None = None,
    ) -> dict:
        """B prompts on ``image`` [I, 3, S, S]: I = B, or ``image_index`` [B] int64 names each prompt's image (the
        image encoder runs once per image and its features serve every prompt on it)."""
        fpn = self.image_encoder(image)
        if image_index is not None and len(image_index) != len(token_ids):
            raise ValueError(f"{len(token_ids)} prompts but {len(image_index)} image indices")
        text, text_valid = self.encode_text(token_ids)
        out = self.decode_frame(fpn, text, text_valid, points, box, box_valid, memory_state, memory_valid, image_index)
        out["text_tokens"], out["text_valid"] = text, text_valid  # the distillation pools them (no work here)
        return out

    def decode_frame(
        self,
        fpn: list[torch.Tensor],
        text: torch.Tensor,
        text_valid: torch.Tensor,
        points: torch.Tensor,
        box: torch.Tensor,
        box_valid: torch.Tensor,
        memory_state: torch.Tensor | None = None,
        memory_valid: torch.Tensor | None = None,
        image_index: torch.Tensor | None = None,
    ) -> dict:
        """:meth:`decode` of encoded text + geometry on one frame: with a memory, its object pointer fills the box
        of a prompt without one (once), and the box the frame was prompted with goes out as ``prompt_box``
        (normalised) / ``prompt_box_valid`` for :meth:`update_memory`."""
        if memory_state is not None:
            box, box_valid = self.memory_box(box, box_valid, memory_state, memory_valid)
        prompt = self.encode_prompt(text, text_valid, points, box, box_valid, memory_state, memory_valid)
        out = self.decode(fpn, prompt, memory_state, memory_valid, image_index)
        out["prompt_box"], out["prompt_box_valid"] = box / self.config.image_size, box_valid
        return out

    def update_memory(self, out: dict, memory_state: torch.Tensor, memory_valid: torch.Tensor) -> torch.Tensor:
        """New memory state [B, M + 1, D] from one frame's outputs (``forward``'s): the latents re-read from the
        frame and its predicted object, and the object pointer moved to the top detection (kept while the object
        is lost)."""
        p4 = out["fpn"][2]
        _, d, h, w = p4.shape
        prob = object_prob_on_grid(out["mask_logits"], out["scores"], (h, w))  # [B, N]
        pos = sine_grid_embedding(h, w, d, device=p4.device, dtype=p4.dtype)  # [N, D]
        latents = self.memory(memory_state[:, :-1], memory_valid, out["encoder"], prob, pos)
        # where the object was if this frame does not find it: the frame's prompt box (a user box, or the
        # pointer it was prompted with), else the previous pointer (none on a first frame without a box)
        previous = memory_state[:, -1, :4]
        known = memory_valid > 0.5
        if "prompt_box" in out:
            given = out["prompt_box_valid"] > 0.5
            previous = torch.where(given[:, None], out["prompt_box"].to(previous), previous)
            known = known | given
        pointer = next_pointer(out["boxes"], out["scores"], previous, known, self.config.memory_pointer_threshold)
        return torch.cat([latents, pointer_row(pointer, d)], dim=1)

    def init_memory(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Empty memory: state [B, M + 1, D] zeros and valid [B] zeros (the first frame sees no memory)."""
        c = self.config
        w = self.memory.latents
        return w.new_zeros(batch, c.memory_slots, c.dim), w.new_zeros(batch)

    # ---- deployment --------------------------------------------------------------------------------------
    @torch.no_grad()
    def reparameterize(self) -> Student:
        """Fold RepViT re-parameterisable branches and BatchNorms (call in eval mode, before export)."""
        self.eval()
        self.image_encoder.reparameterize()
        return self

    fuse = reparameterize

    def param_counts(self) -> dict[str, int]:
        counts = {p: sum(t.numel() for t in getattr(self, p).parameters()) for p in PARTS}
        counts["total"] = sum(t.numel() for t in self.parameters())
        return counts

    def example_inputs(self, batch: int = 1) -> dict[str, torch.Tensor]:
        c = self.config
        s = c.image_size
        ids = torch.zeros(batch, c.context_length, dtype=torch.long)
        ids[:, 0], ids[:, 1], ids[:, 2] = 49406, 320, 49407  # "<start> a <end>"
        pts = torch.full((batch, c.max_points, 3), -1.0)
        pts[:, 0] = torch.tensor([s / 2, s / 2, 1.0])
        return {
            "image": torch.rand(batch, 3, s, s),
            "token_ids": ids,
            "points": pts,
            "box": torch.tensor([[s / 4, s / 4, 3 * s / 4, 3 * s / 4]]).repeat(batch, 1),
            "box_valid": torch.ones(batch),
        }

    def export_programs(self, batch: int = 1) -> dict[str, tuple[nn.Module, tuple[torch.Tensor, ...]]]:
        """Pure-tensor, static-shape programs for torch.export: ``text``, ``image`` and ``video_step``.

        text:       token_ids [1, L] int64 -> text_emb [1, L, D], text_valid [1, L] float (1 = token)
        image:      image, text_emb, text_valid, points [1, P, 3], box [1, 4], box_valid [1]
                    -> mask_logits [1, Q, S/4, S/4], boxes [1, Q, 4], scores [1, Q], presence [1], iou [1, Q]
        video_step: the image inputs + memory_state [1, M + 1, D] (latents + object pointer), memory_valid [1]
                    -> image's five outputs + new_memory_state [1, M + 1, D] (the state last: a caller that
                    tracks needs the masks and scores and the state; an evaluation reads the whole prediction)
        """
        ex = self.example_inputs(batch)
        text = TextProgram(self)
        with torch.no_grad():
            emb, valid = text(ex["token_ids"])
        geo = (ex["points"], ex["box"], ex["box_valid"])
        state, state_valid = self.init_memory(batch)
        state_valid = torch.ones_like(state_valid)
        state = torch.randn_like(state)
        return {
            "text": (text, (ex["token_ids"],)),
            "image": (ImageProgram(self), (ex["image"], emb, valid, *geo)),
            "video_step": (VideoStepProgram(self), (ex["image"], emb, valid, *geo, state, state_valid)),
        }


class TextProgram(nn.Module):
    def __init__(self, student: Student) -> None:
        super().__init__()
        self.student = student

    def forward(self, token_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb, valid = self.student.encode_text(token_ids)
        return emb, valid.to(emb.dtype)


class ImageProgram(nn.Module):
    def __init__(self, student: Student) -> None:
        super().__init__()
        self.student = student

    def forward(self, image, text_emb, text_valid, points, box, box_valid):
        s = self.student
        prompt = s.encode_prompt(text_emb, text_valid > 0.5, points, box, box_valid)
        out = s.decode(s.image_encoder(image), prompt)
        presence = out["presence_logit"].sigmoid()
        return out["mask_logits"], out["boxes"], out["scores"], presence, out["iou_logits"].sigmoid()


class VideoStepProgram(nn.Module):
    def __init__(self, student: Student) -> None:
        super().__init__()
        self.student = student

    def forward(self, frame, text_emb, text_valid, points, box, box_valid, memory_state, memory_valid):
        s = self.student
        fpn = s.image_encoder(frame)
        out = s.decode_frame(fpn, text_emb, text_valid > 0.5, points, box, box_valid, memory_state, memory_valid)
        new_state = s.update_memory(out, memory_state, memory_valid)
        presence, iou = out["presence_logit"].sigmoid(), out["iou_logits"].sigmoid()
        return out["mask_logits"], out["boxes"], out["scores"], presence, iou, new_state
