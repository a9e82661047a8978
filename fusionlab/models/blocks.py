"""Building blocks of the DTPF networks (X-Restormer style), written as the paper defines them.

Every block maps ``(B, C, H, W) -> (B, C, H, W)`` float features (any range) unless noted.

* :class:`LayerNorm2d` - LayerNorm over the channels of every pixel.
* :class:`GatedDconvFFN` - Restormer's gated depth-wise-conv feed-forward network.
* :class:`ChannelAttention` - "transposed" (channel) self-attention, Restormer's MDTA.
* :class:`OverlapWindowAttention` - spatial self-attention in 8x8 windows whose keys/values
  come from overlapping 12x12 windows, with a (query-dependent) relative position bias.
* :class:`TransformerBlock` - channel attention -> FFN -> window attention -> FFN, each
  pre-normed with a residual (X-Restormer).
* :class:`Downsample` / :class:`Upsample` - 3x3 conv + pixel (un)shuffle.

Each ``forward`` below is the literal definition. By default the same functions run through
the CPU kernels of :mod:`fusionlab.models.kernels` instead (exact reformulations: chunked
window attention, residuals added inside GEMMs, no layout copies), which are several times
faster and lighter on memory; ``kernels.use_fast_kernels(False)`` (or the environment variable
``FUSIONLAB_FAST_KERNELS=0``) runs the literal code, and ``tests/test_models.py`` checks
that both agree within 1e-5. The parameters (and checkpoints) are the same either way.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import kernels


# ----------------------------------------------------------------------------- LayerNorm
class LayerNorm2d(nn.Module):
    """Per-pixel LayerNorm of ``(B, C, H, W)`` features (X-Restormer's ``WithBias`` LayerNorm):
    every pixel's C values are normalised to zero mean and unit (biased) variance, then
    scaled and shifted per channel."""

    def __init__(self, dim: int, bias: bool = True, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, C, H, W) -> (B, H, W, C) -> normalise the last dim -> back; both permutes are
        # free views for channels-last activations
        y = F.layer_norm(x.permute(0, 2, 3, 1), self.weight.shape, self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


# ----------------------------------------------------------------------------- FFN
class GatedDconvFFN(nn.Module):
    """Gated-Dconv feed-forward network (Restormer GDFN).

    ``1x1 conv (C -> 2h) -> 3x3 depth-wise conv -> GELU(a) * b -> 1x1 conv (h -> C)`` with
    ``h = int(C * ffn_factor)`` and ``a, b`` the two halves of the 2h channels.
    """

    def __init__(self, dim: int, ffn_factor: float = 2.66, bias: bool = False):
        super().__init__()
        hidden = int(dim * ffn_factor)
        self.project_in = nn.Conv2d(dim, hidden * 2, 1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if kernels.enabled():
            return kernels.gated_ffn(self, x)
        a, b = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(a) * b)


# ----------------------------------------------------------------------------- channel attention
class ChannelAttention(nn.Module):
    """Transposed ("channel") self-attention, Restormer's MDTA.

    Queries/keys/values come from a 1x1 conv followed by a 3x3 depth-wise conv. Attention is
    computed between *channels* (a ``C/heads x C/heads`` map per head) over L2-normalised
    spatial vectors, scaled by a learned per-head temperature, so its cost is linear in
    ``H * W``::

        q, k, v = DWConv3x3(Conv1x1(x))                 each (B, heads, C/heads, H*W)
        A = softmax(normalize(q) normalize(k)^T * temperature)     (B, heads, C/heads, C/heads)
        y = Conv1x1(A v)
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if kernels.enabled():
            return kernels.channel_attention(self, x)
        b, c, h, w = x.shape
        q, k, v = (t.reshape(b, self.heads, c // self.heads, h * w)
                   for t in self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1))
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1) * self.temperature).softmax(dim=-1)
        return self.project_out((attn @ v).reshape(b, c, h, w))


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
        if int(window * overlap) % 2:  # the halo is split equally above/below and left/right
            raise ValueError(f"window={window}, overlap={overlap}: the key window grows by {int(window * overlap)} "
                             "pixels, which must be even (half on each side)")
        self.ow = window + int(window * overlap)
        self.pad = (self.ow - window) // 2
        inner = heads * head_dim
        self.qkv = nn.Conv2d(dim, inner * 3, 1, bias=bias)
        self.project_out = nn.Conv2d(inner, dim, 1, bias=bias)
        scale = head_dim ** -0.5
        self.rel_h = nn.Parameter(torch.randn(2 * self.ow - 1, head_dim) * scale)
        self.rel_w = nn.Parameter(torch.randn(2 * self.ow - 1, head_dim) * scale)
        # rel_idx[x, i]: table row of query row x and key row i (offset i - pad - x, centred)
        x = torch.arange(window)[:, None]
        i = torch.arange(self.ow)[None, :]
        self.register_buffer("rel_idx", i - self.pad - x + self.ow - 1, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if kernels.enabled():
            return kernels.window_attention(self, x)
        b, _, h, w = x.shape
        ws, ow, nh, d = self.window, self.ow, self.heads, self.head_dim
        # zero-pad q/k/v (not x) to whole windows: padded keys are zeros, like the border
        qkv = F.pad(self.qkv(x), (0, (-w) % ws, 0, (-h) % ws))
        H, W = qkv.shape[-2:]
        q, k, v = qkv.chunk(3, dim=1)  # (B, heads * d, H, W) each
        # queries: non-overlapping ws x ws windows -> (B * windows, heads, ws, ws, d)
        q = q.reshape(b, nh, d, H // ws, ws, W // ws, ws).permute(0, 3, 5, 1, 4, 6, 2)
        q = q.reshape(-1, nh, ws, ws, d) * d ** -0.5
        # keys/values: the ow x ow window around each query window (zero padding outside)
        k, v = (F.unfold(t, ow, padding=self.pad, stride=ws).reshape(b, nh, d, ow * ow, -1)
                .permute(0, 4, 1, 3, 2).reshape(-1, nh, ow * ow, d) for t in (k, v))
        logits = q.flatten(2, 3) @ k.transpose(-2, -1)  # (B * windows, heads, ws*ws, ow*ow)
        # relative position: query (x, y) and key (i, j) add q.rel_h[i - x + c] + q.rel_w[j - y + c]
        bias_h = torch.einsum("nhxyd,xid->nhxyi", q, self.rel_h[self.rel_idx])  # (.., ws, ws, ow)
        bias_w = torch.einsum("nhxyd,yjd->nhxyj", q, self.rel_w[self.rel_idx])
        bias = bias_h[..., :, None] + bias_w[..., None, :]  # (.., ws, ws, ow, ow)
        attn = (logits + bias.reshape(logits.shape)).softmax(dim=-1)
        out = attn @ v  # (B * windows, heads, ws*ws, d)
        out = out.reshape(b, H // ws, W // ws, nh, ws, ws, d).permute(0, 3, 6, 1, 4, 2, 5)
        out = out.reshape(b, nh * d, H, W)[..., :h, :w]
        return self.project_out(out)


def overlap_window_attention_reference(attn: OverlapWindowAttention, x: torch.Tensor) -> torch.Tensor:
    """Window-by-window loop version of :class:`OverlapWindowAttention` (slow; the most
    literal reading of the definition, for tests)."""
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
        if kernels.enabled():
            return kernels.transformer_block(self, x)
        x = x + self.channel_attn(self.norm1(x))
        x = x + self.channel_ffn(self.norm2(x))
        x = x + self.spatial_attn(self.norm3(x))
        x = x + self.spatial_ffn(self.norm4(x))
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


__all__ = ["LayerNorm2d", "GatedDconvFFN", "ChannelAttention", "OverlapWindowAttention",
           "overlap_window_attention_reference", "TransformerBlock", "Downsample", "Upsample", "make_blocks"]
