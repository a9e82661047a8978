"""IFCNN-MAX (Zhang et al., Information Fusion 54, 2020): a general-purpose fusion CNN.

Written from ``shared/peers/ifcnn/SOURCE.md`` and the state-dict listing. Every source goes
through the same branch; the branches are fused by an element-wise maximum::

    x (B, 3, H, W) -> replicate pad 3 -> 7x7 conv 3->64 (no bias, linear; ResNet-101's conv1)
                   -> replicate pad 1 -> 3x3 conv 64->64 (no bias) -> BN -> ReLU       (conv2)
    max over the sources
    -> replicate pad 1 -> 3x3 conv 64->64 (no bias) -> BN -> ReLU                      (conv3)
    -> 1x1 conv 64->3 (bias), linear                                                   (conv4)

Gray sources are given as three equal channels. The output lives in the input's value
space (identity or ImageNet normalisation, see the protocols) and is de-normalised, then
reduced to one luma channel for the fusionlab calling convention.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import (PeerMethod, Protocol, check_same_size, cv2_gray, cv2_read_gray, find_weights, load_state,
                   load_strict, read_u8, to_tensor_u8, truncate_u8)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class _ConvBNReLU(nn.Module):
    def __init__(self, c: int = 64):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, bias=False)
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x):
        return F.relu(self.bn(self.conv(F.pad(x, (1, 1, 1, 1), mode="replicate"))))


class IFCNNNet(nn.Module):
    """The bare network: ``net(*sources) -> fused``, each ``(B, 3, H, W)``, output 3 channels, linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, bias=False)
        self.conv2 = _ConvBNReLU()
        self.conv3 = _ConvBNReLU()
        self.conv4 = nn.Conv2d(64, 3, 1)

    def forward(self, *sources: torch.Tensor) -> torch.Tensor:
        feats = [self.conv2(self.conv1(F.pad(s, (3, 3, 3, 3), mode="replicate"))) for s in sources]
        fused = torch.stack(feats).amax(0)  # IFCNN-MAX; the order of the sources is irrelevant
        return self.conv4(self.conv3(fused))


class IFCNN(PeerMethod):
    """IFCNN-MAX with the published weights, behind the fusionlab calling convention.

    ``forward(ir, vi_y)``: each 1-channel input is repeated to 3 channels and normalised as
    the protocol says; the 3-channel output is de-normalised, clamped to [0, 1] and reduced
    to luma with the gray conversion of the protocol's script.

    Args:
        protocol:

            * ``"vif_benchmark"`` (default): IR and VI read as OpenCV gray, three equal
              channels, ImageNet mean/std normalisation; output de-normalised, clamped,
              ``uint8(255 x)`` truncated, BGR2GRAY; then colourised as the script does
              (PIL: visible ``convert('YCbCr')``, its Cb/Cr merged with the fused gray as Y,
              ``convert('RGB')``); RGB PNG.
            * ``"author"`` (``IFCNN_Main.py``, infrared-visual part): both read with PIL
              ``convert('RGB')`` (a colour visible image stays colour), [0, 1] without
              normalisation; ``model(VIS, IR)``; clamp, ``uint8(255 x)`` truncated,
              RGB2GRAY; gray PNG.
        weights: path of ``IFCNN-MAX.pth``. pretrained: False = random weights.
    """

    name = "ifcnn"
    paper = "Zhang, Liu, Sun, Yan, Zhao, Zhang, Information Fusion 54 (2020) 99-118"
    source = "https://github.com/uzeful/IFCNN (Code/snapshots/IFCNN-MAX.pth)"
    FILE = "IFCNN-MAX.pth"
    PROTOCOLS = {
        "vif_benchmark": Protocol("vif_benchmark", "VIF-Benchmark IFCNN/IFCNN.py",
                                  "OpenCV gray x3, ImageNet mean/std; clamp, uint8 truncation, gray; "
                                  "colourised with the visible Cb/Cr via PIL YCbCr; RGB PNG"),
        "author": Protocol("author", "uzeful/IFCNN Code/IFCNN_Main.py",
                           "PIL RGB (gray x3), [0, 1], no normalisation; clamp, uint8 truncation, "
                           "RGB2GRAY; gray PNG"),
    }

    def __init__(self, protocol: str | None = None, weights: str | None = None, pretrained: bool = True):
        super().__init__(protocol)
        self.net = IFCNNNet()
        imagenet = self.protocol.name == "vif_benchmark"
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN if imagenet else (0.0,) * 3).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD if imagenet else (1.0,) * 3).view(1, 3, 1, 1),
                             persistent=False)
        # luma of the output: the VIF-Benchmark script works on OpenCV BGR arrays, so its
        # BGR2GRAY weighs channel 0 with 0.114; the author's RGB2GRAY weighs it with 0.299
        self.gray_weights = (0.114, 0.587, 0.299) if imagenet else (0.299, 0.587, 0.114)
        if pretrained:
            path = Path(weights) if weights else find_weights(self.name, self.FILE, self.source)
            load_strict(self.net, load_state(path), path)
            self.weights_path = path
        self.eval()

    def _rgb(self, *sources: torch.Tensor) -> torch.Tensor:
        """``(B, 1|3, H, W)`` sources in [0, 1] -> de-normalised ``(B, 3, H, W)`` output, clamped."""
        xs = [(s.expand(-1, 3, -1, -1) - self.mean) / self.std for s in sources]
        return (self.net(*xs) * self.std + self.mean).clamp(0.0, 1.0)

    def fuse_y(self, ir: torch.Tensor, vi_y: torch.Tensor) -> torch.Tensor:
        out = self._rgb(ir, vi_y)
        w0, w1, w2 = self.gray_weights
        return w0 * out[:, 0:1] + w1 * out[:, 1:2] + w2 * out[:, 2:3]

    def _authors(self, ir_path: Path, vi_path: Path, device: torch.device) -> np.ndarray:
        if self.protocol.name == "author":
            vi, ir = read_u8(vi_path, "RGB"), read_u8(ir_path, "RGB")
            check_same_size(ir, vi, ir_path, vi_path)
            out = truncate_u8(self._rgb(to_tensor_u8(vi, device), to_tensor_u8(ir, device)))
            return cv2_gray(out)  # RGB2GRAY of the RGB array (same weights as BGR2GRAY of BGR)
        from PIL import Image

        ir, vi_gray = cv2_read_gray(ir_path), cv2_read_gray(vi_path)
        check_same_size(ir, vi_gray, ir_path, vi_path)
        out = truncate_u8(self._rgb(to_tensor_u8(ir, device), to_tensor_u8(vi_gray, device)))
        gray = cv2_gray(out[..., ::-1])  # BGR2GRAY of the BGR-ordered output
        with Image.open(vi_path) as im:
            _, cb, cr = im.convert("YCbCr").split()
        return np.asarray(Image.merge("YCbCr", (Image.fromarray(gray), cb, cr)).convert("RGB"))
