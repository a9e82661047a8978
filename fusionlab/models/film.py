"""FiLM text modulation: a text embedding scales and shifts fused features channel-wise."""
from __future__ import annotations

import torch
import torch.nn as nn

FILM_MODES = ("paper", "reference")


class FiLM(nn.Module):
    """Feature-wise affine modulation by a text embedding (DTPF eq. 9).

    An MLP ``text_dim -> C -> ReLU -> 2C`` gives ``(gamma, beta)`` per sample and channel;
    ``mode="paper"`` returns ``(1 + gamma) * F + beta`` (identity when the MLP outputs 0),
    ``mode="reference"`` returns ``gamma * F + beta`` as the public reference code does.

    Args:
        text_dim: width of the text embedding (512 for CLIP ViT-B/32).
        dim: channels ``C`` of the features.
        mode: ``"paper"`` or ``"reference"``.

    Shapes: ``features (B, C, H, W)``, ``text (B, text_dim)`` -> ``(B, C, H, W)``.
    """

    def __init__(self, text_dim: int, dim: int, mode: str = "paper"):
        super().__init__()
        if mode not in FILM_MODES:
            raise ValueError(f"film mode must be one of {FILM_MODES}, got {mode!r}")
        self.mode = mode
        self.mlp = nn.Sequential(nn.Linear(text_dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, 2 * dim))

    def forward(self, features: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.mlp(text.to(features.dtype))[:, :, None, None].chunk(2, dim=1)
        if self.mode == "paper":
            gamma = gamma + 1.0
        return features * gamma + beta
