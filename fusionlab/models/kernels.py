"""Fast CPU kernels for the blocks of :mod:`fusionlab.models.blocks` (same parameters, same
function up to float rounding; ``tests/test_models.py`` checks them against the literal
definitions within 1e-5).

The blocks' ``forward`` methods call these functions while :func:`enabled` is true (the
default); ``use_fast_kernels(False)`` - a setter and a context manager - or the environment
variable ``FUSIONLAB_FAST_KERNELS=0`` selects the literal code instead. Tracing, scripting,
``torch.compile`` and ONNX export always see the literal code (plain tensor ops, no Python
loops over chunks).

Why these are faster on a CPU. At the student's widths (16-128 channels) memory traffic,
not arithmetic, is what costs time, so the kernels avoid passes over full-size maps:

* Activations are kept channels-last, so ``(B, C, H, W)`` is a free view of a
  ``(B*H*W, C)`` matrix: LayerNorm runs on it without permute copies, a 1x1 conv is one
  GEMM, and the 1x1 conv that ends a residual branch adds the residual inside the GEMM
  (``addmm``), saving a full read+write pass per branch. Plain 1x1 convs call oneDNN
  directly at inference (torch routes them to a slower generic path).
* Channel attention never reshapes the ``(B, 3C, H, W)`` map: the Gram matrix ``q^T k`` is
  one GEMM over the strided view, the L2 normalisation is applied to the small ``C x C``
  map instead of the big ``q``/``k``, and the output projection is folded into the
  attention (``y = x + v (W_out A)^T``, one GEMM over the map instead of two).
* Window attention at inference gathers a few dozen windows at a time into cache-sized
  buffers and runs two batched GEMMs and a softmax on them; the relative-position bias is
  folded into the first GEMM (the queries get their relative logits appended, the keys
  one-hot row/column codes), so no ``windows x 64 x 144`` bias tensor is ever built. With
  autograd the same folding feeds the fused ``scaled_dot_product_attention`` kernel.
"""
from __future__ import annotations

import os

import torch
import torch.nn as nn
import torch.nn.functional as F

_FAST = os.environ.get("FUSIONLAB_FAST_KERNELS", "1").strip().lower() not in ("0", "false", "no", "off")


def enabled() -> bool:
    """True when the blocks should run these kernels (not while tracing/compiling/exporting)."""
    if not _FAST:
        return False
    return not (torch.jit.is_scripting() or torch.jit.is_tracing() or torch.compiler.is_compiling()
                or torch.onnx.is_in_onnx_export())


class use_fast_kernels:
    """Select the fast kernels (True) or the literal block code (False), process-wide.

    ``use_fast_kernels(False)`` switches at once; used as a context manager (``with
    use_fast_kernels(False): ...``) the previous setting is restored on exit.
    """

    def __init__(self, enabled: bool = True):
        global _FAST
        self._previous, _FAST = _FAST, bool(enabled)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        global _FAST
        _FAST = self._previous
        return False


# ----------------------------------------------------------------------------- 1x1 convs
_MKLDNN = torch.backends.mkldnn.is_available() and hasattr(torch.ops.aten, "mkldnn_convolution")


def _as_rows(x: torch.Tensor) -> torch.Tensor | None:
    """``(B, C, H, W)`` channels-last -> ``(B*H*W, C)`` view, or None if not channels-last dense."""
    y = x.permute(0, 2, 3, 1)
    return y.reshape(-1, x.shape[1]) if y.is_contiguous() else None


def pointwise(x: torch.Tensor, conv: nn.Conv2d, residual: torch.Tensor | None = None) -> torch.Tensor:
    """``conv(x) (+ residual)`` for a 1x1 ``conv``, fast on channels-last CPU tensors.

    With a residual the sum is computed inside the GEMM (``addmm``); without one, inference
    calls oneDNN's convolution directly. Falls back to ``conv(x) + residual`` for any other
    layout/device/dtype.
    """
    rows = _as_rows(x) if x.device.type == "cpu" and x.dtype == torch.float32 else None
    if rows is not None:
        b, _, h, w = x.shape
        weight = conv.weight.view(conv.weight.shape[0], -1)
        if residual is not None and (res := _as_rows(residual)) is not None:
            out = torch.addmm(res, rows, weight.t())
            if conv.bias is not None:
                out = out + conv.bias
            return out.view(b, h, w, -1).permute(0, 3, 1, 2)
        if residual is None and not torch.is_grad_enabled() and _MKLDNN:
            return torch.ops.aten.mkldnn_convolution(x, conv.weight, conv.bias, [0, 0], [1, 1], [1, 1], 1)
    y = conv(x)
    return y if residual is None else y + residual


