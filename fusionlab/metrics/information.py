"""Information measures: grey-level histograms, entropy (EN) and mutual information (MI).

All histograms use 256 bins of the integer grey level ``round(x)`` clamped to 0..255.
For 8-bit images (what every evaluator reads) that is exactly the per-value counting of
``np.bincount`` / ``sklearn.metrics.mutual_info_score``; for non-integer tensors it is
the natural binning (sklearn would instead treat every distinct float as its own label).

Batched: one ``torch.bincount`` over ``image_index * 65536 + a * 256 + b`` builds all joint
histograms of a batch at once, no Python loop over pixels or images.
"""
from __future__ import annotations

import math

import torch

from . import _native
from ._common import check_images, levels
from .registry import register_metric

BINS = 256


def histogram(x: torch.Tensor) -> torch.Tensor:
    """Grey-level histogram of each image.

    Args:
        x: ``(B, 1, H, W)`` on 0..255.

    Returns:
        ``(B, 256)`` int64 counts (each row sums to H*W).
    """
    (x,) = check_images(x, names=("image",), min_size=1)
    b = x.shape[0]
    idx = levels(x).view(b, -1) + torch.arange(b, device=x.device).view(b, 1) * BINS
    return torch.bincount(idx.view(-1), minlength=b * BINS).view(b, BINS)


def joint_histogram(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Joint grey-level histogram of aligned image pairs.

    Args:
        x, y: ``(B, 1, H, W)`` on 0..255.

    Returns:
        ``(B, 256, 256)`` int64 counts; entry ``[i, j]`` counts pixels with ``x = i``, ``y = j``.
    """
    x, y = check_images(x, y, names=("x", "y"), min_size=1)
    b = x.shape[0]
    idx = (levels(x).view(b, -1) * BINS + levels(y).view(b, -1)
           + torch.arange(b, device=x.device).view(b, 1) * BINS * BINS)
    return torch.bincount(idx.view(-1), minlength=b * BINS * BINS).view(b, BINS, BINS)


def _entropy_of_counts(counts: torch.Tensor, dims: tuple[int, ...], base: float) -> torch.Tensor:
    c = counts.to(torch.float64)
    p = c / c.sum(dim=dims, keepdim=True)
    # xlogy: 0 * log 0 = 0, so empty bins need no masking
    return -torch.special.xlogy(p, p).sum(dim=dims) / math.log(base)


def entropy(x: torch.Tensor, base: float = 2.0, eps: float = 0.0) -> torch.Tensor:
    """EN: Shannon entropy of the 256-bin grey-level histogram.

    ``EN = -sum_i p_i log(p_i + eps)``; in bits for ``base=2`` (every convention reports
    bits). 0 for a constant image, at most 8 bits. ``eps`` reproduces evaluators that guard
    the logarithm (DTPF: ``log2(p + 1e-7)``, which lowers EN by at most 256 eps / ln 2 = 3.7e-5 bits).

    Args:
        x: ``(B, 1, H, W)`` on 0..255.

    Returns:
        ``(B,)`` float64.
    """
    (x,) = check_images(x, names=("image",), min_size=1)
    counts = _native.histogram(x)
    if counts is None:
        counts = histogram(x)
    if not eps:
        return _entropy_of_counts(counts, (1,), base)
    p = counts.to(torch.float64) / counts.sum(1, keepdim=True)
    return -(p * torch.log(p + eps)).sum(1) / math.log(base)


def mutual_information(x: torch.Tensor, y: torch.Tensor, base: float = math.e) -> torch.Tensor:
    """MI(x, y) = H(x) + H(y) - H(x, y) from the 256x256 joint histogram.

    Symmetric; MI(x, x) = H(x). ``base=e`` gives nats (``sklearn.mutual_info_score``,
    the CDDFuse convention), ``base=2`` bits (MATLAB toolkits): the same quantity, a factor
    ln 2 = 0.693 apart, which is why published MI values differ by ~1.44x.

    Args:
        x, y: ``(B, 1, H, W)`` on 0..255.

    Returns:
        ``(B,)`` float64.
    """
    j = joint_histogram(x, y)
    return (_entropy_of_counts(j.sum(2), (1,), base) + _entropy_of_counts(j.sum(1), (1,), base)
            - _entropy_of_counts(j, (1, 2), base))


def fusion_mi(fused: torch.Tensor, ir: torch.Tensor, vi: torch.Tensor, base: float = math.e) -> torch.Tensor:
    """Fusion MI = MI(F, IR) + MI(F, VI): information the fused image shares with each source.

    Args:
        fused, ir, vi: ``(B, 1, H, W)`` on 0..255.
        base: ``e`` (nats, cddfuse) or ``2`` (bits, matlab).

    Returns:
        ``(B,)`` float64, in [0, 2 * 8 bits].
    """
    fused, ir, vi = check_images(fused, ir, vi, names=("fused", "ir", "vi"), min_size=1)
    b = fused.shape[0]
    j = _native.joint_histograms(fused, ir, vi)  # C, on the CPU
    if j is None:
        # both joint histograms of the batch in one bincount: bin = (pair, image, f, source)
        lf = levels(fused).view(b, -1) * BINS
        off = torch.arange(2 * b, device=fused.device).view(2 * b, 1) * (BINS * BINS)
        idx = torch.cat([lf + levels(ir).view(b, -1), lf + levels(vi).view(b, -1)]) + off
        j = torch.bincount(idx.view(-1), minlength=2 * b * BINS * BINS).view(2 * b, BINS, BINS)
    h_f = _entropy_of_counts(j[:b].sum(2), (1,), base)  # H(F), the same for both pairs
    h_s = _entropy_of_counts(j.sum(1), (1,), base)      # H(IR) then H(VI)
    h_joint = _entropy_of_counts(j, (1, 2), base)
    mi = h_s - h_joint
    return 2 * h_f + mi[:b] + mi[b:]


# ----------------------------------------------------------------------------- registry (fusionlab.metrics.METRICS)
@register_metric("EN", column=0, bounds=(0, 8), subsets=("paper", "headline", "summary"))
def _en(fused, ir, vi, convention):
    return entropy(fused, convention.en_base, convention.en_log_eps)


@register_metric("MI", column=4, bounds=(0, 16), subsets=("summary",))  # 2 x log(256) in base 2
def _mi(fused, ir, vi, convention):
    return fusion_mi(fused, ir, vi, convention.mi_base)
