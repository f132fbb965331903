"""Module rewrites applied to the student before its programs are exported for deployment.

``nn.MultiheadAttention`` (the open_clip text tower's attention) keeps its q/k/v projection as one
``in_proj_weight`` parameter that it reads directly, and its ``out_proj`` is a ``NonDynamicallyQuantizableLinear``.
torchao's ``quantize_`` only takes ``nn.Linear`` modules, so 8da4w left every text attention projection in fp32:
12.6M of the real-size MobileCLIP-S1 text tower's parameters, 50 MB of its 90 MB 8da4w ``text.pte``.
:class:`ProjectedAttention` is the same attention as four ``nn.Linear`` and ``scaled_dot_product_attention``
(same weights, same arithmetic up to float rounding), so every projection quantizes like any other linear.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ProjectedAttention(nn.Module):
    """``nn.MultiheadAttention`` (batch_first, equal q/k/v dims, no bias_k/v or zero_attn) in eval mode, as four
    ``nn.Linear``. Takes what open_clip passes: ``need_weights=False`` and an optional float additive
    ``attn_mask`` of shape ``[L, S]`` or ``[B * heads, L, S]``."""

    def __init__(self, mha: nn.MultiheadAttention) -> None:
        super().__init__()
        if not (mha.batch_first and mha._qkv_same_embed_dim) or mha.bias_k is not None or mha.add_zero_attn:
            raise NotImplementedError(
                "ProjectedAttention covers batch_first attention with one in_proj and no bias_k/v or add_zero_attn"
            )
        dim, self.heads = mha.embed_dim, mha.num_heads
        bias = mha.in_proj_bias is not None
        self.q, self.k, self.v = (nn.Linear(dim, dim, bias=bias) for _ in range(3))
        with torch.no_grad():
            for i, lin in enumerate((self.q, self.k, self.v)):
                lin.weight.copy_(mha.in_proj_weight[i * dim : (i + 1) * dim])
                if bias:
                    lin.bias.copy_(mha.in_proj_bias[i * dim : (i + 1) * dim])
        self.out = nn.Linear(dim, dim, bias=mha.out_proj.bias is not None)
        self.out.load_state_dict(mha.out_proj.state_dict())

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        need_weights: bool = False,
        attn_mask: torch.Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[torch.Tensor, None]:
        if key_padding_mask is not None or need_weights or is_causal:
            raise NotImplementedError("ProjectedAttention: key_padding_mask, need_weights and is_causal are not taken")
        b, lq, dim = query.shape
        h, d = self.heads, dim // self.heads

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.reshape(b, x.shape[1], h, d).transpose(1, 2)

        q, k, v = split(self.q(query)), split(self.k(key)), split(self.v(value))
        if attn_mask is not None:
            if attn_mask.dtype == torch.bool:
                raise NotImplementedError("ProjectedAttention: pass a float additive mask, not a boolean one")
            attn_mask = attn_mask.reshape(b, h, lq, key.shape[1]) if attn_mask.dim() == 3 else attn_mask
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.out(out.transpose(1, 2).reshape(b, lq, dim)), None


def unfuse_attention(module: nn.Module) -> int:
    """Replace every ``nn.MultiheadAttention`` under ``module`` with :class:`ProjectedAttention`; returns how many."""
    found = [(name, m) for name, m in module.named_modules() if isinstance(m, nn.MultiheadAttention)]
    for name, mha in found:
        parent_name, _, child = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        new = ProjectedAttention(mha).to(mha.in_proj_weight.device, mha.in_proj_weight.dtype)
        new.train(mha.training)
        setattr(parent, child, new)
    return len(found)