# ----------------------------------------------------------------------------- block, FFN
def transformer_block(block, x: torch.Tensor) -> torch.Tensor:
    """:class:`~fusionlab.models.blocks.TransformerBlock`; each branch adds its residual
    inside its last GEMM (same as ``x = x + f(norm(x))``)."""
    x = channel_attention(block.channel_attn, block.norm1(x), residual=x)
    x = gated_ffn(block.channel_ffn, block.norm2(x), residual=x)
    x = window_attention(block.spatial_attn, block.norm3(x), residual=x)
    return gated_ffn(block.spatial_ffn, block.norm4(x), residual=x)


def gated_ffn(ffn, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
    """:class:`~fusionlab.models.blocks.GatedDconvFFN` (+ ``residual``)."""
    a, b = ffn.dwconv(pointwise(x, ffn.project_in)).chunk(2, dim=1)
    return pointwise(F.gelu(a) * b, ffn.project_out, residual)


# ----------------------------------------------------------------------------- channel attention
def channel_attention(ca, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
    """:class:`~fusionlab.models.blocks.ChannelAttention` (+ ``residual``).

    Computed as ``y = residual + v (W_out A)^T`` with ``A`` the block-diagonal ``C x C``
    attention built from the Gram matrix ``q^T k`` divided by the norms of q and k
    (= ``normalize(q) normalize(k)^T``): the big map is read by two GEMMs and a norm, never
    reshaped, normalised or projected on its own.
    """
    b, c, h, w = x.shape
    nh, hd = ca.heads, c // ca.heads
    qkv = ca.qkv_dwconv(pointwise(x, ca.qkv)).permute(0, 2, 3, 1)
    qkv = qkv.reshape(b, h * w, 3 * c)  # a view for channels-last activations
    q, k, v = qkv.split(c, dim=2)  # (B, HW, C) strided views
    eps = 1e-12  # F.normalize's: ||q|| is clamped to >= eps
    # squared sums over H*W: 2x faster than linalg.vector_norm on these strided views
    qn = q.square().sum(dim=1).clamp_min(eps * eps).sqrt()
    kn = k.square().sum(dim=1).clamp_min(eps * eps).sqrt()
    gram = q.transpose(1, 2) @ k
    qn, kn = qn.view(b, nh, hd, 1), kn.view(b, nh, 1, hd)
    gram = gram.reshape(b, nh, hd, nh, hd)
    gram = gram.diagonal(dim1=1, dim2=3).permute(0, 3, 1, 2)  # (B, heads, hd, hd) per-head blocks
    attn = (gram / (qn * kn) * ca.temperature).softmax(dim=-1)
    # block-diagonal (B, C, C) attention, folded into the output projection
    eye = torch.eye(nh, dtype=attn.dtype, device=attn.device)
    attn = torch.einsum("bhij,hg->bhigj", attn, eye).reshape(b, c, c)
    proj = ca.project_out.weight.view(c, c) @ attn  # (B, C, C)
    if residual is not None and (res := _as_rows(residual)) is not None:
        y = torch.baddbmm(res.view(b, h * w, c), v, proj.transpose(1, 2))
        residual = None
    else:
        y = v @ proj.transpose(1, 2)
    if ca.project_out.bias is not None:
        y = y + ca.project_out.bias
    y = y.view(b, h, w, c).permute(0, 3, 1, 2)
    return y if residual is None else y + residual


# ----------------------------------------------------------------------------- window attention
#: windows per attention chunk at inference with one thread (x4 per extra thread, up to x8):
#: the chunk's bias mask, keys and values (~80 KB per window and head) stay in the L2 cache
ATTENTION_CHUNK = 32


def window_attention(attn, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
    """:class:`~fusionlab.models.blocks.OverlapWindowAttention` (+ ``residual``)."""
    b, _, h, w = x.shape
    ws, nh, d, p = attn.window, attn.heads, attn.head_dim, attn.pad
    inner = nh * d
    # work in (B, H, W, C): a free view of channels-last activations
    qkv = pointwise(x, attn.qkv).permute(0, 2, 3, 1)
    ph, pw = (-h) % ws, (-w) % ws
    if ph or pw:  # zero q/k/v beyond the image, like the border padding of the key windows
        qkv = F.pad(qkv, (0, 0, 0, pw, 0, ph))
    q = qkv[..., :inner]
    kv = _zero_border_pad(qkv[..., inner:], p)  # (B, H+2p, W+2p, 2*inner)
    if torch.is_grad_enabled() and (x.requires_grad or attn.rel_h.requires_grad):
        out = _attend_autograd(attn, q, kv)
    else:
        out = _attend_chunked(attn, q, kv)
    if ph or pw:
        out = out[:, :h, :w]
    return pointwise(out.permute(0, 3, 1, 2), attn.project_out, residual)  # NCHW view, channels-last


def _key_windows(attn, kv: torch.Tensor) -> torch.Tensor:
    """``(B, gh, gw, ow, ow, 2*inner)`` strided view of the overlapping key/value windows."""
    ws, ow = attn.window, attn.ow
    b, hp, wp, c = kv.shape
    sb, sh, sw, sc = kv.stride()
    return kv.as_strided((b, (hp - ow) // ws + 1, (wp - ow) // ws + 1, ow, ow, c),
                         (sb, ws * sh, ws * sw, sh, sw, sc))


def _rel_tables(attn) -> torch.Tensor:
    """Both relative-position tables stacked and pre-scaled: ``(2 * (2 ow - 1), d)``."""
    return torch.cat([attn.rel_h, attn.rel_w]) * attn.head_dim ** -0.5


def _rel_logits(attn, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column relative-position logits ``(n, ws, ws, ow)`` each, as strided views of
    ``logits (n, ws*ws, 2 * (2 ow - 1))`` = queries times :func:`_rel_tables`.

    The HaloNet "relative to absolute" shift is a *view*: entry ``(x, y, i)`` of the row
    logits is table row ``i - pad - x + ow - 1`` of query ``(x, y)``, i.e. the x-stride
    shrinks by one (and likewise for columns).
    """
    ws, ow, p = attn.window, attn.ow, attn.pad
    t = 2 * ow - 1
    n = logits.shape[0]
    logits = logits.view(n, ws, ws, 2 * t)
    sn, sx, sy, _ = logits.stride()
    off = logits.storage_offset() + ow - 1 - p
    rel_h = logits.as_strided((n, ws, ws, ow), (sn, sx - 1, sy, 1), off)
    rel_w = logits.as_strided((n, ws, ws, ow), (sn, sx, sy - 1, 1), off + t)
    return rel_h, rel_w


def _key_codes(ow: int, dtype, device) -> torch.Tensor:
    """One-hot row and column codes of the ``ow * ow`` keys: ``(ow*ow, 2*ow)``.

    ``[q, rel_h(q), rel_w(q)] . [k, onehot(i), onehot(j)] = q.k + rel_h(q)[i] + rel_w(q)[j]``:
    appended to queries and keys, they turn the relative-position bias into part of the
    ``q k^T`` product."""
    eye = torch.eye(ow, dtype=dtype, device=device)
    return torch.cat([eye.repeat_interleave(ow, 0), eye.repeat(ow, 1)], dim=1)


def _attend_chunked(attn, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
    """Inference: ``q (B, H, W, inner)``, padded ``kv`` -> ``(B, H, W, inner)``.

    Windows are processed a few dozen at a time: their queries and keys/values are gathered
    into cache-sized buffers, their ``(chunk, heads, 64, 144)`` bias mask is made by one
    GEMM (relative logits ``(.., 64, 24)`` times the keys' one-hot row/column codes), and
    the fused SDPA kernel uses them at once; the result is written straight into the output
    map. Nothing of size ``windows x 64 x 144`` exists beyond one chunk.
    """
    ws, ow, nh, d = attn.window, attn.ow, attn.heads, attn.head_dim
    b, H, W, inner = q.shape
    gh, gw = H // ws, W // ws
    L, S = ws * ws, ow * ow
    windows = _key_windows(attn, kv)
    out = q.new_empty(b, H, W, inner)
    # each op below is an OpenMP parallel region ending in a barrier: with several threads,
    # fewer and bigger chunks are faster
    threads = torch.get_num_threads()
    chunk = ATTENTION_CHUNK * (1 if threads == 1 else min(8, 4 * threads))
    # a chunk is several whole rows of windows, or a piece of one row when rows are long
    nrows, ncols = (max(1, chunk // gw), gw) if gw <= chunk else (1, chunk)
    g_max = min(nrows * ncols, gh * gw)
    q_buf = q.new_empty(g_max, nh, L, d)
    kv_buf = q.new_empty(g_max, 2, nh, S, d)
    rel_buf = q.new_empty(g_max, nh, L, 2 * ow)
    mask_buf = q.new_empty(g_max, nh, L, S)
    codes_t = _key_codes(ow, q.dtype, q.device).t()  # (2 ow, S)
    tables_t = _rel_tables(attn).t()  # (d, 2 (2 ow - 1)), pre-scaled
    scale = d ** -0.5
    for bi in range(b):
        for r0 in range(0, gh, nrows):
            r1 = min(gh, r0 + nrows)
            for c0 in range(0, gw, ncols):
                c1 = min(gw, c0 + ncols)
                nr, nc = r1 - r0, c1 - c0
                g = nr * nc
                rows, cols = slice(r0 * ws, r1 * ws), slice(c0 * ws, c1 * ws)
                qc = q_buf[:g]
                qc.view(nr, nc, nh, ws, ws, d).copy_(
                    q[bi, rows, cols].view(nr, ws, nc, ws, nh, d).permute(0, 2, 4, 1, 3, 5))
                kvc = kv_buf[:g]
                kvc.view(nr, nc, 2, nh, ow, ow, d).copy_(
                    windows[bi, r0:r1, c0:c1].unflatten(-1, (2, nh, d)).permute(0, 1, 4, 5, 2, 3, 6))
                # bias mask: relative logits (row | column) of each query, times the key codes
                rel_h, rel_w = _rel_logits(attn, (qc.view(-1, L, d) @ tables_t))
                rel = rel_buf[:g].view(-1, ws, ws, 2 * ow)
                rel[..., :ow].copy_(rel_h)
                rel[..., ow:].copy_(rel_w)
                mask = torch.mm(rel.view(-1, 2 * ow), codes_t, out=mask_buf[:g].view(-1, S)).view(g, nh, L, S)
                o = F.scaled_dot_product_attention(qc, kvc[:, 0], kvc[:, 1], attn_mask=mask, scale=scale)
                # SDPA returns (g, L, heads, d) memory: one strided copy into the map
                out[bi, rows, cols].view(nr, ws, nc, ws, nh, d).copy_(
                    o.view(nr, nc, nh, ws, ws, d).permute(0, 3, 1, 4, 2, 5))
    return out


def _attend_autograd(attn, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
    """Training (autograd): all windows at once, bias folded into the attention product.

    A bias mask that needs a gradient sends SDPA to its slow unfused path, so the
    relative logits are appended to the queries and one-hot row/column codes to the keys
    (see :func:`_key_codes`), with ``v`` zero-padded to the same width: the fused kernel
    and its backward stay in use.
    """
    ws, ow, nh, d = attn.window, attn.ow, attn.heads, attn.head_dim
    b, H, W, inner = q.shape
    gh, gw = H // ws, W // ws
    n, L, S = b * gh * gw, ws * ws, ow * ow
    q = q.reshape(b, gh, ws, gw, ws, inner).permute(0, 1, 3, 2, 4, 5).reshape(n, L, nh, d).transpose(1, 2)
    kv = _key_windows(attn, kv).reshape(n, S, 2, nh, d)
    k, v = kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)
    rel_h, rel_w = _rel_logits(attn, (q @ _rel_tables(attn).t()).reshape(n * nh, L, -1))
    q_aug = torch.cat([q * d ** -0.5, rel_h.reshape(n, nh, L, ow), rel_w.reshape(n, nh, L, ow)], dim=-1)
    k_aug = torch.cat([k, _key_codes(ow, k.dtype, k.device).expand(n, nh, S, 2 * ow)], dim=-1)
    v_aug = F.pad(v, (0, 2 * ow))  # same width as q/k, else SDPA falls back to the slow path
    o = F.scaled_dot_product_attention(q_aug, k_aug, v_aug, scale=1.0)[..., :d]  # (n, heads, L, d)
    return o.transpose(1, 2).reshape(b, gh, gw, ws, ws, inner).permute(0, 1, 3, 2, 4, 5).reshape(b, H, W, inner)


def _zero_border_pad(x: torch.Tensor, p: int) -> torch.Tensor:
    """Zero-pad ``(B, H, W, C)`` by ``p`` on both spatial sides (= ``F.pad``), writing the
    zeros only into the border instead of filling the whole new map first."""
    if p == 0 or torch.is_grad_enabled() and x.requires_grad:
        return F.pad(x, (0, 0, p, p, p, p))
    b, h, w, c = x.shape
    out = x.new_empty(b, h + 2 * p, w + 2 * p, c)
    out[:, :p].zero_()
    out[:, h + p:].zero_()
    out[:, p:h + p, :p].zero_()
    out[:, p:h + p, w + p:].zero_()
    out[:, p:h + p, p:w + p].copy_(x)
    return out


__all__ = ["enabled", "use_fast_kernels", "pointwise", "transformer_block", "gated_ffn", "channel_attention",
           "window_attention", "ATTENTION_CHUNK"]
