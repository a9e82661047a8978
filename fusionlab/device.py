"""Device selection: CUDA when present, CPU otherwise."""
from __future__ import annotations

import torch


def default_device(name: str | None = None) -> torch.device:
    """``name`` ('cpu', 'cuda', 'cuda:1', 'auto' or None) -> torch.device (auto = CUDA if available)."""
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
