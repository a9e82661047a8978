"""Metric conventions: the small choices that make published numbers disagree.

Two fusion papers can report different EN/MI/SSIM/AG for the *same* fused image because
their evaluators differ in details nobody writes down. A :class:`Convention` names every
such switch; metric functions read them, nothing else varies.

``"cddfuse"`` (default) is the Python evaluator many infrared-visible papers of 2023-2025
use (CDDFuse ``utils/Evaluator.py``; NOT the one behind the DTPF tables, see ``"dtpf"``):

* reading: 8-bit file -> float32 -> OpenCV ``BGR2GRAY`` weights (0.299 R + 0.587 G +
  0.114 B, evaluated in float32 as ``B*0.114 + G*0.587 + R*0.299``) -> ``np.round``
  (half to even);
* EN in bits; MI = MI(F, IR) + MI(F, VI) in **nats** (``sklearn.metrics.mutual_info_score``);
* SF: mean over the differences (H(W-1) horizontal, (H-1)W vertical);
* AG: central differences (``np.gradient``), mean over all H*W pixels;
* SSIM = SSIM(F, IR) + SSIM(F, VI) from old scikit-image defaults: 7x7 uniform window,
  sample covariance (N-1), and ``data_range = 2`` (what skimage silently used for float
  input; makes C1, C2 ~ 0, so SSIM is near the pure structure/contrast term);
* PSNR = 10 log10(max(F)^2 / MSE);
* VIF: a NaN (flat reference, 0/0) is reported as 1.0.

``"matlab"`` is the classic MATLAB toolkits' behaviour (VIFB, Kumar's and Xydeas' scripts):

* reading: ``rgb2gray`` weights (0.2989, 0.5870, 0.1140) in double, rounded half away from
  zero to uint8;
* MI in **bits** (log2);
* SF: both squared-difference sums divided by H*W;
* AG: ``gradient`` (central differences) summed and divided by (H-1)(W-1);
* SSIM = (SSIM(F, IR) + SSIM(F, VI)) / 2 with Wang's ``ssim.m``: 11x11 Gaussian
  (sigma 1.5), population covariance, ``L = 255``;
* PSNR = 10 log10(255^2 / MSE);
* VIF: a NaN stays NaN.

``"dtpf"`` is the DTPF repository's own evaluator (``Metric_Python`` of Zirconium233/DTPF),
which computed the DTPF paper's tables:

* reading: ``np.dot(rgb, (0.2989, 0.5870, 0.1140))`` in float64, then ``astype(int32)``
  (**truncation**); a gray file is used as it is;
* EN in bits from ``np.histogram(F, 256, range=(0, 255))`` with ``log2(p + 1e-7)``
  (``en_log_eps``; lowers EN by at most 256 * 1e-7 / ln 2 = 3.7e-5 bits);
* MI in **bits**; SF over the differences (as cddfuse); AG sum / ((H-1)(W-1)) (as matlab);
* SSIM = SSIM(F, IR) + SSIM(F, VI), 11x11 Gaussian (sigma 1.5), population covariance,
  ``data_range = 255``, but the integer images reach it as ``to_tensor(x) * 255`` (to_tensor
  divides only uint8 by 255), i.e. on 0..65025 against constants for 0..255
  (``ssim_input_scale = 255``): the same as L = 1 on 0..255, C1, C2 nearly 0;
* MSE on the [0, 1] scale (``mse_unit_range``) and PSNR = 20 log10(255 / sqrt(that MSE)),
  which is the 0..255 PSNR plus 20 log10(255) = 48.13 dB (a quirk of that code, kept);
* VIF: a NaN stays NaN; Nabf: pixels whose source edge strength is below 2 get weight 0
  (``nabf_weight_floor``; Kumar's script: 0.001).

Everything else (SD, CC, SCD, VIF, Qabf) is the same formula in all three.
Build a variant with ``dataclasses.replace(get_convention("cddfuse"), ssim_data_range=255.0)``.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ConfigError, InvalidTensorError
from ..registry import Registry


@dataclass(frozen=True)
class Convention:
    """Every switch that changes a fusion metric's value (see module docstring)."""

    name: str = "cddfuse"
    #: gray = wr*R + wg*G + wb*B; evaluated in this float precision and order, then rounded
    gray_weights: tuple[float, float, float] = (0.299, 0.587, 0.114)
    gray_dtype: str = "float32"            # "float32" (OpenCV on float32) | "float64" (MATLAB, NumPy)
    #: "half_even" (np.round) | "half_away" (MATLAB uint8) | "truncate" (NumPy astype(int))
    gray_rounding: str = "half_even"
    gray_order: str = "bgr"                # float summation order: "bgr" (OpenCV) | "rgb" (np.dot)
    mi_base: float = math.e                # e -> nats, 2 -> bits
    en_base: float = 2.0
    en_log_eps: float = 0.0                # EN = -sum p log(p + eps) (dtpf: 1e-7)
    sf_normalise: str = "differences"      # "differences" | "pixels"
    ag_normalise: str = "pixels"           # "pixels" (H*W) | "interior" ((H-1)(W-1))
    ssim_window: str = "uniform7"          # "uniform7" | "gaussian11"
    ssim_data_range: float = 2.0
    ssim_input_scale: float = 1.0          # images multiplied by this before SSIM (dtpf: 255, a quirk)
    ssim_sample_covariance: bool = True
    ssim_reduce: str = "sum"               # "sum" | "mean" of SSIM(F, IR) and SSIM(F, VI)
    mse_unit_range: bool = False           # MSE (and the PSNR built on it) on images / 255 (dtpf)
    psnr_peak: str = "fused_max"           # "fused_max" | "255"
    vif_nan: float = 1.0                   # value reported when a VIF is 0/0 (flat reference)
    nabf_weight_floor: float = 0.001       # Nabf weight where a source's edge strength < 2 (dtpf: 0)

    def __post_init__(self):
        allowed = {"gray_dtype": ("float32", "float64"),
                   "gray_rounding": ("half_even", "half_away", "truncate"), "gray_order": ("bgr", "rgb"),
                   "sf_normalise": ("differences", "pixels"), "ag_normalise": ("pixels", "interior"),
                   "ssim_window": ("uniform7", "gaussian11"), "ssim_reduce": ("sum", "mean"),
                   "psnr_peak": ("fused_max", "255")}
        for field, ok in allowed.items():
            if getattr(self, field) not in ok:
                raise ConfigError(f"convention {self.name!r}: {field}={getattr(self, field)!r} "
                                  f"is not one of {', '.join(ok)}")
        if not (self.ssim_input_scale > 0 and self.ssim_data_range > 0):
            raise ConfigError(f"convention {self.name!r}: ssim_data_range and ssim_input_scale must be > 0")


