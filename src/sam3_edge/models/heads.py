"""Mask decoder (pixel decoder, mask embedder, prompt-conditioned semantic head) and the IoU head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sam3_edge.models.layers import MLP


class MaskDecoder(nn.Module):
    """Upsample the fused encoder memory through P3 and P2 to stride 4; masks are query embeddings . pixels.

    forward: memory [B, D, S/16, S/16], p3 [B, D, S/8, S/8], p2 [B, D, S/4, S/4], queries [B, Q, D],
    prompt_vec [B, D] -> mask_logits [B, Q, S/4, S/4], semantic_logits [B, 1, S/4, S/4], iou [B, Q] logits.
    """

    def __init__(self, *, dim: int) -> None:
        super().__init__()
        self.fuse3 = nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1), nn.GroupNorm(8 if dim % 8 == 0 else 1, dim))
        self.fuse2 = nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1), nn.GroupNorm(8 if dim % 8 == 0 else 1, dim))
        self.pixel_proj = nn.Conv2d(dim, dim, 1)
        self.mask_embed = MLP(in_dim=dim, hidden_dim=dim, out_dim=dim, num_layers=3)
        self.semantic_proj = nn.Linear(dim, dim)
        self.iou_head = MLP(in_dim=dim, hidden_dim=dim, out_dim=1, num_layers=3)

    def pixel_features(self, memory: torch.Tensor, p3: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
        x = p3 + F.interpolate(memory, size=p3.shape[-2:], mode="bilinear", align_corners=False)
        x = F.gelu(self.fuse3(x))  # [B, D, S/8, S/8]
        x = p2 + F.interpolate(x, size=p2.shape[-2:], mode="bilinear", align_corners=False)
        x = F.gelu(self.fuse2(x))  # [B, D, S/4, S/4]
        return self.pixel_proj(x)

    def forward(
        self,
        memory: torch.Tensor,
        p3: torch.Tensor,
        p2: torch.Tensor,
        queries: torch.Tensor,
        prompt_vec: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pix = self.pixel_features(memory, p3, p2)  # [B, D, h, w]
        scale = pix.shape[1] ** 0.5
        masks = torch.einsum("bqd,bdhw->bqhw", self.mask_embed(queries), pix) / scale
        semantic = torch.einsum("bd,bdhw->bhw", self.semantic_proj(prompt_vec), pix)[:, None] / scale
        iou = self.iou_head(queries).squeeze(-1)  # [B, Q]
        return masks, semantic, iou
