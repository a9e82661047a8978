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

At inference on the CPU the blocks go one level further, into C (:mod:`fusionlab.native`,
compiled on first use; without a compiler or with ``FUSIONLAB_NATIVE=0`` the torch code
above runs). For 16-128 channels (:data:`NATIVE_MAX_DIM`) each of the three branches is one
C call per image: the window attention layer (LayerNorm, q/k/v projection, attention one
window-head at a time with the bias added from the two tables, output projection and
residual, tile by tile in per-thread buffers), the gated FFN and the channel attention
(LayerNorm, 1x1 projection, depth-wise 3x3 conv and the gate / Gram sums in one pass per row;
the attention's mix as a second pass). Wider maps use the C attention core alone. The
network's first and last convolutions (one input / one output channel, where oneDNN runs at
6-11 GFLOP/s) are C calls too (:func:`end_conv`). Measured numbers: docs/models.md, "Native
kernels".
"""
from __future__ import annotations

import functools

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import native
from ..switch import EnvSwitch

_FAST = EnvSwitch("FUSIONLAB_FAST_KERNELS")


def enabled() -> bool:
    """True when the blocks should run these kernels (not while tracing/compiling/exporting)."""
    if not _FAST.on():
        return False
    return not (torch.jit.is_scripting() or torch.jit.is_tracing() or torch.compiler.is_compiling()
                or torch.onnx.is_in_onnx_export())


def use_fast_kernels(enabled: bool = True):
    """Select the fast kernels (True) or the literal block code (False), process-wide.

    ``use_fast_kernels(False)`` switches at once; used as a context manager (``with
    use_fast_kernels(False): ...``) the previous setting is restored on exit.
    """
    return _FAST.use(enabled)


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


# ----------------------------------------------------------------------------- the U-Net's ends
def end_conv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` for a 3x3, zero-padding-1 conv with one input channel (FusionNet's patch
    embedding: ``(B, 1, H, W)`` -> ``(B, N, H, W)``, channels-last) or one output channel
    (its output conv: ``(B, N, H, W)`` -> ``(B, 1, H, W)``), N a multiple of 16. At inference
    on the CPU one C call per image (``unet.c``): torch's oneDNN runs these shapes at 6-11
    GFLOP/s and returns the embedding NCHW, which the blocks after it then copy. Anything
    else runs ``nn.Conv2d.forward``."""
    n_in, n_out = conv.in_channels, conv.out_channels
    embed = n_in == 1 and n_out % 16 == 0
    symbol = "conv3x3_from1_f32" if embed else "conv3x3_to1_f32"
    if (not (embed or (n_out == 1 and n_in % 16 == 0)) or x.shape[1] != n_in
            or conv.kernel_size != (3, 3) or conv.padding != (1, 1) or conv.stride != (1, 1)
            or conv.dilation != (1, 1) or conv.groups != 1 or conv.padding_mode != "zeros"
            or not _streaming(x, conv) or not _native_tensors(x) or (fn := _c_function(symbol)) is None):
        return nn.Conv2d.forward(conv, x)
    b, _, h, w = x.shape
    rows, threads = _row_tasks(h)
    if embed:
        src = x.reshape(b, h, w).contiguous()  # one channel: both memory formats are this layout
        out = x.new_empty(b, h, w, n_out)
        weights = (_f32(conv.weight.view(n_out, 9).t()), _f32(conv.bias))
    else:
        src = _nhwc(x)
        out = x.new_empty(b, h, w)
        weights = (_f32(conv.weight.view(n_in, 9).t()), float(conv.bias) if conv.bias is not None else 0.0)
    for bi in range(b):
        if not native.run_shared(fn, *map(_arg, (src[bi], out[bi], h, w, n_out if embed else n_in, *weights, rows)),
                                 threads=threads):
            return nn.Conv2d.forward(conv, x)
    return out.permute(0, 3, 1, 2) if embed else out[:, None]


# ----------------------------------------------------------------------------- strips
#: pixels per strip of the streaming (inference) kernels: a strip's temporaries - the FFN's
#: 4x-expanded hidden map above all - stay in the CPU caches, and no full-size temporary
#: is ever made (the peak memory of a block is its input and output maps)
STRIP_PIXELS = 16384