CONVENTIONS = Registry("metric convention")
CONVENTIONS.register("cddfuse", obj=lambda: Convention(name="cddfuse"))
CONVENTIONS.register("matlab", obj=lambda: Convention(
    name="matlab", gray_weights=(0.298936021293775, 0.587043074451121, 0.114020904255103),
    gray_dtype="float64", gray_rounding="half_away", mi_base=2.0, sf_normalise="pixels",
    ag_normalise="interior", ssim_window="gaussian11", ssim_data_range=255.0,
    ssim_sample_covariance=False, ssim_reduce="mean", psnr_peak="255", vif_nan=float("nan")))
CONVENTIONS.register("dtpf", obj=lambda: Convention(
    name="dtpf", gray_weights=(0.2989, 0.5870, 0.1140), gray_dtype="float64", gray_rounding="truncate",
    gray_order="rgb", mi_base=2.0, en_log_eps=1e-7, ag_normalise="interior", ssim_window="gaussian11",
    ssim_data_range=255.0, ssim_input_scale=255.0, ssim_sample_covariance=False, ssim_reduce="sum",
    mse_unit_range=True, psnr_peak="255", vif_nan=float("nan"), nabf_weight_floor=0.0))


def get_convention(convention: str | Convention = "cddfuse") -> Convention:
    """``"cddfuse"`` | ``"matlab"`` | ``"dtpf"`` | a :class:`Convention` -> :class:`Convention`."""
    if isinstance(convention, Convention):
        return convention
    return CONVENTIONS.build(str(convention))


