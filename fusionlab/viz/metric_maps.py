"""The intermediate maps behind the fusion metrics, for pictures (notebook 02).

A metric is one number; the map it averages shows *where* a fusion wins or loses:

* :func:`gradient_maps_of` - |gradient| of the central-difference gradients AG averages;
* :func:`qabf_maps` - Sobel edge strength ``g`` and orientation ``a`` of IR, VI and F and the
  per-pixel edge preservation ``Q_AF``, ``Q_BF`` whose ``g``-weighted mean is Qabf;
* :func:`vif_scale_maps` - for each of VIF's 4 scales the filtered reference and the
  per-pixel information it carries (``den``) and that survives in F (``num``);
  VIF = sum(num) / sum(den) over all pixels and scales;
* :func:`ssim_maps` - SSIM(F, IR) and SSIM(F, VI) per window.

All functions take ``(1, 1, H, W)`` tensors on 0..255 (use
:func:`fusionlab.metrics.to_metric_scale`) and return 2-d numpy arrays (float64) for
``imshow``. They reuse the metric package's own building blocks, so the pictures show
exactly what the numbers average.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import ShapeMismatchError


def _one(x: torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(x)
    while x.ndim < 4:
        x = x[None]
    if x.shape[:2] != (1, 1):
        raise ShapeMismatchError(f"expected one gray image (1, 1, H, W) on 0..255, got shape {tuple(x.shape)}")
    return x.to(torch.float64)


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy()[0, 0]


def gradient_maps_of(x: torch.Tensor) -> np.ndarray:
    """``sqrt((gx^2 + gy^2) / 2)`` with AG's central differences; ``AG`` is its mean (cddfuse)."""
    from ..metrics import gradient_maps

    gx, gy = gradient_maps(_one(x))
    return _np(torch.sqrt((gx * gx + gy * gy) / 2))


def qabf_maps(fused: torch.Tensor, ir: torch.Tensor, vi: torch.Tensor) -> dict[str, np.ndarray]:
    """Qabf's maps: ``g_ir``, ``g_vi``, ``g_f`` (edge strength), ``a_ir``, ``a_vi``, ``a_f``
    (orientation, radians in [-pi/2, pi/2]), ``q_ir``, ``q_vi`` (edge preservation in [0, 1]).

    ``Qabf = sum(q_ir * g_ir + q_vi * g_vi) / sum(g_ir + g_vi)``.
    """
    from ..metrics import edge_preservation, edge_strength_orientation

    f, a, b = _one(fused), _one(ir), _one(vi)
    g, ang = edge_strength_orientation(torch.cat([f, a, b]))
    out = {"g_f": g[0:1], "g_ir": g[1:2], "g_vi": g[2:3], "a_f": ang[0:1], "a_ir": ang[1:2], "a_vi": ang[2:3]}
    out["q_ir"] = edge_preservation(out["g_ir"], out["a_ir"], out["g_f"], out["a_f"])
    out["q_vi"] = edge_preservation(out["g_vi"], out["a_vi"], out["g_f"], out["a_f"])
    return {k: _np(v) for k, v in out.items()}


def vif_scale_maps(ref: torch.Tensor, dist: torch.Tensor) -> list[dict[str, np.ndarray | float]]:
    """VIF(ref, dist) unpacked per scale.

    Returns:
        4 dicts (full resolution first) with ``ref`` (the reference at that scale), ``num``
        and ``den`` (per-pixel information maps, valid-filtered) and their sums ``num_sum``,
        ``den_sum``. ``sum(num_sum) / sum(den_sum)`` equals :func:`fusionlab.metrics.vif`.
    """
    from ..metrics.vif import SCALE_WINDOWS, SIGMA_N_SQ, _vif_pixel_terms, window_filter

    x = torch.cat([_one(ref), _one(dist)], 1)  # (1, 2, H, W)
    dev = str(x.device)
    out = []
    for s, n in enumerate(SCALE_WINDOWS):
        # the metric's own float64 FFT filters: a direct 17x17 conv2d took ~20 s at 640x480 on one core
        if s > 0:  # low-pass with this scale's window, then subsample by 2 (as vifp_mscale)
            x = window_filter(n, x.shape[-2:], dev)(x, stride=2)
        filt = window_filter(n, x.shape[-2:], dev)
        mu = filt(x)
        sq = filt(torch.cat([x * x, x[:, :1] * x[:, 1:]], 1))
        s1 = sq[:, 0:1] - mu[:, 0:1] ** 2
        s2 = sq[:, 1:2] - mu[:, 1:2] ** 2
        s12 = sq[:, 2:3] - mu[:, 0:1] * mu[:, 1:2]
        num, den = _vif_pixel_terms(s1, s2, s12, SIGMA_N_SQ)
        out.append({"ref": _np(x[:, :1]), "num": _np(num), "den": _np(den),
                    "num_sum": float(num.sum()), "den_sum": float(den.sum())})
    return out


def ssim_maps(fused: torch.Tensor, ir: torch.Tensor, vi: torch.Tensor, window: str = "uniform7",
              data_range: float = 2.0) -> dict[str, np.ndarray]:
    """``{"ir": SSIM map of (F, IR), "vi": SSIM map of (F, VI)}`` (valid windows)."""
    from ..metrics import ssim_map

    f = _one(fused)
    return {"ir": _np(ssim_map(f, _one(ir), window, data_range)), "vi": _np(ssim_map(f, _one(vi), window, data_range))}
