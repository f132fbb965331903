"""Rewrite the operators XNNPACK rejects in the student's programs into equivalents it takes.

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

The same table rewrites the other ops that split the student's graphs (2026-12-05: the embedded int8 ``image``
method went from 13 delegates with 111 ops outside to 3 with 20, its latency from 4.4 to 2.0 ms):

- ``select`` / ``unbind`` as a slice and a reshape (``view_copy``: XNNPACK's static reshape);
- ``group_norm`` on ``[N, C, H, W]`` as the layer-norm arithmetic on a ``[N, G, C/G, H*W]`` view;
- nearest upsampling by whole factors as two broadcast products with ones on 4-D views (exact);
- ``sum`` and ``logsumexp`` over dims of a float tensor through XNNPACK's 4-D mean / max over dims (2, 3)
  (the sum is k times the mean: equal up to rounding).

Squeeze, unsqueeze, alias and no-op expands become reshapes in an edge pass
(:func:`sam3_edge.deploy.lowering.views_as_reshape`), which can see the quantization around them, and values
computed from literals alone (``arange`` grids, ``pow`` of a scalar) are folded into constants there
(:func:`sam3_edge.deploy.lowering.fold_literals`).

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


def _dims(x, dims) -> list[int]:
    if isinstance(dims, int):
        dims = [dims]
    return [d % max(1, x.dim()) for d in dims]


def _reshape(x, shape):
    # view_copy, not reshape: a reshape of a strided slice would add a contiguous-copy op XNNPACK does not take
    return aten.view_copy.default(x, [int(s) for s in shape])


def select(x, dim, index):
    dim = dim % x.dim()
    index = index % x.shape[dim]
    shape = [s for i, s in enumerate(x.shape) if i != dim]
    return _reshape(torch.narrow(x, dim, index, 1), shape)


def unbind(x, dim=0):
    return [select(x, dim, i) for i in range(x.shape[dim])]


def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5, cudnn_enabled=True):
    if x.dim() != 4:
        raise NotImplementedError(f"group_norm of a {x.dim()}-D input (only [N, C, H, W] is rewritten)")
    n, c, h, w = x.shape
    g = _reshape(x, [n, num_groups, c // num_groups, h * w])
    mu = g.mean(dim=[2, 3], keepdim=True)
    gc = g - mu
    var = (gc * gc).mean(dim=[2, 3], keepdim=True)
    y = _reshape(gc * torch.rsqrt(var + eps), [n, c, h, w])
    if weight is not None:
        y = y * _reshape(weight, [1, c, 1, 1])
    if bias is not None:
        y = y + _reshape(bias, [1, c, 1, 1])
    return y


def upsample_nearest2d(x, output_size=None, scale_factors=None):
    n, c, h, w = x.shape
    out_h, out_w = output_size if output_size is not None else (int(h * scale_factors[0]), int(w * scale_factors[1]))
    if out_h % h or out_w % w:
        return NotImplemented  # a fractional nearest upsampling stays as it is
    sh, sw = out_h // h, out_w // w
    # each pixel repeated sh x sw times, as broadcast products with ones on 4-D views (exact: x * 1.0)
    y = _reshape(x, [n * c * h, w, 1, 1]) * torch.ones(1, 1, 1, sw, dtype=x.dtype, device=x.device)
    y = _reshape(y, [n * c, h, 1, w * sw]) * torch.ones(1, 1, sh, 1, dtype=x.dtype, device=x.device)
    return _reshape(y, [n, c, out_h, out_w])


def _rows_view(x, dims, keepdim):
    """x viewed as [1, M, K, 1] with the K elements of ``dims`` in the third axis; -> the view, K and the shape of
    a reduction over ``dims``."""
    dims = sorted(_dims(x, dims))
    keep = [d for d in range(x.dim()) if d not in dims]
    order = keep + dims
    y = x if order == list(range(x.dim())) else torch.permute(x, order)
    k = _rows([x.shape[d] for d in dims])
    out = [1 if d in dims else s for d, s in enumerate(x.shape)] if keepdim else [x.shape[d] for d in keep]
    return _reshape(y, [1, _rows([x.shape[d] for d in keep]), k, 1]), k, out


def sum_dims(x, dims, keepdim=False, dtype=None):
    if dtype is not None or not x.dtype.is_floating_point or not dims:
        return NotImplemented  # integer / boolean counts and full reductions stay as they are
    v, k, out = _rows_view(x, dims, keepdim)
    # XNNPACK's mean is a global average pooling over dims (2, 3) of a 4-D tensor; the sum is k times it
    return _reshape(v.mean(dim=[2, 3], keepdim=True) * k, out)


def logsumexp(x, dims, keepdim=False):
    if not x.dtype.is_floating_point:
        return NotImplemented
    v, k, out = _rows_view(x, dims, keepdim)
    m = torch.max(v, dim=2, keepdim=True).values  # XNNPACK max.dim (values only) on 4-D
    return _reshape(torch.log((v - m).exp().mean(dim=[2, 3], keepdim=True) * k) + m, out)


XNNPACK_DECOMPOSITIONS = {
    aten.layer_norm.default: layer_norm,
    aten.scaled_dot_product_attention.default: scaled_dot_product_attention,
    # select / unbind as a slice and a reshape (XNNPACK takes both; it has no select). squeeze / unsqueeze /
    # no-op expand / detach become reshapes in an edge pass instead (lowering.views_as_reshape), which can see
    # the quantization around them
    aten.select.int: select,
    aten.unbind.int: unbind,
    aten.group_norm.default: group_norm,
    aten.upsample_nearest2d.vec: upsample_nearest2d,
    # reductions as XNNPACK's 4-D mean / max over dims (2, 3)
    aten.sum.dim_IntList: sum_dims,
    aten.logsumexp.default: logsumexp,
}


def bool_or(a, b):
    if a.dtype != torch.bool or b.dtype != torch.bool:
        return NotImplemented  # integer bitwise or: left as it is
    return torch.logical_or(a, b)


COREML_DECOMPOSITIONS = {
    aten.__or__.Tensor: bool_or,  # what ``a | b`` exports as; the edge conversion makes it bitwise_or
    aten.bitwise_or.Tensor: bool_or,
}