# ----------------------------------------------------------------------------- to gray
def rgb255_to_gray(rgb: torch.Tensor, convention: str | Convention = "cddfuse") -> torch.Tensor:
    """8-bit RGB values -> the convention's rounded (or truncated) luma.

    The summation order matters where the exact luma is a tie (x.5) or, for truncation, an
    integer: OpenCV sums B, G, R; NumPy's ``np.dot`` R, G, B. (With truncation, OpenBLAS's
    ``np.dot`` fuses multiply-adds and so lands on the other side of an exact integer for 276
    of the 16.7 M colours, 1 pixel of 307,200 in MSRS 00016N; not reproduced.)

    Args:
        rgb: ``(B, 3, H, W)`` holding integers 0..255 (any float/int dtype), RGB order.

    Returns:
        ``(B, 1, H, W)`` float32 integers 0..255.
    """
    conv = get_convention(convention)
    wr, wg, wb = conv.gray_weights
    x = rgb.to(torch.float32 if conv.gray_dtype == "float32" else torch.float64)
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    y = b * wb + g * wg + r * wr if conv.gray_order == "bgr" else r * wr + g * wg + b * wb
    if conv.gray_rounding == "half_even":
        y = y.round()
    elif conv.gray_rounding == "half_away":
        y = torch.floor(y + 0.5)
    else:  # astype(int) truncates toward zero; lumas are >= 0
        y = torch.floor(y)
    return y.clamp_(0, 255).to(torch.float32)


def to_metric_scale(x01: torch.Tensor, convention: str | Convention = "cddfuse") -> torch.Tensor:
    """[0, 1] gray/RGB tensors -> the 0..255 luma the metrics expect, exactly as the file path.

    The image is first quantised to 8 bits the way :func:`fusionlab.io.write_image` stores
    it (clip, ``floor(x * 255 + 0.5)``), then converted to gray with the convention's
    weights and rounding. So ``to_metric_scale(t)`` equals :func:`read_gray` of the PNG
    written from ``t``, and metrics computed on tensors during training match the numbers
    the evaluation of saved images gives. Not differentiable (rounding).

    Args:
        x01: ``(B, 1|3, H, W)`` or ``(1|3, H, W)`` float in [0, 1].

    Returns:
        ``(B, 1, H, W)`` float32 holding integers 0..255.
    """
    if x01.ndim == 3:
        x01 = x01[None]
    if x01.ndim != 4 or x01.shape[1] not in (1, 3):
        raise InvalidTensorError(f"to_metric_scale expects (B, 1|3, H, W) in [0, 1], got {tuple(x01.shape)}")
    if not torch.isfinite(x01).all():
        raise InvalidTensorError("to_metric_scale: input holds NaN/inf values")
    q = torch.floor(x01.detach().float().clamp(0.0, 1.0) * 255.0 + 0.5)
    return q if q.shape[1] == 1 else rgb255_to_gray(q, convention)


def read_gray(path: str | os.PathLike, convention: str | Convention = "cddfuse") -> torch.Tensor:
    """Read an image file the way the convention's evaluator does -> ``(1, 1, H, W)`` float32 0..255.

    8-bit gray files give their values unchanged (OpenCV/MATLAB replicate them to three
    equal channels, whose luma rounds back to the same value; DTPF's evaluator keeps a 2-D
    array as it is, while a 3-channel gray array would truncate to ``v - 1``, since
    0.2989 + 0.5870 + 0.1140 = 0.9999); colour files are converted with :func:`rgb255_to_gray`.
    16-bit files are first reduced to 8 bits (``round(v * 255 / 65535)``), since the
    evaluators read 8-bit images.

    Raises:
        ImageReadError: missing, corrupt or unsupported file (one line, names the file).
    """
    from ..io import read_array

    arr = read_array(path, mode="auto")  # float32 [0, 1]; v / 255 for 8-bit files
    q = np.floor(arr * np.float32(255.0) + np.float32(0.5))  # back to the stored 8-bit integers
    t = torch.from_numpy(q)
    if t.ndim == 2:
        return t[None, None].contiguous()
    return rgb255_to_gray(t.permute(2, 0, 1)[None], convention)
