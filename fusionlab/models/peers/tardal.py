"""TarDAL (Liu et al., CVPR 2022): the fusion generator of the target-aware dual adversarial
network, with its three published weight files.

Written from ``shared/peers/tardal/SOURCE.md`` and the state-dict listing. ``Generator(dim=32,
depth=3)``, for 1-channel gray IR and VI in [0, 1]::

    cat [ir, vi] (2 ch) -> 3x3 conv 2->32 -> BN -> ReLU                    (encoder)
    dense x3: x = cat(x, ReLU(BN(3x3 conv(x) -> 32)))   32 -> 64 -> 96 -> 128 ch
    3x3 128->128 ReLU; 128->64 BN ReLU; 64->32 BN ReLU; 32->1 tanh          (fuse)

All convolutions are 3x3, stride 1, zero padding 1. The output is tanh, clipped to [0, 1].

BatchNorm mode is part of each weight file's test recipe (author README): ``tardal.pt`` runs
WITHOUT ``--eval``, so its BatchNorm layers normalise with the statistics of the single test
image (per channel over H x W, i.e. instance normalisation with the BN affine weights);
``tardal+.pt`` and ``tardal++.pt`` run with ``--eval`` (stored running statistics).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ...errors import ConfigError
from .base import (PeerMethod, Protocol, check_same_size, cv2_gray, cv2_read_gray, cv2_ycrcb, cv2_ycrcb_to_rgb,
                   find_weights, load_state, load_strict, read_u8, to_tensor_u8, truncate_u8)

VARIANTS = {
    "tardal": "tardal.pt",      # "optimized for human vision (default)"
    "tardal+": "tardal+.pt",    # "optimized for object detection"
    "tardal++": "tardal++.pt",  # "optimal solution for joint human vision and detection accuracy"
}


class _BatchNorm(nn.BatchNorm2d):
    """BatchNorm that can normalise each image with its own statistics (train-mode BN of a
    batch of one, without touching the running statistics)."""

    per_image_stats = False

    def forward(self, x):
        if self.per_image_stats:
            return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)
        return super().forward(x)


def _block(cin: int, cout: int, bn: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, 3, padding=1)]
    if bn:
        layers.append(_BatchNorm(cout))
    layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class TarDALGenerator(nn.Module):
    """The bare generator: ``net(ir, vi) -> fused`` in (-1, 1) (tanh)."""

    def __init__(self, dim: int = 32, depth: int = 3):
        super().__init__()
        self.encoder = _block(2, dim)
        self.dense = nn.ModuleList(_block(dim * (i + 1), dim) for i in range(depth))
        c = dim * (depth + 1)
        self.fuse = nn.Sequential(_block(c, c, bn=False), _block(c, c // 2), _block(c // 2, c // 4),
                                  nn.Sequential(nn.Conv2d(c // 4, 1, 3, padding=1), nn.Tanh()))

    def forward(self, ir: torch.Tensor, vi: torch.Tensor) -> torch.Tensor:
        x = self.encoder(torch.cat([ir, vi], 1))
        for layer in self.dense:
            x = torch.cat([x, layer(x)], 1)
        return self.fuse(x)


class TarDAL(PeerMethod):
    """TarDAL's generator with published weights, behind the fusionlab calling convention.

    Args:
        variant: ``"tardal"`` (default; the author README's default, "optimized for human
            vision"), ``"tardal+"`` ("for object detection") or ``"tardal++"`` (joint; the file
            VIF-Benchmark uses). In eval mode ``tardal+``/``tardal++`` give much darker images
            than ``tardal`` on MSRS (mean gray about 0.06 vs 0.37 on a day scene).
        protocol:

            * ``"author"`` (default; the author README's ``fuse.py --color`` commands): IR read
              as OpenCV gray, VI as OpenCV colour -> BGR2GRAY, both / 255; BatchNorm with the
              image's own statistics for ``tardal`` (no ``--eval``), running statistics for
              ``tardal+``/``tardal++``; output clipped to [0, 1], ``uint8(255 x)`` truncated,
              recoloured with the visible image's OpenCV YCrCb chroma; colour PNG.
            * ``"vif_benchmark"``: the same with ``--eval`` for every variant. That script also
              runs in FP16 on a GPU; here it runs in FP32 (differences of about one gray level).
        bn_image_stats: override the BatchNorm mode (True: per-image statistics).
        weights: path of the ``.pt`` file. pretrained: False = random weights.
    """

    name = "tardal"
    paper = "Liu, Fan, Huang, Wu, Liu, Zhong, Luo, CVPR 2022, 5802-5811"
    source = "https://github.com/JinyuanLiu-CV/TarDAL (weights/tardal.pt, tardal+.pt, tardal++.pt; first code version)"
    PROTOCOLS = {
        "author": Protocol("author", "JinyuanLiu-CV/TarDAL fuse.py --color (README commands)",
                           "OpenCV gray IR / BGR2GRAY VI; BN per-image statistics for tardal.pt, running "
                           "for tardal+/++; clip, uint8 truncation; VI YCrCb chroma; colour PNG"),
        "vif_benchmark": Protocol("vif_benchmark", "VIF-Benchmark TarDAL/TarDAL.py (eval; FP16 there, FP32 here)",
                                  "as 'author' with running BN statistics for every variant"),
    }
    DEFAULT_PROTOCOL = "author"

    def __init__(self, variant: str = "tardal", protocol: str | None = None, bn_image_stats: bool | None = None,
                 weights: str | None = None, pretrained: bool = True):
        super().__init__(protocol)
        if variant not in VARIANTS:
            raise ConfigError(f"tardal: unknown variant {variant!r} (known: {', '.join(VARIANTS)})")
        self.variant = variant
        self.net = TarDALGenerator()
        if bn_image_stats is None:
            bn_image_stats = self.protocol.name == "author" and variant == "tardal"
        self.bn_image_stats = bool(bn_image_stats)
        for m in self.net.modules():
            if isinstance(m, _BatchNorm):
                m.per_image_stats = self.bn_image_stats
        if pretrained:
            path = Path(weights) if weights else find_weights(self.name, VARIANTS[variant], self.source)
            load_strict(self.net, load_state(path), path)
            self.weights_path = path
        self.eval()

    def fuse_y(self, ir: torch.Tensor, vi_y: torch.Tensor) -> torch.Tensor:
        return self.net(ir, vi_y).clamp(0.0, 1.0)

    def _authors(self, ir_path: Path, vi_path: Path, device: torch.device) -> np.ndarray:
        ir = cv2_read_gray(ir_path)
        vi_rgb = read_u8(vi_path, "RGB")
        check_same_size(ir, vi_rgb, ir_path, vi_path)
        fused = truncate_u8(self.fuse_y(to_tensor_u8(ir, device), to_tensor_u8(cv2_gray(vi_rgb), device)))
        _, cr, cb = cv2_ycrcb(vi_rgb)
        return cv2_ycrcb_to_rgb(fused, cr, cb)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, variant={self.variant!r}, bn_image_stats={self.bn_image_stats}"
