"""Video memory: a constant-size state updated once per frame and read back on the next one.

The state [B, M + 1, D] is M Perceiver latents (the object's appearance and surroundings, compressed from the
frame's tokens and its predicted mask) and one object-pointer row (channels 0..3: the box, xyxy in [0, 1], of
the top-scored detection of the last frame where the object was found; the previous pointer is kept while it
is lost). It is read two ways:

- as a prompt (SAM 3's tracker conditions its detector on memory): the pointer fills the box slot of a frame
  that brings no box of its own, so an unprompted frame looks for the remembered object where it was last
  seen; with ``StudentConfig.memory_prompt_tokens`` the latents, projected, also join the prompt tokens (off by
  default: trained on the 8 synthetic SA-V train clips they lowered val J&F from 0.69 to 0.29; ``prompt_proj``
  is built either way, so checkpoints of both settings load);
- as a gated cross-attention of the image tokens into the latents (the gate is a scalar initialised to zero,
  applied through ``tanh``).

On the first frame (``memory_valid`` 0) neither reading changes anything: the video output is the image output
(tested). Only these two modules train in ``distill_video``, after the image student is final.
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
    """Compress the current frame (tokens + their positions + predicted object mask) into M memory latents.

    forward: previous state [B, M, D], state_valid [B], tokens [B, N, D], object_prob [B, N] (soft mask of the
    tracked object on the token grid), pos [N, D] (the tokens' sine positions; None = none) -> new state
    [B, M, D]. ``pointer`` reads the object's box back from a state, ``prompt_tokens`` its prompt tokens.
    """

    def __init__(self, *, dim: int, num_latents: int, num_heads: int, ffn_dim: int) -> None:
        super().__init__()
        self.latents = nn.Parameter(torch.randn(num_latents, dim) * 0.02)
        self.mask_embed = nn.Linear(1, dim)
        self.cross = CrossAttentionBlock(dim=dim, num_heads=num_heads)
        self.ffn = FFN(dim=dim, hidden_dim=ffn_dim)
        self.norm = nn.LayerNorm(dim)
        # initialised on a fork of the global generator: whatever is drawn after the student is built (the
        # distillation adapters) stays what it was before it existed, so the image stages reproduce
        with torch.random.fork_rng(devices=[]):
            self.prompt_proj = nn.Linear(dim, dim)  # latents -> prompt tokens

    def forward(
        self,
        state: torch.Tensor,
        state_valid: torch.Tensor,
        tokens: torch.Tensor,
        object_prob: torch.Tensor,
        pos: torch.Tensor | None = None,
    ) -> torch.Tensor:
        keep = state_valid.to(state.dtype)[:, None, None]  # [B, 1, 1]
        x = keep * state + (1 - keep) * self.latents[None]  # [B, M, D]
        ctx = tokens + self.mask_embed(object_prob[..., None])  # [B, N, D]
        if pos is not None:
            ctx = ctx + pos[None]
        return self.norm(self.ffn(self.cross(x, ctx)))

    def prompt_tokens(self, latents: torch.Tensor) -> torch.Tensor:
        """The latents [B, M, D] as prompt tokens [B, M, D]."""
        return self.prompt_proj(latents)


def pointer_row(box: torch.Tensor, dim: int) -> torch.Tensor:
    """A box [B, 4] (xyxy in [0, 1]) as the state's object-pointer row [B, 1, D] (channels 0..3)."""
    return torch.cat([box, box.new_zeros(box.shape[0], dim - 4)], dim=-1)[:, None]


def next_pointer(
    boxes: torch.Tensor, scores: torch.Tensor, previous: torch.Tensor, known: torch.Tensor, threshold: float
) -> torch.Tensor:
    """The object pointer after a frame: boxes [B, Q, 4], scores [B, Q], previous pointer [B, 4], known [B] bool
    (whether ``previous`` holds a place) -> [B, 4]: the top-scored query's box when its score reaches
    ``threshold`` (or when there is no previous place), else ``previous`` (the object is lost: search where it
    was last seen)."""
    top = scores.argmax(dim=1)  # [B]
    best = torch.gather(boxes, 1, top[:, None, None].expand(-1, 1, 4))[:, 0]  # [B, 4]
    conf = torch.gather(scores, 1, top[:, None])[:, 0]  # [B]
    moved = (conf >= threshold) | ~known
    return torch.where(moved[:, None], best.clamp(0.0, 1.0), previous)


def object_prob_on_grid(mask_logits: torch.Tensor, scores: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Score-weighted union of query masks, pooled to the token grid: [B, Q, h, w], [B, Q] -> [B, N]."""
    prob = (mask_logits.sigmoid() * scores[..., None, None]).amax(dim=1, keepdim=True)  # [B, 1, h, w]
    return F.adaptive_avg_pool2d(prob, size).flatten(1)  # [B, N]
