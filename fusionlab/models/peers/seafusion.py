"""SeAFusion (Tang, Yuan, Ma, Information Fusion 82, 2022): a small real-time CNN.

Written from the facts in ``shared/peers/seafusion/SOURCE.md`` and the state-dict listing
(not from the authors' code). Structure, for ``(B, 1, H, W)`` inputs in [0, 1]::

    vi_y --3x3 1->16--> RGBD 16->32 --> RGBD 32->48 --+
    ir   --3x3 1->16--> RGBD 16->32 --> RGBD 32->48 --+-- cat [vi, ir] 96 ch
    96 -3x3-> 64 -3x3-> 32 -3x3-> 16 -3x3-> 1, tanh / 2 + 0.5   (LeakyReLU 0.2 between)

    RGBD(x) = LeakyReLU_0.1( 1x1(dense(x)) + 1x1(|sobel_x(x)| + |sobel_y(x)|) )
    dense(x): x -> cat(x, conv(x)) -> cat(., conv(.))   (two 3x3 conv + LeakyReLU 0.2)

The Sobel kernels are depthwise and were trained, so they come from the weight file. The
decoder's BatchNorm entries are stored but never applied (as in the authors' forward pass);
they are kept as unused buffers so that the published file loads strictly.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import (PeerMethod, cv2_read_gray, Protocol, check_same_size, find_weights, load_state, load_strict, minmax_stretch,
                   read_u8, to_tensor_u8, truncate_u8, ycrcb_float, ycrcb_float_to_rgb)


class _Conv(nn.Module):
    """A conv under the key ``<name>.conv``; ``act`` = LeakyReLU slope or None (linear)."""

    def __init__(self, cin: int, cout: int, k: int = 3, slope: float | None = 0.2):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=k // 2)
        self.slope = slope

    def forward(self, x):
        x = self.conv(x)
        return F.leaky_relu(x, self.slope) if self.slope is not None else x


class _DecoderConv(_Conv):
    """Decoder conv; its stored BatchNorm is loaded but, as in SeAFusion, never applied."""

    def __init__(self, cin: int, cout: int):
        super().__init__(cin, cout)
        self.bn = nn.BatchNorm2d(cout)


class _Sobel(nn.Module):
    """Depthwise gradient magnitude ``|conv_x(x)| + |conv_y(x)|`` with learned 3x3 kernels."""

    def __init__(self, channels: int):
        super().__init__()
        self.convx = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.convy = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)

    def forward(self, x):
        return self.convx(x).abs() + self.convy(x).abs()


class _Dense(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1 = _Conv(c, c)
        self.conv2 = _Conv(2 * c, c)

    def forward(self, x):
        x = torch.cat([x, self.conv1(x)], 1)
        return torch.cat([x, self.conv2(x)], 1)


class _RGBD(nn.Module):
    """Residual gradient dense block: dense branch + Sobel branch, summed."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.dense = _Dense(cin)
        self.convdown = _Conv(3 * cin, cout, k=1, slope=None)
        self.sobelconv = _Sobel(cin)
        self.convup = _Conv(cin, cout, k=1, slope=None)

    def forward(self, x):
        return F.leaky_relu(self.convdown(self.dense(x)) + self.convup(self.sobelconv(x)), 0.1)


