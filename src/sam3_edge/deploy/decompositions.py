"""Rewrite the two operators XNNPACK rejects in the student's programs into equivalents it takes.

Lowered as they come, ``layer_norm`` stays on ExecuTorch's portable kernels (XNNPACK has no layer norm), and
``scaled_dot_product_attention`` decomposes through ``_safe_softmax`` into mask logic (``eq`` / ``any`` /
``logical_not`` / ``where`` / ``full_like``), ``mul.Scalar`` and ``expand_copy``, none delegated. Each of those
ops splits the graph, so the student's ``image`` method became ~30 delegates with ~250 portable ops between them,
and the XNNPACK lowering ran its whole pass pipeline once per delegate (most of a 3-minute export).

:data:`XNNPACK_DECOMPOSITIONS` is a decomposition table for ``ExportedProgram.run_decompositions``, applied to
every program before XNNPACK partitioning (:func:`sam3_edge.deploy.lowering.lower_programs`):

- layer norm over the last dim as mean / sub / mul / rsqrt on a ``[1, M, C, 1]`` view, whose mean over dims
  (2, 3) is XNNPACK's global average pooling; the affine part is a plain mul / add;
- attention as ``bmm(softmax(bmm(q * scale, k^T) + mask), v)`` on 3-D views. This is the math of
  ``scaled_dot_product_attention`` for a float additive mask with finite entries, which is what the student uses
  (the prompt padding bias and the box locality bias are finite penalties, never ``-inf``); a row whose mask is
  ``-inf`` everywhere would give NaN here where ``_safe_softmax`` gives zeros. Boolean masks are rejected.

Both are the same arithmetic as the original ops (the parity check of every export compares the ``.pte`` with
the eager program).

:data:`COREML_DECOMPOSITIONS` does the same for Core ML, whose PyTorch frontend (coremltools) converts
``bitwise_and`` and ``bitwise_not`` but has no ``bitwise_or``. The ``known | given`` of the video memory's update
(``aten.__or__``, ``bitwise_or`` once converted to edge ops) left two ops outside the delegate, which split
``video_step`` into 3 Core ML partitions against ``image``'s 1, and Core ML's multifunction weight sharing
(POSITIONAL: partition i of every method in one model) refused the whole file. On booleans it is ``logical_or``,
which the frontend takes.
"""

from __future__ import annotations

import math

import torch

aten = torch.ops.aten


def _rows(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5, cudnn_enable=True):
    if len(normalized_shape) != 1:
        raise NotImplementedError(f"layer_norm over {len(normalized_shape)} dims (only the last dim is rewritten)")
    lead, c = list(x.shape[:-1]), x.shape[-1]
    x4 = x.reshape(1, _rows(lead), c, 1)
    mu = x4.mean(dim=[2, 3], keepdim=True)
    xc = x4 - mu
    var = (xc * xc).mean(dim=[2, 3], keepdim=True)
    y = (xc * torch.rsqrt(var + eps)).reshape(*lead, c)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def scaled_dot_product_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
    if is_causal or enable_gqa or dropout_p:
        raise NotImplementedError("only non-causal attention without dropout or GQA is rewritten")
    if attn_mask is not None and attn_mask.dtype == torch.bool:
        raise NotImplementedError("boolean attention masks are not rewritten: pass a finite additive float mask")
    *lead, lq, d = q.shape
    lk, dv = k.shape[-2], v.shape[-1]
    n = _rows(lead)
    s = scale if scale is not None else 1.0 / math.sqrt(d)
    scores = torch.bmm((q * s).reshape(n, lq, d), k.reshape(n, lk, d).transpose(1, 2))  # [n, Lq, Lk]
    if attn_mask is not None:
        scores = (scores.reshape(*lead, lq, lk) + attn_mask).reshape(n, lq, lk)
    return torch.bmm(torch.softmax(scores, dim=-1), v.reshape(n, lk, dv)).reshape(*lead, lq, dv)


XNNPACK_DECOMPOSITIONS = {
    aten.layer_norm.default: layer_norm,
    aten.scaled_dot_product_attention.default: scaled_dot_product_attention,
}


def bool_or(a, b):
    if a.dtype != torch.bool or b.dtype != torch.bool:
        return NotImplemented  # integer bitwise or: left as it is
    return torch.logical_or(a, b)


COREML_DECOMPOSITIONS = {
    aten.__or__.Tensor: bool_or,  # what ``a | b`` exports as; the edge conversion makes it bitwise_or
    aten.bitwise_or.Tensor: bool_or,
}
