"""Building blocks of the DTPF networks (X-Restormer style), written for CPU efficiency.

Every block maps ``(B, C, H, W) -> (B, C, H, W)`` float features (any range) unless noted.

* :class:`LayerNorm2d` - LayerNorm over the channels of every pixel.
* :class:`GatedDconvFFN` - Restormer's gated depth-wise-conv feed-forward network.
* :class:`ChannelAttention` - "transposed" (channel) self-attention, Restormer's MDTA.
* :class:`OverlapWindowAttention` - spatial self-attention in 8x8 windows whose keys/values
  come from overlapping 12x12 windows, with a (query-dependent) relative position bias.
* :class:`TransformerBlock` - channel attention -> FFN -> window attention -> FFN, each
  pre-normed with a residual (X-Restormer).
* :class:`Downsample` / :class:`Upsample` - 3x3 conv + pixel (un)shuffle.

Why it is fast on a CPU (what the reference implementation loses time on). Activations are
kept channels-last, so that ``(B, C, H, W)`` is a free view of a ``(B*H*W, C)`` matrix, and
memory traffic - not arithmetic - is what small widths are limited by on a CPU:

* LayerNorm runs ``F.layer_norm`` on that view: no permute copies.
* 1x1 convs run as one GEMM; the projection that ends each residual branch adds the
  residual inside the GEMM (``addmm``), saving a full read+write pass per branch, and
  plain 1x1 convs use oneDNN directly at inference (faster than torch's default for 1x1).
* Channel attention never reshapes the ``(B, 3C, H, W)`` map: the Gram matrix ``q^T k`` is
  one GEMM over the strided view, the L2 normalisation is applied to the small ``C x C``
  map instead of the big ``q``/``k``, and the output projection is folded into the
  attention (``y = x + v (W_out A)^T``, one GEMM over the map instead of two).
* Window attention gathers queries, overlapping keys/values and the relative-position bias
  of a few dozen windows at a time into cache-sized buffers and runs the fused
  ``scaled_dot_product_attention`` kernel on them; see :class:`OverlapWindowAttention`.

All of these are exact reformulations (same parameters, same function up to float rounding);
``tests/test_models.py`` checks them against the literal definitions.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


# ----------------------------------------------------------------------------- 1x1 convs
def _as_rows(x: torch.Tensor) -> torch.Tensor | None:
    """``(B, C, H, W)`` channels-last -> ``(B*H*W, C)`` view, or None if not channels-last dense."""
    y = x.permute(0, 2, 3, 1)
    return y.reshape(-1, x.shape[1]) if y.is_contiguous() else None


def pointwise(x: torch.Tensor, conv: nn.Conv2d, residual: torch.Tensor | None = None) -> torch.Tensor:
    """``conv(x) (+ residual)`` for a 1x1 ``conv``, fast on channels-last CPU tensors.

    With a residual the sum is computed inside the GEMM (``addmm``); without one, inference
    calls oneDNN's convolution directly (torch routes 1x1 convs to a slower generic GEMM
    path). Falls back to ``conv(x) + residual`` for any other layout/device/dtype.
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


_MKLDNN = torch.backends.mkldnn.is_available() and hasattr(torch.ops.aten, "mkldnn_convolution")


# ----------------------------------------------------------------------------- LayerNorm
def layer_norm_2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                  eps: float = 1e-5) -> torch.Tensor:
    """LayerNorm over the channel dim of ``(B, C, H, W)``; biased variance, like ``nn.LayerNorm``.

    The permutes are views; on a channels-last tensor ``F.layer_norm`` reads contiguous
    memory and no copy is made (on a contiguous NCHW tensor torch copies once).
    """
    y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), weight, bias, eps)
    return y.permute(0, 3, 1, 2)


