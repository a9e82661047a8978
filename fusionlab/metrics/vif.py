"""VIF: Sheikh & Bovik's pixel-domain, multi-scale visual information fidelity (``vifp_mscale``).

This is the "VIF" infrared-visible fusion papers report (CDDFuse ``VIFF``, DTPF, Text-IF),
NOT Han et al.'s 2013 VIFF. For a reference R and a distorted image D, at 4 scales with
Gaussian windows of 17, 9, 5, 3 pixels (sigma = size / 5), each pixel contributes

    num = log10(1 + g^2 sigma_R^2 / (sigma_V^2 + sigma_n^2))     den = log10(1 + sigma_R^2 / sigma_n^2)

with local variances/covariance, gain ``g = sigma_RD / sigma_R^2``, residual
``sigma_V^2 = sigma_D^2 - g sigma_RD`` and sensor noise ``sigma_n^2 = 2`` (on 0..255).
``VIF(R, D) = sum num / sum den`` over all pixels and scales; between scales the images
are Gaussian-filtered and subsampled by 2. Fusion VIF = VIF(IR, F) + VIF(VI, F); values
above 1 per source mean F has *more* local contrast than that source.

Differences between implementations you will meet:

* ``piq.vif_p(x, y)`` takes (distorted, reference) in [0, data_range] and rescales to 255
  itself, so fusion VIF there is ``vif_p(F, IR) + vif_p(F, VI)``; torchmetrics'
  ``VisualInformationFidelity`` does not rescale: feed it 0..255;
* CDDFuse maps a NaN (flat reference, 0/0) to 1.0; MATLAB leaves NaN (``vif_nan``);
* the clamping rules for tiny/negative variances below (eps = 1e-10) follow
  ``vifp_mscale.m`` exactly; they only matter on perfectly flat regions.

Implementation: the 8 local moments per scale (means of IR, VI, F; E[IR^2], E[VI^2],
E[F^2], E[IR F], E[VI F]) are filtered in float64 via FFT (:class:`._common.ValidFilter`),
for all images of a batch at once; the subsampling between scales folds the spectrum so
only a quarter-size inverse FFT is needed. No loop over pixels.
"""
from __future__ import annotations

import math

import torch

from . import _native
from ._common import check_images, gaussian_filter, gaussian_kernel
from .registry import register_metric

#: window size per scale (scale 1 = full resolution)
SCALE_WINDOWS = (17, 9, 5, 3)
SIGMA_N_SQ = 2.0
EPS = 1e-10
#: smallest image side VIF accepts (the 4th scale still needs a 3x3 window)
MIN_SIZE = 41


def gaussian_window(n: int) -> torch.Tensor:
    """``(n, n)`` float64 Gaussian window of VIF, sigma = n / 5, sum 1 (MATLAB ``fspecial``)."""
    return gaussian_kernel(n, n / 5.0)


def window_filter(n: int, size: tuple[int, int], device: str = "cpu"):
    """The cached float64 FFT filter (:class:`._common.ValidFilter`) of :func:`gaussian_window`
    ``n`` for ``(H, W)`` maps on ``device``: every VIF computation filters through it."""
    return gaussian_filter(n, n / 5.0, tuple(size), str(device))


