"""Edge-based measures: Qabf (Xydeas & Petrovic 2000) and Nabf (Kumar's fusion artifacts).

**Qabf** asks, pixel by pixel, how well the fused image keeps each source's edges. With
Sobel responses ``sx, sy`` of an image, edge strength ``g = sqrt(sx^2 + sy^2)`` and
orientation ``a = atan(sy / sx)`` (``pi/2`` where ``sx = 0``):

* relative strength ``G_AF = min(gA, gF) / max(gA, gF)``, orientation agreement
  ``A_AF = 1 - |aA - aF| / (pi/2)``;
* preservation ``Q_AF = Tg / (1 + exp(kg (G_AF - Dg))) * Ta / (1 + exp(ka (A_AF - Da)))``
  with Tg=0.9994, kg=-15, Dg=0.5, Ta=0.9879, ka=-22, Da=0.8 (sigmoids ~0..1);
* ``Qabf = sum(Q_AF gA + Q_BF gB) / sum(gA + gB)``: edge-strength-weighted mean, in [0, 1].

Faithful to the MATLAB script and the CDDFuse port (both conventions): Sobel by
``conv2(..., 'same')`` (true convolution, zero padding; the signs of ``sx, sy`` flip but
``g`` and the ratio in ``a`` do not), and the quirk that where ``gA == gF`` exactly, ``G_AF``
is set to ``gF`` instead of 1 (harmless: both give ~Tg unless ``gF < 1``; at ``gF = 0`` the
weight ``gA`` is 0 anyway).

**Nabf** (Kumar 2013, "modified fusion artifacts"; Petrovic's NABF corrected) measures
edges that appear in F stronger than in *both* sources, i.e. artifacts. It uses Kumar's
own conventions: Sobel / 8 with mirror padding, ``G_AF = 0`` where either strength is 0,
orientation term ``||aA - aF| - pi/2| * 2/pi``, ``Q_AF = sqrt(Qg Qa)`` with Nrg=0.9999,
kg=19, sg=0.5, Nra=0.9995, ka=22, sa=0.5, and weights ``w = g^1.5`` where ``g >= 2`` else
0.001. Lower is better; 0 when F adds no edge.

Qabf maps are computed in float32 (like the reference; Sobel of 8-bit data is exact), Nabf
maps in float64 (like MATLAB), sums in float64.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import _native
from ._common import check_images, row_bands
from .registry import register_metric

# Qabf constants (Xydeas & Petrovic)
TG, KG, DG = 0.9994, -15.0, 0.5
TA, KA, DA = 0.9879, -22.0, 0.8


def _sobel(xp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel on a 1-pixel padded image by shifted slices (separable: [1 2 1] x [-1 0 1]).

    Returns ``(gx, gy)``: correlation with ``[-1 0 1; -2 0 2; -1 0 1]`` and with its
    transpose. Slices beat ``conv2d`` here: a 1-channel 3x3 convolution has nothing to
    vectorise over, while 8 whole-tensor adds do; integer inputs stay exact either way.
    """
    d = xp[..., :, 2:] - xp[..., :, :-2]                       # (H+2, W) horizontal difference
    s = xp[..., :, :-2] + 2 * xp[..., :, 1:-1] + xp[..., :, 2:]  # (H+2, W) horizontal smoothing
    gx = d[..., :-2, :] + 2 * d[..., 1:-1, :] + d[..., 2:, :]
    gy = s[..., 2:, :] - s[..., :-2, :]
    return gx, gy