class SeAFusionNet(nn.Module):
    """The bare network: ``net(vi_y, ir) -> fused_y`` in (0, 1) (the authors' argument order)."""

    def __init__(self):
        super().__init__()
        self.vis_conv, self.inf_conv = _Conv(1, 16), _Conv(1, 16)
        self.vis_rgbd1, self.inf_rgbd1 = _RGBD(16, 32), _RGBD(16, 32)
        self.vis_rgbd2, self.inf_rgbd2 = _RGBD(32, 48), _RGBD(32, 48)
        self.decode4 = _DecoderConv(96, 64)
        self.decode3 = _DecoderConv(64, 32)
        self.decode2 = _DecoderConv(32, 16)
        self.decode1 = _DecoderConv(16, 1)
        self.decode1.slope = None  # tanh head instead

    def forward(self, vi_y: torch.Tensor, ir: torch.Tensor) -> torch.Tensor:
        v = self.vis_rgbd2(self.vis_rgbd1(self.vis_conv(vi_y)))
        i = self.inf_rgbd2(self.inf_rgbd1(self.inf_conv(ir)))
        x = self.decode2(self.decode3(self.decode4(torch.cat([v, i], 1))))
        return torch.tanh(self.decode1(x)) / 2 + 0.5


class SeAFusion(PeerMethod):
    """SeAFusion with the published weights, behind the fusionlab calling convention.

    Args:
        protocol: test-time pipeline of :meth:`fuse_as_authors` (the network itself is the
            same in both):

            * ``"vif_benchmark"`` (default; reproduces the published ``Results/SeAFusion``):
              VI via PIL RGB, IR via PIL L, both / 255; Y/Cr/Cb with the float formulas,
              each clamped to [0, 1]; fused Y + VI Cr/Cb back to RGB, clamped; min-max
              stretch over the three channels of the image; ``uint8(255 x)`` truncated; RGB PNG.
            * ``"author"`` (the authors' ``test.py``): IR via OpenCV gray; the same without clamping Y/Cr/Cb, and
              the min-max stretch over the image (the script stretches over a batch of up
              to 32 images; here one image is one batch).
        weights: path of ``SeAFusion.pth`` (default: looked up, see :mod:`.base`).
        pretrained: False builds the architecture with random weights (no file needed).
    """

    name = "seafusion"
    paper = "Tang, Yuan, Ma, Information Fusion 82 (2022) 28-42"
    source = ("Checkpoint/SeAFusion/SeAFusion.pth of Linfeng Tang's VIF-Benchmark (copy: https://github.com/ycc568/my-seafusion; "
              "authors: https://github.com/Linfeng-Tang/SeAFusion)")
    FILE = "SeAFusion.pth"
    PROTOCOLS = {
        "vif_benchmark": Protocol("vif_benchmark", "VIF-Benchmark SeAFusion/SeAFusion.py",
                                  "PIL RGB/L; clamped float YCrCb; fused Y + VI CrCb -> RGB; per-image "
                                  "min-max stretch; uint8 truncation; RGB PNG"),
        "author": Protocol("author", "Linfeng-Tang/SeAFusion test.py",
                           "PIL RGB, IR gray; unclamped float YCrCb; fused Y + VI CrCb -> RGB; min-max "
                           "stretch (per image here, per batch there); uint8 truncation; RGB PNG"),
    }

    def __init__(self, protocol: str | None = None, weights: str | None = None, pretrained: bool = True):
        super().__init__(protocol)
        self.net = SeAFusionNet()
        if pretrained:
            path = Path(weights) if weights else find_weights(self.name, self.FILE, self.source)
            load_strict(self.net, load_state(path), path)
            self.weights_path = path
        self.eval()

    def fuse_y(self, ir: torch.Tensor, vi_y: torch.Tensor) -> torch.Tensor:
        return self.net(vi_y, ir)

    def _authors(self, ir_path: Path, vi_path: Path, device: torch.device) -> np.ndarray:
        vi = read_u8(vi_path, "RGB")
        ir = read_u8(ir_path, "L") if self.protocol.name == "vif_benchmark" else cv2_read_gray(ir_path)
        check_same_size(ir, vi, ir_path, vi_path)
        y, cr, cb = ycrcb_float(to_tensor_u8(vi, device), clamp=self.protocol.name == "vif_benchmark")
        fused_y = self.net(y, to_tensor_u8(ir, device))
        rgb = ycrcb_float_to_rgb(fused_y, cr, cb)
        return truncate_u8(minmax_stretch(rgb))
