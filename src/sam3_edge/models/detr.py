"""Prompt fusion and the lightweight DETR: fusion encoder, decoder with presence token and box refinement.

Follows SAM 3's detector at a small size: image tokens cross-attend to the prompt tokens (projected text tokens
and geometry tokens) in the encoder; object queries and the presence token attend to the prompt tokens and to
the fused image tokens in the decoder; each decoder layer refines the reference boxes; the class logit of a
query is a dot product against the pooled prompt (SAM 3's ``DotProductScoring``); the presence token answers
"is the concept in the image at all" (final score = sigmoid(class) x sigmoid(presence)).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from sam3_edge.models.layers import (
    FFN,
    MLP,
    CrossAttentionBlock,
    SelfAttentionBlock,
    box_cxcywh_to_xyxy,
    inverse_sigmoid,
    sine_coord_embedding,
)

PROMPT_MASK_PENALTY = 20.0  # additive attention bias of a padded prompt token (exp(-20) ~ 2e-9: masked out)


class EncodedPrompt(NamedTuple):
    """The prompt as the fusion encoder and the decoder read it (SAM 3's ``prompt`` / ``prompt_mask``)."""

    tokens: torch.Tensor  # [B, L, D]: projected text tokens, then point and box tokens
    bias: torch.Tensor  # [B, 1, 1, L] float: 0 for a real token, -PROMPT_MASK_PENALTY for padding
    vec: torch.Tensor  # [B, D]: pooled prompt (class scoring, semantic head)


class PromptFusion(nn.Module):
    """SAM 3's prompt path at a small size: text tokens, projected, and geometry tokens side by side.

    The fusion encoder's image tokens and the decoder's queries cross-attend to these tokens themselves (no
    bottleneck), with padding masked by an additive float bias computed once here (delegates as a plain add).
    The pooled vector follows SAM 3's ``DotProductScoring``: an MLP with a residual and a LayerNorm on the
    prompt tokens, a mean over the real ones, a projection.

    forward: text [B, Lt, D], text_valid [B, Lt] bool, geo [B, Lg, D], geo_valid [B, Lg] bool -> EncodedPrompt.
    """

    def __init__(self, *, dim: int, ffn_dim: int) -> None:
        super().__init__()
        self.text_proj = nn.Linear(dim, dim)
        self.kind_embed = nn.Parameter(torch.zeros(2, dim))  # text, geometry
        self.norm = nn.LayerNorm(dim)
        self.score_mlp = MLP(in_dim=dim, hidden_dim=ffn_dim, out_dim=dim, num_layers=2)
        self.score_norm = nn.LayerNorm(dim)
        self.pool_proj = nn.Linear(dim, dim)

    def forward(
        self, text: torch.Tensor, text_valid: torch.Tensor, geo: torch.Tensor, geo_valid: torch.Tensor
    ) -> EncodedPrompt:
        tokens = torch.cat([self.text_proj(text) + self.kind_embed[0], geo + self.kind_embed[1]], dim=1)
        tokens = self.norm(tokens)  # [B, L, D]
        valid = torch.cat([text_valid, geo_valid], dim=1).to(tokens.dtype)  # [B, L]
        bias = ((valid - 1.0) * PROMPT_MASK_PENALTY)[:, None, None, :]  # [B, 1, 1, L]
        scored = self.score_norm(tokens + self.score_mlp(tokens))
        pooled = (scored * valid[..., None]).sum(1) / valid.sum(1, keepdim=True).clamp(min=1.0)
        return EncodedPrompt(tokens, bias, self.pool_proj(pooled))


class DetrEncoderLayer(nn.Module):
    def __init__(self, *, dim: int, num_heads: int, ffn_dim: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = SelfAttentionBlock(dim=dim, num_heads=num_heads, dropout=dropout)
        self.cross = CrossAttentionBlock(dim=dim, num_heads=num_heads, dropout=dropout)
        self.ffn = FFN(dim=dim, hidden_dim=ffn_dim, dropout=dropout)

    def forward(self, x: torch.Tensor, pos: torch.Tensor, prompt: EncodedPrompt) -> torch.Tensor:
        return self.ffn(self.cross(self.self_attn(x, pos=pos), prompt.tokens, bias=prompt.bias))


class DetrEncoder(nn.Module):
    """Image tokens [B, N, D] (+ pos [N, D]) cross-attend to the prompt tokens (:class:`EncodedPrompt`) -> [B, N, D]."""

    def __init__(self, *, dim: int, num_heads: int, ffn_dim: int, num_layers: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DetrEncoderLayer(dim=dim, num_heads=num_heads, ffn_dim=ffn_dim, dropout=dropout) for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, pos: torch.Tensor, prompt: EncodedPrompt) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, pos[None], prompt)
        return self.norm(x)


MAX_LOCALITY_PENALTY = 20.0  # floor of the box-locality bias: keeps attention logits in a range int8 can hold


def box_locality_bias(boxes: torch.Tensor, strengths: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Attention bias that keeps each query's image cross-attention near its reference box.

    boxes [B, Q, 4] xyxy normalised; strengths [H]; size (h, w) of the key grid -> [B, H, Q, h*w]: 0 for a key
    cell whose centre lies inside the box, else -k x (cells outside in x + cells outside in y), floored at
    -MAX_LOCALITY_PENALTY. The DAB / DINO-DETR anchor idea, written as the bootstrap teacher's box-RPB prior
    (``teacher.model.init_rpb_locality``): without it every query reads the same image features.
    """
    h, w = size
    xs = (torch.arange(w, device=boxes.device, dtype=boxes.dtype) + 0.5) / w  # [w]
    ys = (torch.arange(h, device=boxes.device, dtype=boxes.dtype) + 0.5) / h  # [h]
    x0, y0, x1, y1 = (c[..., None] for c in boxes.unbind(-1))  # each [B, Q, 1]
    dx = (F.relu(x0 - xs) + F.relu(xs - x1)) * w  # [B, Q, w] cells outside
    dy = (F.relu(y0 - ys) + F.relu(ys - y1)) * h  # [B, Q, h]
    dist = (dy[..., :, None] + dx[..., None, :]).flatten(-2)  # [B, Q, h*w]
    return (-strengths[None, :, None, None] * dist[:, None]).clamp(min=-MAX_LOCALITY_PENALTY)


class DetrDecoderLayer(nn.Module):
    def __init__(self, *, dim: int, num_heads: int, ffn_dim: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = SelfAttentionBlock(dim=dim, num_heads=num_heads, dropout=dropout)
        self.cross_prompt = CrossAttentionBlock(dim=dim, num_heads=num_heads, dropout=dropout)
        self.cross_image = CrossAttentionBlock(dim=dim, num_heads=num_heads, dropout=dropout)
        self.ffn = FFN(dim=dim, hidden_dim=ffn_dim, dropout=dropout)

    def forward(
        self,
        x: torch.Tensor,
        qpos: torch.Tensor,
        prompt: EncodedPrompt,
        memory: torch.Tensor,
        mem_pos: torch.Tensor,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = self.self_attn(x, pos=qpos)
        x = self.cross_prompt(x, prompt.tokens, bias=prompt.bias)
        x = self.cross_image(x, memory, pos=qpos, ctx_pos=mem_pos, bias=bias)
        return self.ffn(x)


class DetrDecoder(nn.Module):
    """Object queries + a presence token decoded against the prompt tokens and the fused image tokens.

    ``locality``: per-head strengths (trainable) of :func:`box_locality_bias` on the image cross-attention of
    the object queries (the presence token attends everywhere); empty = no bias.

    forward returns a dict: ``queries`` [B, Q, D] (last layer, normed), ``boxes`` [B, Q, 4] xyxy normalised,
    ``class_logits`` [B, Q], ``presence_logit`` [B], ``aux_boxes`` list of [B, Q, 4] for earlier layers.
    """

    def __init__(
        self,
        *,
        dim: int,
        num_heads: int,
        ffn_dim: int,
        num_layers: int,
        num_queries: int,
        dropout: float = 0.0,
        locality: tuple[float, ...] = (),
        presence_grounding: bool = True,
    ) -> None:
        super().__init__()
        if locality and len(locality) != num_heads:
            raise ValueError(f"{len(locality)} locality strengths for {num_heads} attention heads")
        self.dim = dim
        self.locality = nn.Parameter(torch.tensor(locality, dtype=torch.float32)) if locality else None
        self.query_embed = nn.Parameter(torch.randn(num_queries, dim) * 0.02)
        self.presence_token = nn.Parameter(torch.zeros(1, dim))
        # reference boxes start spread over the image (cx, cy uniform grid-ish, w = h = 0.25), in logit space
        ref = torch.rand(num_queries, 4, generator=torch.Generator().manual_seed(0))
        ref[:, 2:] = 0.25
        self.ref_logits = nn.Parameter(inverse_sigmoid(ref))
        self.layers = nn.ModuleList(
            DetrDecoderLayer(dim=dim, num_heads=num_heads, ffn_dim=ffn_dim, dropout=dropout) for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(dim)
        self.qpos_head = MLP(in_dim=dim, hidden_dim=dim, out_dim=dim, num_layers=2)
        self.box_head = MLP(in_dim=dim, hidden_dim=dim, out_dim=4, num_layers=3)
        nn.init.zeros_(self.box_head.layers[-1].weight)
        nn.init.zeros_(self.box_head.layers[-1].bias)
        self.class_proj = nn.Linear(dim, dim)
        self.class_bias = nn.Parameter(torch.tensor(-2.0))  # focal-style prior: few queries are objects
        self.presence_head = MLP(in_dim=dim, hidden_dim=dim, out_dim=1, num_layers=2)
        # grounded presence: + log-mean-exp over the fused image tokens of (token . pooled prompt), a direct
        # image-token x phrase path beside the presence token (without it the embedded student's presence stayed
        # blind to the phrase for 1000 steps of phrase-set distillation; with it, it leaves the plateau by ~150)
        self.ground_proj = nn.Linear(dim, dim) if presence_grounding else None
        self.ground_bias = nn.Parameter(torch.zeros(())) if presence_grounding else None

    def forward(
        self,
        prompt: EncodedPrompt,
        memory: torch.Tensor,
        mem_pos: torch.Tensor,
        size: tuple[int, int] | None = None,
    ) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        """``size``: (h, w) of the memory grid, needed with ``locality``."""
        b = memory.shape[0]
        if self.locality is not None and (size is None or size[0] * size[1] != memory.shape[1]):
            raise ValueError(f"locality needs the memory grid size: got {size} for {memory.shape[1]} tokens")
        x = torch.cat([self.presence_token, self.query_embed], dim=0)[None].expand(b, -1, -1)  # [B, 1+Q, D]
        ref = self.ref_logits[None].expand(b, -1, -1)  # [B, Q, 4] logits of cxcywh
        aux_boxes: list[torch.Tensor] = []
        for layer in self.layers:
            anchor = ref.sigmoid().detach()  # [B, Q, 4] cxcywh
            qpos = self.qpos_head(sine_coord_embedding(anchor, self.dim))  # [B, Q, D]
            qpos = torch.cat([qpos.new_zeros(b, 1, self.dim), qpos], dim=1)  # presence token has no position
            bias = None
            if self.locality is not None:
                boxes = box_cxcywh_to_xyxy(anchor)
                bias = box_locality_bias(boxes, self.locality, size)  # [B, H, Q, N]
                bias = F.pad(bias, (0, 0, 1, 0))  # presence token row: no bias
            x = layer(x, qpos, prompt, memory, mem_pos[None], bias)
            ref = ref.detach() + self.box_head(self.norm(x[:, 1:]))  # refine the box of each query
            aux_boxes.append(box_cxcywh_to_xyxy(ref.sigmoid()))
        x = self.norm(x)
        queries = x[:, 1:]  # [B, Q, D]
        class_logits = torch.einsum("bqd,bd->bq", self.class_proj(queries), prompt.vec) / self.dim**0.5
        presence_logit = self.presence_head(x[:, 0]).squeeze(-1)  # [B]
        if self.ground_proj is not None:
            ground = torch.einsum("bnd,bd->bn", self.ground_proj(memory), prompt.vec) / self.dim**0.5  # [B, N]
            presence_logit = presence_logit + torch.logsumexp(ground, dim=1) - math.log(memory.shape[1])
            presence_logit = presence_logit + self.ground_bias
        return {
            "queries": queries,
            "boxes": aux_boxes[-1].clamp(0, 1),
            "class_logits": class_logits + self.class_bias,
            "presence_logit": presence_logit,
            "aux_boxes": aux_boxes[:-1],
        }