def sobel_responses(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel responses ``(sx, sy)`` exactly as MATLAB ``conv2(x, h, 'same')`` (zero padding).

    ``h3 = [-1 0 1; -2 0 2; -1 0 1]`` gives ``sx``, ``h1 = [1 2 1; 0 0 0; -1 -2 -1]`` gives ``sy``;
    conv2 flips the kernel, so ``sx`` is *minus* the usual left-to-right derivative.

    Args:
        x: ``(B, 1, H, W)``.

    Returns:
        two ``(B, 1, H, W)`` maps in ``x``'s dtype.
    """
    (x,) = check_images(x, names=("image",))
    gx, gy = _sobel(F.pad(x, (1, 1, 1, 1)))
    # conv2 rotates the kernel by 180 degrees: conv2(x, h3) = -gx, conv2(x, h1) = gy
    return -gx, gy


def edge_strength_orientation(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Qabf's edge strength ``g`` (>= 0) and orientation ``a`` in [-pi/2, pi/2].

    ``g = sqrt(sx^2 + sy^2)``; ``a = atan(sy / sx)``, ``pi/2`` where ``sx == 0``.

    Returns:
        ``(g, a)``, each ``(B, 1, H, W)`` in ``x``'s dtype.
    """
    return _strength_orientation(*sobel_responses(x))


def _strength_orientation(sx: torch.Tensor, sy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.sqrt(sx * sx + sy * sy)
    # sy / 0 gives +-inf or NaN; all of those pixels get pi/2, as in the reference
    a = torch.where(sx == 0, math.pi / 2, torch.atan(sy / sx))
    return g, a


def edge_preservation(g_src: torch.Tensor, a_src: torch.Tensor, g_fused: torch.Tensor,
                      a_fused: torch.Tensor) -> torch.Tensor:
    """Per-pixel edge preservation ``Q_AF`` in [0, ~0.987] of a source's edges in F.

    Args:
        g_src, a_src, g_fused, a_fused: maps from :func:`edge_strength_orientation`.

    Returns:
        ``(B, 1, H, W)`` map.
    """
    # min/max ratio; where the strengths are equal the reference code stores g_F itself
    rel = torch.where(g_src == g_fused, g_fused, torch.minimum(g_src, g_fused) / torch.maximum(g_src, g_fused))
    ang = 1 - torch.abs(a_src - a_fused) / (math.pi / 2)
    # clamp the exponent: exp(-1e4) underflows through slow denormals to the same 1 / (1 + 0)
    q_g = TG / (1 + torch.exp((KG * (rel - DG)).clamp_(min=-80.0)))
    q_a = TA / (1 + torch.exp((KA * (ang - DA)).clamp_(min=-80.0)))
    return q_g * q_a


def qabf(fused: torch.Tensor, ir: torch.Tensor, vi: torch.Tensor) -> torch.Tensor:
    """Qabf: edge-strength-weighted edge preservation of both sources in F.

    Args:
        fused, ir, vi: ``(B, 1, H, W)`` on 0..255.

    Returns:
        ``(B,)`` float64 in [0, 1] (NaN if both sources are flat). Symmetric in (ir, vi).
    """
    fused, ir, vi = check_images(fused, ir, vi, names=("fused", "ir", "vi"))
    if (q := _native.qabf(fused, ir, vi)) is not None:  # C, on the CPU: the same float32 maps
        return q
    # float32 like the reference evaluator (Sobel of 8-bit data is exact); zero padding as
    # conv2 'same'; then cache-sized row bands, all three images as channels of one tensor
    x = F.pad(torch.cat([fused, ir, vi], 1).to(torch.float32), (1, 1, 1, 1))
    num = den = 0
    for band in row_bands(x, 2):
        gx, gy = _sobel(band)
        g, a = _strength_orientation(-gx, gy)
        g_s = g[:, 1:]  # both sources as 2 channels, F broadcast against them
        q = edge_preservation(g_s, a[:, 1:], g[:, :1], a[:, :1])
        num = num + (q * g_s).sum((1, 2, 3), dtype=torch.float64)
        den = den + g_s.sum((1, 2, 3), dtype=torch.float64)
    return num / den


# ------------------------------------------------------------------------------- Nabf
TD, WT_MIN, LG = 2.0, 0.001, 1.5
NRG, KG_N, SG = 0.9999, 19.0, 0.5
NRA, KA_N, SA = 0.9995, 22.0, 0.5


def kumar_gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Kumar's ``sobel_fn``: ``(gv, gh)`` = Sobel / 8 with mirror padding, correlation.

    ``gv`` responds to vertical edges (x-derivative), ``gh`` to horizontal ones. float64.
    """
    (x,) = check_images(x, names=("image",))
    # per_extn_im_fn mirrors without repeating the edge pixel == torch "reflect"
    gx, gy = _sobel(F.pad(x.to(torch.float64), (1, 1, 1, 1), mode="reflect"))
    return gx / 8, gy / 8  # dividing by a power of two is exact


def _nabf_q(g_s, a_s, g_f, a_f):
    zero = (g_s == 0) | (g_f == 0)
    rel = torch.where(zero, 0.0, torch.minimum(g_s, g_f) / torch.where(zero, 1.0, torch.maximum(g_s, g_f)))
    ang = torch.abs(torch.abs(a_s - a_f) - math.pi / 2) * 2 / math.pi
    q_g = NRG / (1 + torch.exp(-KG_N * (rel - SG)))
    q_a = NRA / (1 + torch.exp(-KA_N * (ang - SA)))
    return torch.sqrt(q_g * q_a)


def nabf(fused: torch.Tensor, ir: torch.Tensor, vi: torch.Tensor, weight_floor: float = WT_MIN) -> torch.Tensor:
    """Nabf (Kumar's modified fusion-artifact measure): share of edge information in F
    that is stronger than in both sources. Lower is better, 0 = no artifacts.

    Args:
        fused, ir, vi: ``(B, 1, H, W)`` on 0..255.
        weight_floor: weight of pixels whose source edge strength is below 2: Kumar's 0.001,
            or 0 as in the Python port the DTPF evaluator calls (it overwrites the floor).

    Returns:
        ``(B,)`` float64 in [0, 1]. Symmetric in (ir, vi).
    """
    fused, ir, vi = check_images(fused, ir, vi, names=("fused", "ir", "vi"))
    x = F.pad(torch.cat([fused, ir, vi], 1).to(torch.float64), (1, 1, 1, 1), mode="reflect")
    num = den = 0
    for band in row_bands(x, 2):
        gv, gh = _sobel(band)
        gv, gh = gv / 8, gh / 8
        g = torch.sqrt(gh * gh + gv * gv)
        a = torch.where((gv == 0) & (gh == 0), 0.0, torch.atan(gv / gh))  # gh = 0 -> atan(+-inf) = +-pi/2
        g_f, g_s = g[:, :1], g[:, 1:]  # both sources as 2 channels
        q = _nabf_q(g_s, a[:, 1:], g_f, a[:, :1])
        w = torch.where(g_s >= TD, g_s * torch.sqrt(g_s), weight_floor)  # g^1.5 (LG), without slow pow
        artifact = (g_f > g_s).all(1, keepdim=True)  # stronger than in both sources
        num = num + torch.where(artifact, (1 - q) * w, 0.0).sum((1, 2, 3))
        den = den + w.sum((1, 2, 3))
    return num / den


# ----------------------------------------------------------------------------- registry (fusionlab.metrics.METRICS)
@register_metric("Qabf", column=7, bounds=(0, 1), subsets=("paper", "headline", "summary"))
def _qabf(fused, ir, vi, convention):
    return qabf(fused, ir, vi)


@register_metric("Nabf", column=12, default=False, lower_is_better=True, bounds=(0, 1))
def _nabf(fused, ir, vi, convention):
    return nabf(fused, ir, vi, convention.nabf_weight_floor)
