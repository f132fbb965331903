"""Video memory: a gated memory cross-attention into the image tokens and a Perceiver memory that updates.

The gate is a scalar initialised to zero and applied through ``tanh``, so at init the video path adds exactly
nothing: the student's video output equals its image output bit for bit (tested). Only these two modules train
in ``distill_video``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sam3_edge.models.layers import FFN, CrossAttentionBlock


class MemoryAttention(nn.Module):
    """tokens [B, N, D] attend to memory [B, M, D] (rows with memory_valid [B] = 0 get no update)."""

    def __init__(self, *, dim: int, num_heads: int, ffn_dim: int) -> None:
        super().__init__()
        self.cross = CrossAttentionBlock(dim=dim, num_heads=num_heads)
        self.ffn = FFN(dim=dim, hidden_dim=ffn_dim)
        self.gate = nn.Parameter(torch.zeros(()))

    def forward(self, tokens: torch.Tensor, pos: torch.Tensor, memory: torch.Tensor, memory_valid: torch.Tensor):
        update = self.ffn(self.cross(tokens, memory, pos=pos[None])) - tokens  # [B, N, D]
        gate = torch.tanh(self.gate) * memory_valid.to(tokens.dtype)[:, None, None]  # [B, 1, 1]
        return tokens + gate * update


class PerceiverMemory(nn.Module):
    """Compress the current frame (tokens + predicted object mask) into M memory latents.

    forward: previous state [B, M, D], state_valid [B], tokens [B, N, D], object_prob [B, N] (soft mask of the
    tracked object on the token grid) -> new state [B, M, D].
    """

    def __init__(self, *, dim: int, num_latents: int, num_heads: int, ffn_dim: int) -> None:
        super().__init__()
        self.latents = nn.Parameter(torch.randn(num_latents, dim) * 0.02)
        self.mask_embed = nn.Linear(1, dim)
        self.cross = CrossAttentionBlock(dim=dim, num_heads=num_heads)
        self.ffn = FFN(dim=dim, hidden_dim=ffn_dim)
        self.norm = nn.LayerNorm(dim)

    def forward(
        self, state: torch.Tensor, state_valid: torch.Tensor, tokens: torch.Tensor, object_prob: torch.Tensor
    ) -> torch.Tensor:
        keep = state_valid.to(state.dtype)[:, None, None]  # [B, 1, 1]
        x = keep * state + (1 - keep) * self.latents[None]  # [B, M, D]
        ctx = tokens + self.mask_embed(object_prob[..., None])  # [B, N, D]
        return self.norm(self.ffn(self.cross(x, ctx)))


def object_prob_on_grid(mask_logits: torch.Tensor, scores: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Score-weighted union of query masks, pooled to the token grid: [B, Q, h, w], [B, Q] -> [B, N]."""
    prob = (mask_logits.sigmoid() * scores[..., None, None]).amax(dim=1, keepdim=True)  # [B, 1, h, w]
    return F.adaptive_avg_pool2d(prob, size).flatten(1)  # [B, N]