class LayerNorm2d(nn.Module):
    """Per-pixel LayerNorm of ``(B, C, H, W)`` features (X-Restormer's ``WithBias`` LayerNorm)."""

    def __init__(self, dim: int, bias: bool = True, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return layer_norm_2d(x, self.weight, self.bias, self.eps)


# ----------------------------------------------------------------------------- FFN
class GatedDconvFFN(nn.Module):
    """Gated-Dconv feed-forward network (Restormer GDFN).

    ``1x1 conv (C -> 2h) -> 3x3 depth-wise conv -> GELU(a) * b -> 1x1 conv (h -> C)`` with
    ``h = int(C * ffn_factor)``.
    """

    def __init__(self, dim: int, ffn_factor: float = 2.66, bias: bool = False):
        super().__init__()
        hidden = int(dim * ffn_factor)
        self.project_in = nn.Conv2d(dim, hidden * 2, 1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=bias)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, C, H, W) -> (B, C, H, W)``; ``residual`` (same shape) is added to the output."""
        a, b = self.dwconv(pointwise(x, self.project_in)).chunk(2, dim=1)
        return pointwise(F.gelu(a) * b, self.project_out, residual)


# ----------------------------------------------------------------------------- channel attention
class ChannelAttention(nn.Module):
    """Transposed ("channel") self-attention, Restormer's MDTA.

    Queries/keys/values come from a 1x1 conv followed by a 3x3 depth-wise conv. Attention is
    computed between *channels* (a ``C/heads x C/heads`` map per head) over L2-normalised
    spatial vectors, scaled by a learned per-head temperature, so its cost is linear in
    ``H * W``.
    """

    def __init__(self, dim: int, heads: int, bias: bool = False):
        super().__init__()
        if dim % heads:
            raise ValueError(f"channel attention: dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, 1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, 3, padding=1, groups=dim * 3, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=bias)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, C, H, W) -> (B, C, H, W)``; ``residual`` (same shape) is added to the output.

        Computed as ``y = residual + v (W_out A)^T`` with ``A`` the block-diagonal
        ``C x C`` attention built from the Gram matrix ``q^T k`` divided by the norms of q
        and k (= ``normalize(q) normalize(k)^T``): the big map is read by two GEMMs and a
        norm, never reshaped, normalised or projected on its own.
        """
        b, c, h, w = x.shape
        nh, hd = self.heads, c // self.heads
        qkv = self.qkv_dwconv(pointwise(x, self.qkv)).permute(0, 2, 3, 1)
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
        attn = (gram / (qn * kn) * self.temperature).softmax(dim=-1)
        # block-diagonal (B, C, C) attention, folded into the output projection
        eye = torch.eye(nh, dtype=attn.dtype, device=attn.device)
        attn = torch.einsum("bhij,hg->bhigj", attn, eye).reshape(b, c, c)
        proj = self.project_out.weight.view(c, c) @ attn  # (B, C, C)
        if residual is not None and (res := _as_rows(residual)) is not None:
            y = torch.baddbmm(res.view(b, h * w, c), v, proj.transpose(1, 2))
            residual = None
        else:
            y = v @ proj.transpose(1, 2)
        if self.project_out.bias is not None:
            y = y + self.project_out.bias
        y = y.view(b, h, w, c).permute(0, 3, 1, 2)
        return y if residual is None else y + residual