def _scale_sizes(h: int, w: int) -> list[tuple[int, int]]:
    sizes = [(h, w)]
    for n in SCALE_WINDOWS[1:]:
        ph, pw = sizes[-1]
        sizes.append(((ph - n + 2) // 2, (pw - n + 2) // 2))  # valid filter, then [::2]
    return sizes


def _vif_terms(refs: torch.Tensor, dist: torch.Tensor, sigma_n_sq: float = SIGMA_N_SQ
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-scale VIF numerator/denominator sums for R references sharing one distorted image.

    Args:
        refs: ``(B, R, H, W)`` references; dist: ``(B, 1, H, W)``.

    Returns:
        ``(num, den)``, each ``(B, R, 4)`` float64.
    """
    if (terms := _native.vif_terms(refs, dist, sigma_n_sq)) is not None:  # C, on the CPU
        return terms
    r = refs.shape[1]
    x = torch.cat([refs, dist], 1).to(torch.float64)  # (B, R+1, H, W): R refs then dist
    sizes = _scale_sizes(*x.shape[-2:])
    nums: list[list[torch.Tensor]] = [[] for _ in range(r)]
    dens: list[list[torch.Tensor]] = [[] for _ in range(r)]
    specs: list[torch.Tensor] = []
    for s, n in enumerate(SCALE_WINDOWS):
        dev = str(x.device)
        if s > 0:  # Gaussian low-pass with this scale's window, keep every 2nd sample
            down = window_filter(n, sizes[s - 1], dev)
            x = torch.cat([down.apply_down2(sp) for sp in specs], 1)
        filt = window_filter(n, sizes[s], dev)
        # one map per FFT: the buffers of a single 640x480 map stay in cache (20 % faster
        # than one batched call); the image spectra are reused for the next downsampling
        specs = [filt.spectrum(x[:, i:i + 1]) for i in range(r + 1)]
        d = x[:, r:]
        mu_d = filt.apply(specs[r])
        s2 = filt(d * d) - mu_d * mu_d
        for i in range(r):
            ref = x[:, i:i + 1]
            mu_r = filt.apply(specs[i])
            s1 = filt(ref * ref) - mu_r * mu_r
            s12 = filt(ref * d) - mu_r * mu_d
            num, den = _vif_pixel_terms(s1, s2, s12, sigma_n_sq)
            nums[i].append(num.sum((1, 2, 3)))
            dens[i].append(den.sum((1, 2, 3)))
    return (torch.stack([torch.stack(v, -1) for v in nums], 1),
            torch.stack([torch.stack(v, -1) for v in dens], 1))


def _vif_pixel_terms(s1, s2, s12, sigma_n_sq):
    """Per-pixel information terms from local variances ``s1`` (ref), ``s2`` (dist) and
    covariance ``s12``, with vifp_mscale's clamping rules.

    vifp_mscale sets the gain ``g`` to 0 where the reference window is flat (``s1 < eps``),
    the distorted window is flat (``s2 < eps``) or the gain is negative (contrast
    inversion). Wherever ``g = 0`` the numerator is ``log10(1 + 0) = 0`` whatever the
    residual variance is, so a single mask reproduces all of its branches.
    """
    s1, s2 = s1.clamp(min=0), s2.clamp(min=0)
    g = s12 / (s1 + EPS)
    sv = (s2 - g * s12).clamp_(min=EPS)
    keep = (s1 >= EPS) & (s2 >= EPS) & (g >= 0)
    num = torch.where(keep, torch.log10(1 + g * g * s1 / (sv + sigma_n_sq)), 0.0)
    den = torch.log10(1 + torch.where(s1 < EPS, 0.0, s1) / sigma_n_sq)
    return num, den


def vif_components(ref: torch.Tensor, dist: torch.Tensor, sigma_n_sq: float = SIGMA_N_SQ
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-scale information sums of VIF(ref, dist), for inspection.

    ``num[:, s]`` is the information about ``ref`` that survives in ``dist`` at scale ``s``
    (log10 units, summed over pixels), ``den[:, s]`` the information ``ref`` carries.
    ``vif = num.sum(1) / den.sum(1)``; scale 0 (full resolution) usually dominates.

    Args:
        ref, dist: ``(B, 1, H, W)`` on 0..255, at least 41x41.

    Returns:
        ``(num, den)``, each ``(B, 4)`` float64.
    """
    ref, dist = check_images(ref, dist, names=("ref", "dist"), min_size=MIN_SIZE)
    num, den = _vif_terms(ref, dist, sigma_n_sq)
    return num[:, 0], den[:, 0]


def vif(ref: torch.Tensor, dist: torch.Tensor, sigma_n_sq: float = SIGMA_N_SQ,
        nan_value: float = math.nan) -> torch.Tensor:
    """VIF(ref, dist) -> ``(B,)`` float64; 1 for ``dist == ref``, not symmetric.

    ``nan_value`` replaces 0/0 (flat reference), see the module docstring.
    """
    num, den = vif_components(ref, dist, sigma_n_sq)
    v = num.sum(1) / den.sum(1)
    return torch.nan_to_num(v, nan=nan_value, posinf=math.inf, neginf=-math.inf)


def fusion_vif(fused: torch.Tensor, ir: torch.Tensor, vi: torch.Tensor, sigma_n_sq: float = SIGMA_N_SQ,
               nan_value: float = 1.0) -> torch.Tensor:
    """Fusion VIF = VIF(IR, F) + VIF(VI, F) (both references filtered in one pass).

    Args:
        fused, ir, vi: ``(B, 1, H, W)`` on 0..255, at least 41x41.
        nan_value: value of a 0/0 term (flat source): 1.0 in cddfuse, NaN in matlab.

    Returns:
        ``(B,)`` float64.
    """
    fused, ir, vi = check_images(fused, ir, vi, names=("fused", "ir", "vi"), min_size=MIN_SIZE)
    num, den = _vif_terms(torch.cat([ir, vi], 1), fused, sigma_n_sq)
    v = torch.nan_to_num(num.sum(-1) / den.sum(-1), nan=nan_value, posinf=math.inf, neginf=-math.inf)
    return v.sum(1)


# ----------------------------------------------------------------------------- registry (fusionlab.metrics.METRICS)
@register_metric("VIF", column=6, bounds=(0, math.inf), min_side=41, subsets=("paper", "headline", "summary"))
def _vif(fused, ir, vi, convention):
    return fusion_vif(fused, ir, vi, nan_value=convention.vif_nan)
