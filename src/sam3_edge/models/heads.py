"""Mask decoder (pixel decoder, mask embedder, prompt-conditioned semantic head) and the IoU head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sam3_edge.models.layers import MLP


def readout(rows: torch.Tensor, pixels: torch.Tensor, image_index: torch.Tensor | None = None) -> torch.Tensor:
    """rows [B, K, D] . pixels -> [B, K, H, W]: per prompt (``pixels`` [B, D, H, W], ``image_index`` None), or
    per image (``pixels`` [I, D, H, W], prompt b on image ``image_index[b]``).

    Per image, each image's prompts are one [n*K, D] x [D, H*W] product on that image's pixels: the pixels are
    never copied per prompt (``pixels[image_index]`` and its backward had been about a fifth of a fine-tune step
    at 6 prompts per image).
    """
    if image_index is None:
        return torch.einsum("bkd,bdhw->bkhw", rows, pixels)
    b, k, d = rows.shape
    _, _, h, w = pixels.shape
    order = torch.argsort(image_index, stable=True)
    counts = torch.bincount(image_index, minlength=pixels.shape[0]).tolist()
    parts = [
        (grp.reshape(-1, d) @ pixels[i].reshape(d, h * w)).reshape(-1, k, h, w)
        for i, grp in enumerate(rows[order].split(counts))
        if counts[i]
    ]
    return torch.cat(parts)[torch.argsort(order)]


class MaskDecoder(nn.Module):
    """Pixel embeddings at stride 4; masks are query embeddings . pixels.

    The prompt-conditioned part runs at stride 8: the fused encoder memory, upsampled onto P3, a 3x3 conv and a
    1x1 projection (``low_proj``). The stride-4 part reads P2 alone (``image_pixels``: a 3x3 conv and the 1x1
    ``pixel_proj``), so it runs once per image however many prompts share the image; pixels = stride-4 part +
    the stride-8 part upsampled bilinearly. The stride-4 convolutions per prompt had been about 60 % of a
    training step at 6 prompts per image.

    forward: memory [B, D, S/16, S/16], p3 [B, D, S/8, S/8], p2 [I, D, S/4, S/4], queries [B, Q, D],
    prompt_vec [B, D], image_index [B] int64 (None: I = B, prompt b on image b) -> mask_logits [B, Q, S/4, S/4],
    semantic_logits [B, 1, S/4, S/4], iou [B, Q] logits.
    """

    def __init__(self, *, dim: int) -> None:
        super().__init__()
        self.fuse3 = nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1), nn.GroupNorm(8 if dim % 8 == 0 else 1, dim))
        self.fuse2 = nn.Sequential(nn.Conv2d(dim, dim, 3, padding=1), nn.GroupNorm(8 if dim % 8 == 0 else 1, dim))
        self.pixel_proj = nn.Conv2d(dim, dim, 1)
        self.low_proj = nn.Conv2d(dim, dim, 1)
        self.mask_embed = MLP(in_dim=dim, hidden_dim=dim, out_dim=dim, num_layers=3)
        self.semantic_proj = nn.Linear(dim, dim)
        self.iou_head = MLP(in_dim=dim, hidden_dim=dim, out_dim=1, num_layers=3)

    def image_pixels(self, p2: torch.Tensor) -> torch.Tensor:
        """The prompt-independent stride-4 pixels [I, D, S/4, S/4] of each image."""
        return self.pixel_proj(F.gelu(self.fuse2(p2)))

    def prompt_pixels(self, memory: torch.Tensor, p3: torch.Tensor) -> torch.Tensor:
        """The prompt-conditioned stride-8 pixels [B, D, S/8, S/8]."""
        x = p3 + F.interpolate(memory, size=p3.shape[-2:], mode="bilinear", align_corners=False)
        return self.low_proj(F.gelu(self.fuse3(x)))

    def forward(
        self,
        memory: torch.Tensor,
        p3: torch.Tensor,
        p2: torch.Tensor,
        queries: torch.Tensor,
        prompt_vec: torch.Tensor,
        image_index: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # pixels = image_pixels + upsample(prompt_pixels). Both readouts (a dot product over channels) are linear
        # and so is the bilinear upsampling, so each is read out at its own resolution and the stride-8 maps are
        # upsampled after the readout (Q + 1 channels, not D): the same logits without a [B, D, S/4, S/4] sum.
        # The mask queries and the semantic vector are read out together, as Q + 1 rows of one product.
        low = self.prompt_pixels(memory, p3)  # [B, D, S/8, S/8]
        hi = self.image_pixels(p2)  # [I, D, S/4, S/4], once per image
        q = queries.shape[1]
        rows = torch.cat([self.mask_embed(queries), self.semantic_proj(prompt_vec)[:, None]], dim=1)  # [B, Q+1, D]
        out = readout(rows, hi, image_index) + F.interpolate(
            torch.einsum("bkd,bdhw->bkhw", rows, low), size=hi.shape[-2:], mode="bilinear", align_corners=False
        )
        out = out / hi.shape[1] ** 0.5
        masks, semantic = out[:, :q], out[:, q:]
        iou = self.iou_head(queries).squeeze(-1)  # [B, Q]
        return masks, semantic, iou