# ----------------------------------------------------------------------------- window attention
class OverlapWindowAttention(nn.Module):
    """Overlapping-window spatial self-attention with relative position bias (X-Restormer OCA).

    The image is split into ``window x window`` query windows; each attends to the keys and
    values of the enclosing ``ow x ow`` window, ``ow = window + int(window * overlap)``
    (8 -> 12), zero-padded at the border. The attention logit of query ``q`` at row/column
    ``(x, y)`` of its window and key ``k`` at row/column ``(i, j)`` of the overlapping window is::

        q.k / sqrt(d)  +  (q / sqrt(d)) . rel_h[i - x + c]  +  (q / sqrt(d)) . rel_w[j - y + c]

    with ``c`` centring the offset (HaloNet-style query-dependent relative position).

    Args:
        dim: channels ``C`` of the input ``(B, C, H, W)``.
        heads: attention heads; each has ``head_dim`` channels (inner width = heads * head_dim).
        window: query window size; ``H`` and ``W`` need not be multiples (features are
            zero-padded to the next multiple and cropped back, exactly like the border).
        overlap: overlap ratio of the key window.
    """

    def __init__(self, dim: int, heads: int, head_dim: int = 16, window: int = 8,
                 overlap: float = 0.5, bias: bool = False):
        super().__init__()
        self.heads, self.head_dim, self.window = heads, head_dim, window
        self.ow = window + int(window * overlap)
        self.pad = (self.ow - window) // 2
        inner = heads * head_dim
        self.qkv = nn.Conv2d(dim, inner * 3, 1, bias=bias)
        self.project_out = nn.Conv2d(inner, dim, 1, bias=bias)
        scale = head_dim ** -0.5
        self.rel_h = nn.Parameter(torch.randn(2 * self.ow - 1, head_dim) * scale)
        self.rel_w = nn.Parameter(torch.randn(2 * self.ow - 1, head_dim) * scale)
        # rel_idx[x, i]: table row for query row x and key row i (offset i - pad - x, centred);
        # the fast path reads the same entries through strided views (see _rel_logits)
        x = torch.arange(window)[:, None]
        i = torch.arange(self.ow)[None, :]
        self.register_buffer("rel_idx", i - self.pad - x + self.ow - 1, persistent=False)
        # one-hot row and column codes of the ow*ow keys (training path, see _attend_train)
        eye = torch.eye(self.ow)
        codes = torch.cat([eye.repeat_interleave(self.ow, 0), eye.repeat(self.ow, 1)], dim=1)
        self.register_buffer("key_codes", codes, persistent=False)  # (ow*ow, 2*ow)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, C, H, W) -> (B, C, H, W)``; ``residual`` (same shape) is added to the output."""
        b, _, h, w = x.shape
        ws, nh, d, p = self.window, self.heads, self.head_dim, self.pad
        inner = nh * d
        # work in (B, H, W, C): a free view of channels-last activations
        qkv = pointwise(x, self.qkv).permute(0, 2, 3, 1)
        ph, pw = (-h) % ws, (-w) % ws
        if ph or pw:  # zero k/v beyond the image, like the border padding of the key windows
            qkv = F.pad(qkv, (0, 0, 0, pw, 0, ph))
        q = qkv[..., :inner]
        kv = _zero_border_pad(qkv[..., inner:], p)  # (B, H+2p, W+2p, 2*inner)
        if torch.is_grad_enabled() and (x.requires_grad or self.rel_h.requires_grad):
            out = self._attend_train(q, kv)
        else:
            out = self._attend_chunked(q, kv)
        if ph or pw:
            out = out[:, :h, :w]
        return pointwise(out.permute(0, 3, 1, 2), self.project_out, residual)  # NCHW view, channels-last

    # -- helpers ---------------------------------------------------------------------------
    def _key_windows(self, kv: torch.Tensor) -> torch.Tensor:
        """``(B, gh, gw, ow, ow, 2*inner)`` strided view of the overlapping key/value windows."""
        ws, ow = self.window, self.ow
        b, hp, wp, c = kv.shape
        sb, sh, sw, sc = kv.stride()
        return kv.as_strided((b, (hp - ow) // ws + 1, (wp - ow) // ws + 1, ow, ow, c),
                             (sb, ws * sh, ws * sw, sh, sw, sc))

    def _rel_logits(self, q: torch.Tensor, tables: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Relative position logits ``(n, heads, ws, ws, ow)`` (rows, columns) of queries
        ``q (n, heads, ws*ws, d)``, scaled by ``d ** -0.5`` like the content logits.

        One matmul against both 23-entry tables, then the HaloNet "relative to absolute"
        shift as a strided *view*: entry ``(x, y, i)`` of the row logits is table row
        ``i - pad - x + ow - 1`` of query ``(x, y)``, i.e. the x-stride shrinks by one.
        """
        n, nh, L, d = q.shape
        ws, ow, p = self.window, self.ow, self.pad
        t = 2 * ow - 1
        if tables is None:
            tables = self._rel_tables()

        logits = (q @ tables.t()).view(n, nh, ws, ws, 2 * t)  # contiguous
        s0, s1, sx, sy, _ = logits.stride()
        off = logits.storage_offset() + ow - 1 - p
        rel_h = logits.as_strided((n, nh, ws, ws, ow), (s0, s1, sx - 1, sy, 1), off)
        rel_w = logits.as_strided((n, nh, ws, ws, ow), (s0, s1, sx, sy - 1, 1), off + t)
        return rel_h, rel_w

    def _rel_tables(self) -> torch.Tensor:
        """Both relative-position tables stacked and pre-scaled: ``(2 * (2 ow - 1), d)``."""
        return torch.cat([self.rel_h, self.rel_w]) * self.head_dim ** -0.5

    def _attend_chunked(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        """Inference: ``q (B, H, W, inner)``, padded ``kv`` -> ``(B, H, W, inner)``.

        Windows are processed a few dozen at a time: their queries, keys/values and the
        ``(chunk, heads, 64, 144)`` bias mask are gathered into cache-sized buffers and used at
        once by the fused SDPA kernel (the bias goes in as ``attn_mask``), and the result is
        written straight into the output map. Nothing of size ``windows x 144`` is ever
        materialised in full, which is what made the reference code slow and memory-hungry.
        """
        ws, ow, nh, d = self.window, self.ow, self.heads, self.head_dim
        b, H, W, inner = q.shape
        gh, gw = H // ws, W // ws
        L, S = ws * ws, ow * ow
        windows = self._key_windows(kv)
        out = q.new_empty(b, H, W, inner)
        # every op below is an OpenMP parallel region ending in a barrier: with several
        # threads, fewer and bigger chunks are faster (measured: 1 thread 64, 2 threads 256+)
        threads = torch.get_num_threads()
        per = ATTENTION_CHUNK if threads == 1 else min(8, 4 * threads) * ATTENTION_CHUNK
        chunk = max(1, per // nh)
        # a chunk is several whole rows of windows, or a piece of one row when rows are long
        nrows, ncols = (max(1, chunk // gw), gw) if gw <= chunk else (1, chunk)
        mask_buf = q.new_empty(min(nrows * ncols, gh * gw), nh, ws, ws, ow, ow)
        scale = d ** -0.5
        tables = self._rel_tables()
        for bi in range(b):
            for r0 in range(0, gh, nrows):
                r1 = min(gh, r0 + nrows)
                for c0 in range(0, gw, ncols):
                    c1 = min(gw, c0 + ncols)
                    nr, nc = r1 - r0, c1 - c0
                    g = nr * nc
                    rows, cols = slice(r0 * ws, r1 * ws), slice(c0 * ws, c1 * ws)
                    qc = (q[bi, rows, cols].reshape(nr, ws, nc, ws, nh, d).permute(0, 2, 4, 1, 3, 5)
                          .reshape(g, nh, L, d))
                    kvc = windows[bi, r0:r1, c0:c1].reshape(g, S, 2, nh, d)
                    rel_h, rel_w = self._rel_logits(qc, tables)
                    mask = torch.add(rel_h[..., :, None], rel_w[..., None, :], out=mask_buf[:g]).view(g, nh, L, S)
                    o = F.scaled_dot_product_attention(qc, kvc[:, :, 0].transpose(1, 2), kvc[:, :, 1].transpose(1, 2),
                                                       attn_mask=mask, scale=scale)
                    # SDPA returns (g, L, heads, d) memory: one strided copy into the map
                    out[bi, rows, cols].view(nr, ws, nc, ws, inner).copy_(
                        o.transpose(1, 2).reshape(nr, nc, ws, ws, inner).permute(0, 2, 1, 3, 4))
        return out

    def _attend_train(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        """Training (autograd): all windows at once, bias folded into the attention product.

        A bias mask that needs a gradient sends SDPA to its slow unfused path, so the
        relative logits are appended to the queries and one-hot row/column codes to the keys
        (``[q/sqrt(d), rel_h, rel_w] . [k, onehot(i), onehot(j)]`` = the biased logit), with
        ``v`` zero-padded to the same width: the fused kernel and its backward stay in use.
        """
        ws, ow, nh, d = self.window, self.ow, self.heads, self.head_dim
        b, H, W, inner = q.shape
        gh, gw = H // ws, W // ws
        n, L, S = b * gh * gw, ws * ws, ow * ow
        q = q.reshape(b, gh, ws, gw, ws, inner).permute(0, 1, 3, 2, 4, 5).reshape(n, L, nh, d).transpose(1, 2)
        kv = self._key_windows(kv).reshape(n, S, 2, nh, d)
        k, v = kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2)
        rel_h, rel_w = self._rel_logits(q)
        q_aug = torch.cat([q * d ** -0.5, rel_h.reshape(n, nh, L, ow), rel_w.reshape(n, nh, L, ow)], dim=-1)
        k_aug = torch.cat([k, self.key_codes.to(k.dtype).expand(n, nh, S, 2 * ow)], dim=-1)
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


#: windows per fused-attention call at inference with one thread (divided by the heads,
#: x4 per thread with more): keeps the bias mask of a chunk at 2.4-19 MB, in the CPU caches,
#: instead of ~350 MB for the whole 480x640 map.
ATTENTION_CHUNK = 64


def overlap_window_attention_reference(attn: OverlapWindowAttention, x: torch.Tensor) -> torch.Tensor:
    """Slow, literal version of :meth:`OverlapWindowAttention.forward` (explicit bias tensor,
    softmax, no SDPA) - the definition the fast path is tested against."""
    b, _, h, w = x.shape
    ws, ow, nh, d = attn.window, attn.ow, attn.heads, attn.head_dim
    inner = nh * d
    qkv = F.pad(attn.qkv(x), (0, (-w) % ws, 0, (-h) % ws))
    H, W = qkv.shape[-2:]
    q, k, v = qkv.split(inner, dim=1)
    out = torch.zeros(b, inner, H, W, dtype=x.dtype)
    kp, vp = F.pad(k, (attn.pad,) * 4), F.pad(v, (attn.pad,) * 4)
    xs, ys = torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")
    i_s, j_s = torch.meshgrid(torch.arange(ow), torch.arange(ow), indexing="ij")
    bias_idx_h = (i_s.reshape(1, -1) - attn.pad - xs.reshape(-1, 1) + ow - 1)  # (ws*ws, ow*ow)
    bias_idx_w = (j_s.reshape(1, -1) - attn.pad - ys.reshape(-1, 1) + ow - 1)
    for r in range(0, H, ws):
        for c in range(0, W, ws):
            qw = q[:, :, r:r + ws, c:c + ws].reshape(b, nh, d, -1).transpose(-1, -2) * d ** -0.5
            kw = kp[:, :, r:r + ow, c:c + ow].reshape(b, nh, d, -1).transpose(-1, -2)
            vw = vp[:, :, r:r + ow, c:c + ow].reshape(b, nh, d, -1).transpose(-1, -2)
            logits = qw @ kw.transpose(-1, -2)
            logits = logits + (qw[..., None, :] * attn.rel_h[bias_idx_h]).sum(-1)
            logits = logits + (qw[..., None, :] * attn.rel_w[bias_idx_w]).sum(-1)
            o = logits.softmax(-1) @ vw  # (b, nh, ws*ws, d)
            out[:, :, r:r + ws, c:c + ws] = o.transpose(-1, -2).reshape(b, inner, ws, ws)
    return attn.project_out(out[:, :, :h, :w])


# ----------------------------------------------------------------------------- block
class TransformerBlock(nn.Module):
    """X-Restormer block: ``x += CA(LN(x)); x += FFN(LN(x)); x += SA(LN(x)); x += FFN(LN(x))``.

    Args:
        dim: channels. heads: channel-attention heads. spatial_heads / head_dim / window /
        overlap: window-attention settings. ffn_factor: FFN expansion.
    """

    def __init__(self, dim: int, heads: int, spatial_heads: int, head_dim: int = 16,
                 window: int = 8, overlap: float = 0.5, ffn_factor: float = 2.66, bias: bool = False):
        super().__init__()
        self.norm1, self.norm2 = LayerNorm2d(dim), LayerNorm2d(dim)
        self.norm3, self.norm4 = LayerNorm2d(dim), LayerNorm2d(dim)
        self.channel_attn = ChannelAttention(dim, heads, bias)
        self.channel_ffn = GatedDconvFFN(dim, ffn_factor, bias)
        self.spatial_attn = OverlapWindowAttention(dim, spatial_heads, head_dim, window, overlap, bias)
        self.spatial_ffn = GatedDconvFFN(dim, ffn_factor, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # each branch adds its residual inside its last GEMM (same as x = x + f(norm(x)))
        x = self.channel_attn(self.norm1(x), residual=x)
        x = self.channel_ffn(self.norm2(x), residual=x)
        x = self.spatial_attn(self.norm3(x), residual=x)
        x = self.spatial_ffn(self.norm4(x), residual=x)
        return x


# ----------------------------------------------------------------------------- resampling
class Downsample(nn.Module):
    """``(B, C, H, W) -> (B, 2C, H/2, W/2)``: 3x3 conv to C/2 channels, then pixel-unshuffle."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim // 2, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_unshuffle(self.conv(x), 2)


class Upsample(nn.Module):
    """``(B, C, H, W) -> (B, C/2, 2H, 2W)``: 3x3 conv to 2C channels, then pixel-shuffle."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv = nn.Conv2d(dim, dim * 2, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.conv(x), 2)


def make_blocks(n: int, dim: int, heads: int, spatial_heads: int, head_dim: int, window: int,
                overlap: float, ffn_factor: float) -> nn.Sequential:
    """``n`` :class:`TransformerBlock` s in a row (an empty Sequential is the identity)."""
    return nn.Sequential(*[TransformerBlock(dim, heads, spatial_heads, head_dim, window, overlap, ffn_factor)
                           for _ in range(n)])


__all__ = ["LayerNorm2d", "layer_norm_2d", "GatedDconvFFN", "ChannelAttention", "OverlapWindowAttention",
           "overlap_window_attention_reference", "TransformerBlock", "Downsample", "Upsample", "make_blocks"]