def _streaming(x: torch.Tensor, *modules: nn.Module) -> bool:
    """Inference without autograd: the strip-by-strip kernels apply."""
    if not torch.is_grad_enabled():
        return True
    return not (x.requires_grad or any(p.requires_grad for m in modules if m is not None for p in m.parameters()))


def _strips(h: int, w: int, halo: int = 0, multiple: int = 1):
    """Row ranges ``(r0, r1, h0, h1)``: a strip and the strip grown by ``halo`` rows."""
    rows = max(multiple, STRIP_PIXELS // max(w, 1) // multiple * multiple)
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        yield r0, r1, max(0, r0 - halo), min(h, r1 + halo)


def _nhwc(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, H, W, C)`` contiguous (a free view of channels-last tensors)."""
    return x.permute(0, 2, 3, 1).contiguous()


def _normed(rows: torch.Tensor, norm) -> torch.Tensor:
    return rows if norm is None else F.layer_norm(rows, rows.shape[-1:], norm.weight, norm.bias, norm.eps)


def _depthwise(t: torch.Tensor, conv: nn.Conv2d, keep: slice) -> torch.Tensor:
    """3x3 depth-wise ``conv`` of an ``(rows, W, C)`` strip -> ``(kept rows, W, C)``; rows
    outside the strip count as zero, so only the rows ``keep`` that have their neighbours
    in the strip (or are at the image border) are exact."""
    # unsqueeze *before* permuting: a batch stride of C instead of C*H*W makes oneDNN treat the
    # input as NCHW (measured 6x slower)
    y = F.conv2d(t[None].permute(0, 3, 1, 2), conv.weight, conv.bias, padding=1, groups=conv.groups)
    return y[0, :, keep].permute(1, 2, 0)


# ----------------------------------------------------------------------------- block, FFN
def transformer_block(block, x: torch.Tensor) -> torch.Tensor:
    """:class:`~fusionlab.models.blocks.TransformerBlock`; each branch adds its residual
    inside its last GEMM (same as ``x = x + f(norm(x))``)."""
    x = channel_attention(block.channel_attn, x, norm=block.norm1, residual=True)
    x = gated_ffn(block.channel_ffn, x, norm=block.norm2, residual=True)
    x = window_attention(block.spatial_attn, x, norm=block.norm3, residual=True)
    return gated_ffn(block.spatial_ffn, x, norm=block.norm4, residual=True)


def gated_ffn(ffn, x: torch.Tensor, norm=None, residual: bool = False) -> torch.Tensor:
    """:class:`~fusionlab.models.blocks.GatedDconvFFN` of ``norm(x)`` (+ ``x``)."""
    if not _streaming(x, ffn, norm):
        y = norm(x) if norm is not None else x
        a, b = ffn.dwconv(pointwise(y, ffn.project_in)).chunk(2, dim=1)
        return pointwise(F.gelu(a) * b, ffn.project_out, x if residual else None)
    if (out := _ffn_native(ffn, x, norm, residual)) is not None:
        return out
    # inference: strip by strip (1 halo row for the 3x3 conv), residual added in the GEMM
    b, c, h, w = x.shape
    xr = _nhwc(x)
    hidden = ffn.project_out.weight.shape[1]
    w_in = ffn.project_in.weight.view(2 * hidden, c)
    w_out_t = ffn.project_out.weight.view(c, hidden).t()
    out = torch.empty_like(xr)
    for bi in range(b):
        for r0, r1, h0, h1 in _strips(h, w, halo=1):
            t = F.linear(_normed(xr[bi, h0:h1], norm), w_in, ffn.project_in.bias)
            t = _depthwise(t, ffn.dwconv, slice(r0 - h0, r1 - h0))
            gate = F.gelu(t[..., :hidden]).mul_(t[..., hidden:]).view(-1, hidden)
            _project_out(out[bi, r0:r1].view(-1, c), gate, w_out_t, ffn.project_out.bias,
                         xr[bi, r0:r1].view(-1, c) if residual else None)
    return out.permute(0, 3, 1, 2)


#: widest input the C row kernels take (the student's level 4: 128). Measured at 128 channels,
#: 60x80, 2 threads, best of 15 (C vs torch): channel attention 6.1 vs 10.7 ms, FFN 7.6 vs
#: 11.5 ms, window attention layer 4.6 vs 9.3 ms; with the first, unblocked C kernels torch's
#: BLAS won at this width (FFN 9.3 ms torch, 14.5 ms C), hence a limit at all
NATIVE_MAX_DIM = 128


def _c_function(symbol: str):
    """The C function ``symbol`` of :mod:`fusionlab.native` (library and argument types from
    the table below), or None when unavailable. Every kernel takes its task counter last."""
    import ctypes

    i64, i32, ptr, f32 = ctypes.c_int64, ctypes.c_int, ctypes.c_void_p, ctypes.c_float
    rows_in = [ptr, ptr, f32, ptr, ptr, ptr, ptr]  # LayerNorm w, b, eps; W_in^T, b_in; W_dw, b_dw
    signatures = {
        "gated_ffn_f32": ("restormer", [ptr, ptr, i64, i64, i32, i32, *rows_in, ptr, ptr, i32]),
        "channel_attention_stats_f32": ("restormer", [ptr, ptr, i64, i64, i32, *rows_in, ptr, ptr, ptr]),
        "linear_rows_f32": ("restormer", [ptr, ptr, ptr, i64, i64, i32, ptr, ptr, i64]),
        "window_attention_f32": ("window_attention", [ptr, i64, i64, i64, ptr, i64, i64, i64, ptr, i64, i64, i64,
                                                      ptr, ptr, f32, i64, i64, i32, i32, i32, i32, i32, i64, i64]),
        "window_attention_layer_f32": ("window_attention", [ptr, ptr, i64, i64, i32, ptr, ptr, f32, ptr, ptr, ptr, ptr,
                                                            f32, i32, i32, i32, i32, i32, ptr, ptr, i32, i64, i64]),
        "conv3x3_from1_f32": ("unet", [ptr, ptr, i64, i64, i32, ptr, ptr, i64]),
        "conv3x3_to1_f32": ("unet", [ptr, ptr, i64, i64, i32, ptr, f32, i64]),
    }
    library, args = signatures[symbol]
    return native.function(library, symbol, [*args, ctypes.POINTER(i64)], restype=ctypes.c_int)


def _f32(t: torch.Tensor | None) -> torch.Tensor | None:
    """A weight as the C kernels read it: detached, float32, contiguous (None stays None)."""
    return None if t is None else t.detach().to(torch.float32).contiguous()


def _arg(v):
    """A C argument: a tensor's data pointer, None (NULL) or the number itself."""
    return native.ptr(v) if isinstance(v, torch.Tensor) else v


def _native_rows_args(conv_in: nn.Conv2d, dwconv: nn.Conv2d, norm, c: int) -> tuple | None:
    """Weights of ``DWConv3x3(W_in LN(x))`` as the C row kernels take them (float32, transposed:
    ``w_in_t (C, T)``, ``w_dw (9, T)``; LayerNorm weight/bias/eps, biases or None), or None
    if the layers are not a 1x1 conv followed by a 3x3 depth-wise conv with padding 1."""
    t = conv_in.weight.shape[0]
    if (conv_in.weight.shape[1:] != (c, 1, 1) or dwconv.kernel_size != (3, 3) or dwconv.padding != (1, 1)
            or dwconv.stride != (1, 1) or dwconv.dilation != (1, 1) or dwconv.groups != t
            or dwconv.weight.shape[0] != t or t % 16):
        return None
    return (*_ln_args(norm), _f32(conv_in.weight.view(t, c).t()), _f32(conv_in.bias),
            _f32(dwconv.weight.view(t, 9).t()), _f32(dwconv.bias))


def _ln_args(norm) -> tuple:
    """LayerNorm weight, bias, eps for the C kernels; ``(None, None, 0.0)`` without a norm."""
    return (_f32(norm.weight), _f32(norm.bias), float(norm.eps)) if norm is not None else (None, None, 0.0)


def _native_tensors(*ts: torch.Tensor) -> bool:
    """The C kernels may run on these tensors: enabled, all float32 on the CPU."""
    return native.enabled() and all(t.device.type == "cpu" and t.dtype == torch.float32 for t in ts)


def _native_ok(x: torch.Tensor) -> bool:
    """The C row kernels apply to the ``(B, C, H, W)`` map ``x``: :func:`_native_tensors`, and
    C a multiple of 16 and at most :data:`NATIVE_MAX_DIM`."""
    c = x.shape[1]
    return _native_tensors(x) and c % 16 == 0 and c <= NATIVE_MAX_DIM


def _row_tasks(h: int) -> tuple[int, int]:
    """Rows per task (a few tasks per thread) and threads to use, for the kernels that take row
    chunks from a counter (``linear_rows_f32``, the U-Net's end convs: no halo to recompute);
    the ring kernels share rows by bands instead (:func:`_band_threads`)."""
    rows = max(4, min(32, h // 8))
    return rows, min(torch.get_num_threads(), max(1, -(-h // rows)))


def _band_threads(h: int) -> int:
    """Threads for the ring kernels, which share an image's rows by bands (one per thread,
    ``rows.h`` ``sched_row``): all of torch's, but no more than rows."""
    return max(1, min(torch.get_num_threads(), h))


def _ffn_native(ffn, x: torch.Tensor, norm, residual: bool) -> torch.Tensor | None:
    """:func:`gated_ffn` at inference by the C kernel (LayerNorm, both projections, the
    depth-wise conv and the gate in one pass per row), or None where it does not apply
    (:func:`_native_ok`; a hidden width not a multiple of 16, like the teacher's 127; no
    compiler)."""
    b, c, h, w = x.shape
    hidden = ffn.project_out.weight.shape[1]
    if not _native_ok(x) or hidden % 16 or ffn.project_in.weight.shape[0] != 2 * hidden:
        return None
    prep = _native_rows_args(ffn.project_in, ffn.dwconv, norm, c)
    fn = _c_function("gated_ffn_f32") if prep is not None else None
    if fn is None:
        return None
    weights = (*prep, _f32(ffn.project_out.weight.view(c, hidden).t()), _f32(ffn.project_out.bias))
    xr = _nhwc(x)
    out = torch.empty_like(xr)
    threads = _band_threads(h)
    for bi in range(b):
        args = (xr[bi], out[bi], h, w, c, hidden, *weights, int(residual))
        if not native.run_shared(fn, *map(_arg, args), threads=threads):
            return None  # out of memory for the row buffers: the torch kernel needs less of it
    return out.permute(0, 3, 1, 2)


def _channel_stats(ca, xr: torch.Tensor, norm) -> tuple:
    """First pass of :func:`channel_attention` at inference, strip by strip: q, k, v of each
    strip, the Gram matrix ``q^T k`` and the squared norms of q and k summed, only v kept.
    ``xr (B, H, W, C)`` -> ``v (B, H, W, C)``, ``gram (B, C, C)``, ``q_sq``, ``k_sq`` ``(B, C)``."""
    b, h, w, c = xr.shape
    w_qkv = ca.qkv.weight.view(3 * c, c)
    v_map = torch.empty_like(xr)
    gram = xr.new_zeros(b, c, c)
    q_sq, k_sq = xr.new_zeros(b, c), xr.new_zeros(b, c)
    for bi in range(b):
        for r0, r1, h0, h1 in _strips(h, w, halo=1):
            t = F.linear(_normed(xr[bi, h0:h1], norm), w_qkv, ca.qkv.bias)
            t = _depthwise(t, ca.qkv_dwconv, slice(r0 - h0, r1 - h0)).reshape(-1, 3 * c)
            q, k = t[:, :c], t[:, c:2 * c]
            gram[bi].addmm_(q.t(), k)
            q_sq[bi] += q.square().sum(0)
            k_sq[bi] += k.square().sum(0)
            v_map[bi, r0:r1].view(-1, c).copy_(t[:, 2 * c:])
    return v_map, gram, q_sq, k_sq


def _channel_stats_native(ca, xr: torch.Tensor, norm) -> tuple | None:
    """First pass of :func:`channel_attention` at inference by the C kernel: ``v`` map
    ``(B, H, W, C)``, Gram matrices ``(B, C, C)`` and squared norms of q and k ``(B, C)``
    (summed in float64, returned as float32 like the torch pass), or None."""
    b, h, w, c = xr.shape
    prep = _native_rows_args(ca.qkv, ca.qkv_dwconv, norm, c)
    fn = _c_function("channel_attention_stats_f32") if prep is not None else None
    if fn is None:
        return None
    v_map = torch.empty_like(xr)
    gram = torch.zeros(b, c, c, dtype=torch.float64)
    q_sq, k_sq = torch.zeros(b, c, dtype=torch.float64), torch.zeros(b, c, dtype=torch.float64)
    threads = _band_threads(h)
    for bi in range(b):
        args = (xr[bi], v_map[bi], h, w, c, *prep, gram[bi], q_sq[bi], k_sq[bi])
        if not native.run_shared(fn, *map(_arg, args), threads=threads):
            return None
    return v_map, gram.float(), q_sq.float(), k_sq.float()


def _mix_native(v_map: torch.Tensor, res: torch.Tensor | None, proj_t: torch.Tensor, bias) -> torch.Tensor | None:
    """Second pass of :func:`channel_attention` by the C kernel: ``[res +] v proj_t [+ bias]``
    for ``(B, H, W, C)`` maps and ``(B, C, C)`` matrices, or None."""
    fn = _c_function("linear_rows_f32")
    if fn is None:
        return None
    b, h, w, c = v_map.shape
    out = torch.empty_like(v_map)
    rows, threads = _row_tasks(h)
    bias = _f32(bias)
    for bi in range(b):
        args = (v_map[bi], None if res is None else res[bi], out[bi], h, w, c, _f32(proj_t[bi]), bias, rows)
        if not native.run_shared(fn, *map(_arg, args), threads=threads):
            return None
    return out


def _project_out(dst: torch.Tensor, h: torch.Tensor, w_t: torch.Tensor, bias: torch.Tensor | None,
                 residual: torch.Tensor | None) -> None:
    """``dst = [residual +] h @ w_t [+ bias]`` written in place (the 1x1 output projection of a
    strip): ``h (N, hidden)``, ``w_t (hidden, C)``, ``dst``/``residual (N, C)``."""
    if residual is not None:
        torch.addmm(residual, h, w_t, out=dst)
    else:
        torch.mm(h, w_t, out=dst)
    if bias is not None:
        dst += bias


# ----------------------------------------------------------------------------- channel attention
def _channel_mix(ca, gram: torch.Tensor, q_sq: torch.Tensor, k_sq: torch.Tensor) -> torch.Tensor:
    """``(B, C, C)`` matrix ``W_out A`` from the Gram matrix ``q^T k`` and the squared norms of
    q and k over all pixels: ``A`` is the block-diagonal per-head softmax of
    ``normalize(q) normalize(k)^T * temperature``, folded into the output projection."""
    b, c, _ = gram.shape
    nh, hd = ca.heads, c // ca.heads
    eps = 1e-12  # F.normalize's: ||q|| is clamped to >= eps
    qn = q_sq.clamp_min(eps * eps).sqrt().view(b, nh, hd, 1)
    kn = k_sq.clamp_min(eps * eps).sqrt().view(b, nh, 1, hd)
    gram = gram.reshape(b, nh, hd, nh, hd).diagonal(dim1=1, dim2=3).permute(0, 3, 1, 2)  # per-head blocks
    attn = (gram / (qn * kn) * ca.temperature).softmax(dim=-1)
    eye = torch.eye(nh, dtype=attn.dtype, device=attn.device)
    attn = torch.einsum("bhij,hg->bhigj", attn, eye).reshape(b, c, c)
    return ca.project_out.weight.view(c, c) @ attn


def channel_attention(ca, x: torch.Tensor, norm=None, residual: bool = False) -> torch.Tensor:
    """:class:`~fusionlab.models.blocks.ChannelAttention` of ``norm(x)`` (+ ``x``).

    Computed as ``y = x + v (W_out A)^T`` with ``A`` built from the Gram matrix ``q^T k``
    divided by the norms of q and k (= ``normalize(q) normalize(k)^T``): the big map is read
    by two GEMMs and a norm, never reshaped, normalised or projected on its own. At
    inference this runs in two passes over strips: the first makes q, k, v strip by strip
    and sums the Gram matrix and the norms (keeping only v), the second applies the mix.
    """
    b, c, h, w = x.shape
    if not _streaming(x, ca, norm):
        y = norm(x) if norm is not None else x
        qkv = ca.qkv_dwconv(pointwise(y, ca.qkv)).permute(0, 2, 3, 1)
        qkv = qkv.reshape(b, h * w, 3 * c)  # a view for channels-last activations
        q, k, v = qkv.split(c, dim=2)  # (B, HW, C) strided views
        # squared sums over H*W: 2x faster than linalg.vector_norm on these strided views
        proj = _channel_mix(ca, q.transpose(1, 2) @ k, q.square().sum(dim=1), k.square().sum(dim=1))
        res = _as_rows(x) if residual else None
        if res is not None:
            out = torch.baddbmm(res.view(b, h * w, c), v, proj.transpose(1, 2))
        else:
            out = v @ proj.transpose(1, 2)
        if ca.project_out.bias is not None:
            out = out + ca.project_out.bias
        out = out.view(b, h, w, c).permute(0, 3, 1, 2)
        return out + x if residual and res is None else out
    xr = _nhwc(x)
    stats = _channel_stats_native(ca, xr, norm) if _native_ok(x) else None
    if stats is not None:
        v_map, gram, q_sq, k_sq = stats
    else:
        v_map, gram, q_sq, k_sq = _channel_stats(ca, xr, norm)
    proj_t = _channel_mix(ca, gram, q_sq, k_sq).transpose(1, 2)
    if stats is not None and (out := _mix_native(v_map, xr if residual else None, proj_t, ca.project_out.bias)) is not None:
        return out.permute(0, 3, 1, 2)
    out = v_map if not residual else torch.empty_like(xr)
    for bi in range(b):
        for r0, r1, _, _ in _strips(h, w):
            v = v_map[bi, r0:r1].view(-1, c)
            dst = out[bi, r0:r1].view(-1, c)
            if residual:
                torch.addmm(xr[bi, r0:r1].view(-1, c), v, proj_t[bi], out=dst)
            else:  # in place over v: a strip's product goes through a temporary
                dst.copy_(v @ proj_t[bi])
            if ca.project_out.bias is not None:
                dst += ca.project_out.bias
    return out.permute(0, 3, 1, 2)


# ----------------------------------------------------------------------------- window attention
#: windows per attention chunk at inference with one thread (x4 per extra thread, up to x8):
#: the chunk's bias mask, keys and values (~80 KB per window and head) stay in the L2 cache
ATTENTION_CHUNK = 32


def window_attention(attn, x: torch.Tensor, norm=None, residual: bool = False) -> torch.Tensor:
    """:class:`~fusionlab.models.blocks.OverlapWindowAttention` of ``norm(x)`` (+ ``x``).

    At inference on the CPU the whole layer is one C call where it applies
    (:func:`_window_attention_native`); otherwise the map is processed in bands of whole
    window rows: a band's q/k/v are projected from its rows plus the ``pad`` rows above and
    below that its key windows reach into, attended chunk by chunk (:func:`_attend_chunked`)
    and projected back. Either way no full-size q/k/v map exists.
    """
    b, c, h, w = x.shape
    ws, nh, d, p = attn.window, attn.heads, attn.head_dim, attn.pad
    inner = nh * d
    ph, pw = (-h) % ws, (-w) % ws
    if not _streaming(x, attn, norm):
        y = norm(x) if norm is not None else x
        # work in (B, H, W, C): a free view of channels-last activations
        qkv = pointwise(y, attn.qkv).permute(0, 2, 3, 1)
        if ph or pw:  # zero q/k/v beyond the image, like the border padding of the key windows
            qkv = F.pad(qkv, (0, 0, 0, pw, 0, ph))
        out = _attend_autograd(attn, qkv[..., :inner], _zero_border_pad(qkv[..., inner:], p))
        if ph or pw:
            out = out[:, :h, :w]
        return pointwise(out.permute(0, 3, 1, 2), attn.project_out, x if residual else None)
    if (out := _window_attention_native(attn, x, norm, residual)) is not None:
        return out
    xr = _nhwc(x)
    gh, gw = (h + ph) // ws, (w + pw) // ws
    w_out_t = attn.project_out.weight.view(c, inner).t()
    w_qkv = attn.qkv.weight.view(3 * inner, c)
    out = torch.empty(b, h, w, c, dtype=x.dtype, device=x.device)
    band = max(1, _chunk_windows() // gw)  # window rows per band: about one attention chunk
    for bi in range(b):
        for g0 in range(0, gh, band):
            g1 = min(gh, g0 + band)
            y0, y1 = g0 * ws, min(h, g1 * ws)  # image rows of the band's queries
            k0, k1 = max(0, y0 - p), min(h, g1 * ws + p)  # image rows its keys come from
            qkv = F.linear(_normed(xr[bi, k0:k1], norm), w_qkv, attn.qkv.bias)  # (k1-k0, W, 3 inner)
            rows = (g1 - g0) * ws
            # q of the band and its padded k/v, zero beyond the image (as in the definition)
            q = qkv.new_zeros(rows, gw * ws, inner) if (y1 - y0 < rows or pw) else None
            if q is None:
                q = qkv[y0 - k0:y1 - k0, :, :inner]
            else:
                q[:y1 - y0, :w] = qkv[y0 - k0:y1 - k0, :, :inner]
            kv = qkv.new_empty(rows + 2 * p, gw * ws + 2 * p, 2 * inner)
            top = k0 - (y0 - p)  # band rows above the image (zero)
            kv[:top].zero_()
            kv[top + k1 - k0:].zero_()
            kv[top:top + k1 - k0, :p].zero_()
            kv[top:top + k1 - k0, p + w:].zero_()
            kv[top:top + k1 - k0, p:p + w] = qkv[..., inner:]
            o = _attend_chunked(attn, q[None], kv[None])[0, :y1 - y0, :w].reshape(-1, inner)
            _project_out(out[bi, y0:y1].view(-1, c), o, w_out_t, attn.project_out.bias,
                         xr[bi, y0:y1].view(-1, c) if residual else None)
    return out.permute(0, 3, 1, 2)


#: windows per tile of the C window attention layer, times its inner width: a tile's buffers
#: take ~1 KB x inner per window, so 1024 keeps them near 1 MB, in the L2 cache
NATIVE_TILE = 1024


def _window_attention_native(attn, x: torch.Tensor, norm, residual: bool) -> torch.Tensor | None:
    """:func:`window_attention` at inference as one C call per image (LayerNorm and q/k/v
    projection of a tile of windows, attention of its window-heads, output projection and
    residual, tile by tile in each thread's own buffers), or None where it does not apply
    (:func:`_native_ok`, ``heads * head_dim`` a multiple of 16, no compiler)."""
    b, c, h, w = x.shape
    ws, nh, d = attn.window, attn.heads, attn.head_dim
    inner = nh * d
    if not _native_ok(x) or inner % 16 or attn.qkv.weight.shape[1:] != (c, 1, 1):
        return None
    fn = _c_function("window_attention_layer_f32")
    if fn is None:
        return None
    gh, gw = -(-h // ws), -(-w // ws)
    # tiles of up to 4 window rows (the 2 * pad halo rows and columns a tile shares with its
    # neighbours are projected twice) by as many window columns as NATIVE_TILE allows
    threads = torch.get_num_threads()
    rows = max(1, min(4, gh // (4 * threads)))
    cols = max(1, min(gw, max(4, NATIVE_TILE // inner) // rows))
    threads = min(threads, -(-gh // rows) * -(-gw // cols))
    weights = (*_ln_args(norm), _f32(attn.qkv.weight.view(3 * inner, c).t()), _f32(attn.qkv.bias),
               _f32(attn.rel_h), _f32(attn.rel_w), d ** -0.5, ws, attn.ow, attn.pad, nh, d,
               _f32(attn.project_out.weight.view(c, inner).t()), _f32(attn.project_out.bias), int(residual), rows, cols)
    xr = _nhwc(x)
    out = torch.empty_like(xr)
    for bi in range(b):
        if not native.run_shared(fn, *map(_arg, (xr[bi], out[bi], h, w, c, *weights)), threads=threads):
            return None  # out of memory for the tile buffers: the band path below needs less
    return out.permute(0, 3, 1, 2)


def _chunk_windows() -> int:
    """Windows per attention chunk: each op is an OpenMP parallel region ending in a
    barrier, so with several threads fewer and bigger chunks are faster."""
    threads = torch.get_num_threads()
    return ATTENTION_CHUNK * (1 if threads == 1 else min(8, 4 * threads))


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


@functools.lru_cache(maxsize=16)
def _key_codes(ow: int, dtype, device) -> torch.Tensor:
    """One-hot row and column codes of the ``ow * ow`` keys: ``(ow*ow, 2*ow)``.

    ``[q, rel_h(q), rel_w(q)] . [k, onehot(i), onehot(j)] = q.k + rel_h(q)[i] + rel_w(q)[j]``:
    appended to queries and keys, they turn the relative-position bias into part of the
    ``q k^T`` product."""
    eye = torch.eye(ow, dtype=dtype, device=device)
    return torch.cat([eye.repeat_interleave(ow, 0), eye.repeat(ow, 1)], dim=1)


def _attend_native(attn, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor | None:
    """:func:`_attend_chunked` by the C kernel (one window-head per step, nothing gathered:
    keys and values are read in place), or None where it does not apply (no compiler,
    ``FUSIONLAB_NATIVE=0``, not float32 on CPU, channels not contiguous)."""
    if not _native_tensors(q, kv) or q.stride(-1) != 1 or kv.stride(-1) != 1:
        return None
    fn = _c_function("window_attention_f32")
    if fn is None:
        return None
    ws, ow, nh, d, p = attn.window, attn.ow, attn.heads, attn.head_dim, attn.pad
    b, H, W, inner = q.shape
    gh, gw = H // ws, W // ws
    out = q.new_empty(b, H, W, inner)
    n = b * gh * gw * nh  # window-heads, taken 8 at a time
    args = (q, *q.stride()[:3], kv, *kv.stride()[:3], out, *out.stride()[:3], _f32(attn.rel_h), _f32(attn.rel_w),
            d ** -0.5, gh, gw, ws, ow, p, nh, d, n, 8)
    ok = native.run_shared(fn, *map(_arg, args), threads=min(torch.get_num_threads(), max(1, n // 64)))
    return out if ok else None


def _attend_chunked(attn, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
    """Inference: ``q (B, H, W, inner)``, padded ``kv`` -> ``(B, H, W, inner)``.

    Windows are processed a few dozen at a time: their queries and keys/values are gathered
    into cache-sized buffers, their ``(chunk, heads, 64, 144)`` bias mask is made by one
    GEMM (relative logits ``(.., 64, 24)`` times the keys' one-hot row/column codes), and
    the fused SDPA kernel uses them at once; the result is written straight into the output
    map. Nothing of size ``windows x 64 x 144`` exists beyond one chunk.
    """
    if (out := _attend_native(attn, q, kv)) is not None:
        return out
    ws, ow, nh, d = attn.window, attn.ow, attn.heads, attn.head_dim
    b, H, W, inner = q.shape
    gh, gw = H // ws, W // ws
    L, S = ws * ws, ow * ow
    windows = _key_windows(attn, kv)
    out = q.new_empty(b, H, W, inner)
    chunk = _chunk_windows()
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
           "window_attention", "ATTENTION_CHUNK", "STRIP_PIXELS"]
