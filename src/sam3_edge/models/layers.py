"""Building blocks shared by the student parts: attention, MLPs, position encodings, box helpers.

Attention is written with ``nn.Linear`` projections and ``F.scaled_dot_product_attention`` (not
``nn.MultiheadAttention``) so that torch.export sees plain ops and torchao quantizes every projection.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head attention; ``key_valid`` [B, Lk] bool masks keys out (every row must keep one key); ``bias``
    [B, h, Lq, Lk] is added to the attention logits."""

    def __init__(self, *, dim: int, num_heads: int, kv_dim: int | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        kv_dim = kv_dim or dim
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(kv_dim, dim)
        self.v = nn.Linear(kv_dim, dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_valid: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        b, lq, d = query.shape  # [B, Lq, D]
        lk = key.shape[1]
        h = self.num_heads
        q = self.q(query).view(b, lq, h, d // h).transpose(1, 2)  # [B, h, Lq, d/h]
        k = self.k(key).view(b, lk, h, d // h).transpose(1, 2)  # [B, h, Lk, d/h]
        v = self.v(value).view(b, lk, h, d // h).transpose(1, 2)
        mask = None
        if key_valid is not None:
            mask = key_valid[:, None, None, :]  # [B, 1, 1, Lk] True = attend
        if bias is not None:  # additive [B, h, Lq, Lk] attention bias
            mask = bias if mask is None else bias.masked_fill(~mask, float("-inf"))
        drop = self.dropout if self.training else 0.0
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)  # [B, h, Lq, d/h]
        return self.out(x.transpose(1, 2).reshape(b, lq, d))


class MLP(nn.Module):
    """``num_layers`` Linear layers with ReLU in between (DETR-style heads)."""

    def __init__(self, *, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int) -> None:
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class FFN(nn.Module):
    """Pre-norm feed-forward block with residual."""

    def __init__(self, *, dim: int, hidden_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(self.fc2(F.gelu(self.fc1(self.norm(x)))))


class CrossAttentionBlock(nn.Module):
    """Pre-norm cross-attention with residual: ``x + attn(norm(x) + pos, norm(ctx) + ctx_pos, norm(ctx))``."""

    def __init__(self, *, dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attn = Attention(dim=dim, num_heads=num_heads, dropout=dropout)

    def forward(
        self,
        x: torch.Tensor,
        ctx: torch.Tensor,
        *,
        ctx_valid: torch.Tensor | None = None,
        pos: torch.Tensor | None = None,
        ctx_pos: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        q = self.norm_q(x)
        kv = self.norm_kv(ctx)
        k = kv if ctx_pos is None else kv + ctx_pos
        return x + self.attn(q if pos is None else q + pos, k, kv, ctx_valid, bias)


class SelfAttentionBlock(nn.Module):
    def __init__(self, *, dim: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = Attention(dim=dim, num_heads=num_heads, dropout=dropout)

    def forward(self, x: torch.Tensor, *, pos: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm(x)
        qk = h if pos is None else h + pos
        return x + self.attn(qk, qk, h)


def sine_grid_embedding(h: int, w: int, dim: int, *, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """DETR sine position encoding of an h x w grid -> [h*w, dim] (x and y halves, sin/cos interleaved)."""
    ys = (torch.arange(h, device=device, dtype=dtype) + 0.5) / h
    xs = (torch.arange(w, device=device, dtype=dtype) + 0.5) / w
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")  # [h, w]
    coords = torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=-1)  # [h*w, 2] in (0, 1)
    return sine_coord_embedding(coords, dim)


def sine_coord_embedding(coords: torch.Tensor, dim: int, *, temperature: float = 10000.0) -> torch.Tensor:
    """coords: [..., C] normalised to [0, 1] -> [..., dim] (dim split evenly over the C coordinates)."""
    c = coords.shape[-1]
    per = dim // c
    half = per // 2
    freqs = temperature ** (torch.arange(half, device=coords.device, dtype=coords.dtype) / half)  # [half]
    angles = coords[..., None] * (2 * math.pi) / freqs  # [..., C, half]
    emb = torch.cat([angles.sin(), angles.cos()], dim=-1)  # [..., C, per]
    emb = emb.flatten(-2)  # [..., C*per]
    if emb.shape[-1] < dim:
        emb = F.pad(emb, (0, dim - emb.shape[-1]))
    return emb


def inverse_sigmoid(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    x = x.clamp(eps, 1 - eps)
    return torch.log(x / (1 - x))


def box_cxcywh_to_xyxy(box: torch.Tensor) -> torch.Tensor:
    """[..., 4] (cx, cy, w, h) -> [..., 4] (x0, y0, x1, y1)."""
    cx, cy, w, h = box.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def box_xyxy_to_cxcywh(box: torch.Tensor) -> torch.Tensor:
    x0, y0, x1, y1 = box.unbind(-1)
    return torch.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], dim=-1)
