"""Fusion modules: how the infrared and visible feature streams become one, at every level.

All five rows of the paper's Table 5, in one registry. Every module is built as
``FUSION_MODULES.build(name, dim=C, ...)`` with the arguments its constructor names (an
unknown argument is a ConfigError, not silently ignored; :class:`~.net.FusionNet` offers the
network's attention settings and each module takes those it uses) and called as
``module(f_ir, f_vi) -> fused`` with ``f_ir``, ``f_vi`` and ``fused`` all ``(B, C, H, W)``.

=============================  ===============================================================
name                           what it does
=============================  ===============================================================
``scfm``                       the paper's Spatial-Channel Cross Fusion Module (the default)
``concat_conv1x1``             concatenate, 1x1 conv (Table 5 "Cat & 1x1 conv")
``unlearned_weight_attention`` parameter-free per-pixel softmax weights from feature activity
``dynamic_weight_conv``        two global weights predicted from pooled features, then 3x3 conv
``multiscale_conv``            parallel 1x1 / 3x3 / 5x5 convs of the concatenation, merged
=============================  ===============================================================
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..registry import Registry
from .blocks import ChannelAttention, OverlapWindowAttention

FUSION_MODULES = Registry("fusion module")


@FUSION_MODULES.register("scfm")
class SCFM(nn.Module):
    """Spatial-Channel Cross Fusion Module (DTPF paper, eq. 5-7), the default.

    Cross stage (``cross=True``): each stream attends to itself spatially (window
    self-attention, "SSAB") and to the *other* stream's channels (transposed channel
    attention, "TSAB"); a 1x1 conv merges the two views::

        F_vi' = Conv1x1([SSAB(F_vi), TSAB(F_ir)])
        F_ir' = Conv1x1([SSAB(F_ir), TSAB(F_vi)])

    Joint stage: the concatenation ``X = [F_vi', F_ir']`` (``2C`` channels) goes through
    channel attention and window attention in parallel and a 3x3 conv back to ``C``::

        F = Conv3x3(CA(X) + SA(X))

    The paper writes the last step as ``F_vi' + F_ir'``; its parameter count (40.3 M) and
    the public reference code use this joint attention stage, at every level, and run the
    cross stage at the deepest level only (``FusionNetConfig.cross_levels``).

    Args:
        dim: channels ``C`` of each stream. channel_heads: heads of the channel attentions
            (8 when ``C`` allows, as the reference). spatial_heads / head_dim / window /
            overlap: window-attention settings. cross: run the cross stage.
    """

    def __init__(self, dim: int, channel_heads: int = 8, spatial_heads: int = 4, head_dim: int = 16,
                 window: int = 8, overlap: float = 0.5, cross: bool = True):
        super().__init__()
        self.cross = cross
        if cross:
            heads = 8 if dim % 8 == 0 else channel_heads
            self.spatial_ir = OverlapWindowAttention(dim, spatial_heads, head_dim, window, overlap)
            self.spatial_vi = OverlapWindowAttention(dim, spatial_heads, head_dim, window, overlap)
            self.channel_ir = ChannelAttention(dim, heads)
            self.channel_vi = ChannelAttention(dim, heads)
            self.merge_ir = nn.Conv2d(2 * dim, dim, 1, bias=False)
            self.merge_vi = nn.Conv2d(2 * dim, dim, 1, bias=False)
        self.joint_channel = ChannelAttention(2 * dim, 8 if (2 * dim) % 8 == 0 else channel_heads)
        self.joint_spatial = OverlapWindowAttention(2 * dim, spatial_heads, head_dim, window, overlap)
        self.out = nn.Conv2d(2 * dim, dim, 3, padding=1)

    def forward(self, f_ir: torch.Tensor, f_vi: torch.Tensor) -> torch.Tensor:
        if self.cross:
            vi = self.merge_vi(torch.cat([self.spatial_vi(f_vi), self.channel_ir(f_ir)], dim=1))
            ir = self.merge_ir(torch.cat([self.spatial_ir(f_ir), self.channel_vi(f_vi)], dim=1))
            f_ir, f_vi = ir, vi
        x = torch.cat([f_vi, f_ir], dim=1)
        return self.out(self.joint_channel(x) + self.joint_spatial(x))


@FUSION_MODULES.register("concat_conv1x1")
class ConcatConv1x1(nn.Module):
    """Concatenate the two streams and mix them with one 1x1 conv (``2C -> C``)."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv = nn.Conv2d(2 * dim, dim, 1)

    def forward(self, f_ir: torch.Tensor, f_vi: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([f_ir, f_vi], dim=1))


@FUSION_MODULES.register("unlearned_weight_attention")
class UnlearnedWeightAttention(nn.Module):
    """Parameter-free attention: per-pixel weights from each stream's activity.

    The activity of a stream at a pixel is the mean absolute value of its features; a
    softmax over the two streams turns the activities into weights ``w_ir + w_vi = 1`` and
    the output is ``w_ir * F_ir + w_vi * F_vi`` (no learned parameters, as in Table 5's
    "unlearned weight attention" row).
    """

    def __init__(self, dim: int):
        super().__init__()

    def forward(self, f_ir: torch.Tensor, f_vi: torch.Tensor) -> torch.Tensor:
        activity = torch.stack([f_ir.abs().mean(1), f_vi.abs().mean(1)], dim=1)  # (B, 2, H, W)
        w = activity.softmax(dim=1)
        return w[:, :1] * f_ir + w[:, 1:] * f_vi


@FUSION_MODULES.register("dynamic_weight_conv")
class DynamicWeightConv(nn.Module):
    """Input-dependent global weighting: a small MLP on the globally pooled concatenation
    predicts two softmax weights (one per stream), the weighted sum goes through a 3x3 conv."""

    def __init__(self, dim: int):
        super().__init__()
        self.weight_net = nn.Sequential(nn.Conv2d(2 * dim, 2 * dim, 1), nn.ReLU(inplace=True),
                                        nn.Conv2d(2 * dim, 2, 1))
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, f_ir: torch.Tensor, f_vi: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([f_ir, f_vi], dim=1).mean(dim=(2, 3), keepdim=True)
        w = self.weight_net(pooled).softmax(dim=1)  # (B, 2, 1, 1)
        return self.conv(w[:, :1] * f_ir + w[:, 1:] * f_vi)


@FUSION_MODULES.register("multiscale_conv")
class MultiscaleConv(nn.Module):
    """Multi-scale convolution: 1x1, 3x3 and 5x5 convs (``2C -> C`` each, ReLU) of the
    concatenated streams see different context sizes; a 1x1 conv merges the three."""

    def __init__(self, dim: int):
        super().__init__()
        self.branches = nn.ModuleList(nn.Conv2d(2 * dim, dim, k, padding=k // 2) for k in (1, 3, 5))
        self.merge = nn.Conv2d(3 * dim, dim, 1)

    def forward(self, f_ir: torch.Tensor, f_vi: torch.Tensor) -> torch.Tensor:
        x = torch.cat([f_ir, f_vi], dim=1)
        return self.merge(torch.cat([F.relu(b(x)) for b in self.branches], dim=1))


__all__ = ["FUSION_MODULES", "SCFM", "ConcatConv1x1", "UnlearnedWeightAttention", "DynamicWeightConv",
           "MultiscaleConv"]
