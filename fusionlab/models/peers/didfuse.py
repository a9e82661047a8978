"""DIDFuse (Zhao et al., IJCAI 2020): an auto-encoder that splits images into base and
detail features; two images are fused by combining their features and decoding.

Written from ``shared/peers/didfuse/SOURCE.md`` and the state-dict listings. For a 1-channel
image in [0, 1] (the same encoder for IR and VI)::

    f1 = PReLU(BN(3x3 conv 1->64 (reflection pad 1)))            cov1
    f2 = PReLU(BN(3x3 conv 64->64))                               cov2
    base = tanh(BN(3x3 conv 64->64 (f2)))                         cov3 (background)
    detail = tanh(BN(3x3 conv 64->64 (f2)))                       cov4

    decoder(f1, f2, base, detail):
    x = PReLU(BN(3x3 conv 128->64 (cat[base, detail])))           cov5
    x = PReLU(BN(3x3 conv 128->64 (cat[x, f2])))                  cov6
    out = sigmoid(BN(3x3 conv 128->1 (reflection pad 1)(cat[x, f1])))   cov7

Each of the four feature pairs is fused with the same rule: ``sum``, ``average`` or
``l1_norm`` (weights from the 3x3-mean absolute activity summed over channels).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ...errors import ConfigError
from .base import (PeerMethod, Protocol, check_same_size, find_weights, load_state, load_strict, read_u8,
                   round_u8, to_tensor_u8, truncate_u8, ycrcb_float, ycrcb_float_to_rgb)

FUSION_RULES = ("sum", "average", "l1_norm")


class _Stage(nn.Module):
    """One named ``nn.Sequential`` (the weight files nest each stage as ``covN.covN.<i>``)."""

    def __init__(self, name: str, *layers: nn.Module):
        super().__init__()
        self.key = name
        setattr(self, name, nn.Sequential(*layers))

    def forward(self, x):
        return getattr(self, self.key)(x)


def _conv_bn(cin: int, cout: int, act: nn.Module, reflect: bool = False) -> list[nn.Module]:
    if reflect:
        return [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3), nn.BatchNorm2d(cout), act]
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), act]


class DIDFuseEncoder(nn.Module):
    """``enc(x) -> (f1, f2, base, detail)``, each ``(B, 64, H, W)``."""

    def __init__(self):
        super().__init__()
        self.cov1 = _Stage("cov1", *_conv_bn(1, 64, nn.PReLU(), reflect=True))
        self.cov2 = _Stage("cov2", *_conv_bn(64, 64, nn.PReLU()))
        self.cov3 = _Stage("cov3", *_conv_bn(64, 64, nn.Tanh()))
        self.cov4 = _Stage("cov4", *_conv_bn(64, 64, nn.Tanh()))

    def forward(self, x):
        f1 = self.cov1(x)
        f2 = self.cov2(f1)
        return f1, f2, self.cov3(f2), self.cov4(f2)


class DIDFuseDecoder(nn.Module):
    """``dec(f1, f2, base, detail) -> image (B, 1, H, W)`` in (0, 1)."""

    def __init__(self):
        super().__init__()
        self.cov5 = _Stage("cov5", *_conv_bn(128, 64, nn.PReLU()))
        self.cov6 = _Stage("cov6", *_conv_bn(128, 64, nn.PReLU()))
        self.cov7 = _Stage("cov7", *_conv_bn(128, 1, nn.Sigmoid(), reflect=True))

    def forward(self, f1, f2, base, detail):
        x = self.cov5(torch.cat([base, detail], 1))
        x = self.cov6(torch.cat([x, f2], 1))
        return self.cov7(torch.cat([x, f1], 1))


def fuse_features(a: torch.Tensor, b: torch.Tensor, rule: str) -> torch.Tensor:
    """Fuse two ``(B, C, H, W)`` feature maps: ``sum``, ``average`` or ``l1_norm``.

    ``l1_norm``: activity ``A = sum_c mean3x3(|f_c|)`` (one map per pixel, zero padding),
    weights ``A_a / (A_a + A_b)`` and ``A_b / (A_a + A_b)`` shared by every channel; where
    both activities are 0 the weights are 1/2.
    """
    if rule == "sum":
        return a + b
    if rule == "average":
        return (a + b) / 2
    act_a, act_b = (F.avg_pool2d(f.abs(), 3, 1, 1, count_include_pad=True).sum(1, keepdim=True) for f in (a, b))
    total = act_a + act_b
    w_a = torch.where(total > 0, act_a / total.clamp_min(torch.finfo(total.dtype).tiny), torch.full_like(total, 0.5))
    return w_a * a + (1 - w_a) * b


class DIDFuse(PeerMethod):
    """DIDFuse with the published encoder/decoder, behind the fusionlab calling convention.

    Args:
        protocol:

            * ``"vif_benchmark"`` (default): ``l1_norm`` fusion; VI -> Y with the float
              YCrCb formulas (clamped), IR gray, both / 255; fused Y + VI Cr/Cb -> RGB,
              clamped, ``uint8(255 x)`` truncated; RGB PNG.
            * ``"author"`` (``test.py``): ``sum`` fusion of gray images (a colour visible
              image is reduced to PIL luma, the script itself accepts only 1-channel files);
              the sigmoid map saved with scikit-image (rounded to 8 bits); gray PNG.
        rule: override the fusion rule (``sum``, ``average``, ``l1_norm``).
        weights: folder holding ``Encoder.pkl`` and ``Decoder.pkl``. pretrained: False = random weights.
    """

    name = "didfuse"
    paper = "Zhao, Xu, Zhang, Liu, Zhang, Li, IJCAI 2020, 970-976"
    source = ("https://github.com/Zhaozixiang1228/IVIF-DIDFuse (Models/Encoder_weight_IJCAI.pkl, "
              "Models/Decoder_weight_IJCAI.pkl, saved as Encoder.pkl / Decoder.pkl)")
    FILES = ("Encoder.pkl", "Decoder.pkl")
    PROTOCOLS = {
        "vif_benchmark": Protocol("vif_benchmark", "VIF-Benchmark DIDFuse/DIDFuse.py",
                                  "l1_norm; VI Y (clamped float YCrCb), IR gray; fused Y + VI CrCb -> RGB; "
                                  "uint8 truncation; RGB PNG"),
        "author": Protocol("author", "Zhaozixiang1228/IVIF-DIDFuse test.py",
                           "sum; gray inputs; sigmoid map rounded to 8 bits (scikit-image); gray PNG"),
    }

    def __init__(self, protocol: str | None = None, rule: str | None = None, weights: str | None = None,
                 pretrained: bool = True):
        super().__init__(protocol)
        self.rule = rule or ("l1_norm" if self.protocol.name == "vif_benchmark" else "sum")
        if self.rule not in FUSION_RULES:
            raise ConfigError(f"didfuse: unknown fusion rule {self.rule!r} (known: {', '.join(FUSION_RULES)})")
        self.encoder, self.decoder = DIDFuseEncoder(), DIDFuseDecoder()
        if pretrained:
            paths = [Path(weights) / f if weights else find_weights(self.name, f, self.source) for f in self.FILES]
            for module, path in zip((self.encoder, self.decoder), paths):
                load_strict(module, load_state(path, key="weight"), path)
            self.weights_path = paths[0].parent
        self.eval()

    def fuse_y(self, ir: torch.Tensor, vi_y: torch.Tensor) -> torch.Tensor:
        feats = [fuse_features(a, b, self.rule) for a, b in zip(self.encoder(ir), self.encoder(vi_y))]
        return self.decoder(*feats)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Encode and decode one image (the auto-encoder's training task): ``(B, 1, H, W)`` -> same."""
        return self.decoder(*self.encoder(x))

    def _authors(self, ir_path: Path, vi_path: Path, device: torch.device) -> np.ndarray:
        ir = read_u8(ir_path, "L")
        if self.protocol.name == "author":
            vi = read_u8(vi_path, "L")
            check_same_size(ir, vi, ir_path, vi_path)
            return round_u8(self.fuse_y(to_tensor_u8(ir, device), to_tensor_u8(vi, device)))
        vi = read_u8(vi_path, "RGB")
        check_same_size(ir, vi, ir_path, vi_path)
        y, cr, cb = ycrcb_float(to_tensor_u8(vi, device), clamp=True)
        fused = self.fuse_y(to_tensor_u8(ir, device), y)
        return truncate_u8(ycrcb_float_to_rgb(fused, cr, cb))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, rule={self.rule!r}"
