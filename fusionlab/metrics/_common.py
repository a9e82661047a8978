"""Shared plumbing of the metric modules: input checks and valid-mode filtering.

Every metric takes ``(B, 1, H, W)`` float tensors on the 0..255 scale and returns a
``(B,)`` float64 tensor. The helpers here keep those rules in one place.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools

import torch

from ..errors import InvalidTensorError, ShapeMismatchError


_TRUSTED = contextvars.ContextVar("fusionlab_metrics_trusted", default=False)


@contextlib.contextmanager
def trusted_inputs():
    """Inside this block :func:`check_images` only checks sizes: the caller (``compute_metrics``)
    validated the batch once, so 13 metrics need not re-scan it for NaN 13 times."""
    token = _TRUSTED.set(True)
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def check_images(*xs: torch.Tensor, names: tuple[str, ...] | None = None,
                 min_size: int = 2) -> tuple[torch.Tensor, ...]:
    """Validate metric inputs: same ``(B, 1, H, W)`` shape, floating point, finite.

    Integer tensors are converted to float32 (a uint8 image is a valid input).

    Raises:
        InvalidTensorError: wrong rank/channels, NaN/inf, image smaller than ``min_size``.
        ShapeMismatchError: the inputs differ in shape.
    """
    names = names or tuple(f"input {i}" for i in range(len(xs)))
    if _TRUSTED.get():
        if min(xs[0].shape[-2:]) < min_size:
            raise InvalidTensorError(f"{names[0]}: image {xs[0].shape[-1]}x{xs[0].shape[-2]} is too small "
                                     f"(each side needs at least {min_size} pixels)")
        return tuple(x if x.is_floating_point() else x.float() for x in xs)
    out = []
    for x, name in zip(xs, names):
        if not isinstance(x, torch.Tensor):
            raise InvalidTensorError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 4 or x.shape[1] != 1:
            raise InvalidTensorError(
                f"{name}: expected shape (B, 1, H, W) on 0..255, got {tuple(x.shape)} "
                "(convert [0, 1] RGB/gray tensors with fusionlab.metrics.to_metric_scale)")
        if not x.is_floating_point():
            x = x.float()
        if min(x.shape[-2:]) < min_size:
            raise InvalidTensorError(f"{name}: image {x.shape[-1]}x{x.shape[-2]} is too small "
                                     f"(each side needs at least {min_size} pixels)")
        # one reduction instead of an elementwise isfinite pass: NaN/inf make the sum non-finite
        # (a finite sum can only turn inf by overflow, which the exact check then clears)
        if not torch.isfinite(x.sum()) and not torch.isfinite(x).all():
            raise InvalidTensorError(f"{name}: holds {int((~torch.isfinite(x)).sum())} NaN/inf values")
        out.append(x)
    for x, name in zip(out[1:], names[1:]):
        if x.shape != out[0].shape:
            raise ShapeMismatchError(f"{name}: shape {tuple(x.shape)} differs from {names[0]} {tuple(out[0].shape)}")
    return tuple(out)


def levels(x: torch.Tensor) -> torch.Tensor:
    """Grey levels for histograms: ``round(x)`` (half to even, like np.round) clamped to 0..255, int64."""
    return x.round().clamp_(0, 255).long()


def _is_smooth(n: int) -> bool:
    for p in (2, 3, 5, 7):
        while n % p == 0:
            n //= p
    return n == 1


@functools.lru_cache(maxsize=None)
def fft_size(n: int) -> int:
    """Smallest multiple of 4 >= n that is 2,3,5,7-smooth (FFT lengths with large prime
    factors are slow; the multiple of 4 lets :meth:`ValidFilter.apply_down2` fold spectra)."""
    n += -n % 4
    while not _is_smooth(n):
        n += 4
    return n


class ValidFilter:
    """Valid-mode 2-D filtering of many maps with one symmetric kernel, by FFT, in float64.

    Why FFT in float64: the local variances of VIF and SSIM are ``E[x^2] - E[x]^2``, a
    difference of numbers up to 255^2; in float32 that difference is off by ~1e-3, enough
    to turn flat (saturated) windows into noisy ones and bias VIF by up to ~1e-4. Float64
    FFT convolution keeps the error ~1e-9 and costs the same for a 17x17 Gaussian as for
    a 3x3 one.

    Zero-padding to a fast FFT length never touches the valid region (the circular
    wrap-around only reaches the first ``k - 1`` rows/columns, which are discarded).

    Args:
        kernel: ``(k, k)`` symmetric kernel (correlation == convolution).
        size: ``(H, W)`` of the maps that will be filtered.
    """

    def __init__(self, kernel: torch.Tensor, size: tuple[int, int], device=None):
        self.k = int(kernel.shape[-1])
        self.size = (int(size[0]), int(size[1]))
        self.fsize = (fft_size(self.size[0]), fft_size(self.size[1]))
        kpad = torch.zeros(self.fsize, dtype=torch.float64, device=device)
        kpad[: self.k, : self.k] = kernel.to(device=device, dtype=torch.float64)
        self.kernel_fft = torch.fft.rfft2(kpad)

    def spectrum(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., H, W)`` real -> spectrum at the padded FFT size (reusable across kernels)."""
        return torch.fft.rfft2(x.to(torch.float64), s=self.fsize)

    def apply(self, spec: torch.Tensor, stride: int = 1) -> torch.Tensor:
        """Spectrum -> valid filtered maps ``(..., H-k+1, W-k+1)`` (optionally subsampled by ``stride``)."""
        full = torch.fft.irfft2(spec * self.kernel_fft, s=self.fsize)
        h, w = self.size
        return full[..., self.k - 1:h:stride, self.k - 1:w:stride]

    def apply_down2(self, spec: torch.Tensor) -> torch.Tensor:
        """Like ``apply(spec, stride=2)`` but 4x cheaper: keeping every second sample in
        space folds the spectrum onto a quarter-size grid (aliasing), so one small inverse
        FFT yields exactly the kept samples. Needs odd kernel size and FFT sizes divisible by 4.

        With ``Y`` the half spectrum ``(P, Q/2 + 1)``, the quarter-grid spectrum is
        ``Z[k, l] = 1/4 sum_{a, b} Y[k + aP/2, l + bQ/2]``; the ``l + Q/2`` terms are read from
        ``conj(Y[-k, Q/2 - l])`` (Hermitian symmetry of a real image).
        """
        p, q = self.fsize
        y = spec * self.kernel_fft
        s = y[..., : q // 4 + 1]
        mirrored = y[..., q // 4: q // 2 + 1].flip((-2, -1)).roll(1, -2).conj()  # Y[-k, Q/2 - l]
        s = s + mirrored
        z = (s[..., : p // 2, :] + s[..., p // 2:, :]) * 0.25
        full = torch.fft.irfft2(z, s=(p // 2, q // 2))
        h, w = self.size
        o = (self.k - 1) // 2
        return full[..., o:o + (h - self.k + 2) // 2, o:o + (w - self.k + 2) // 2]

    def __call__(self, x: torch.Tensor, stride: int = 1) -> torch.Tensor:
        return self.apply(self.spectrum(x), stride)


@functools.lru_cache(maxsize=64)
def gaussian_filter(n: int, sigma: float, size: tuple[int, int], device: str = "cpu") -> ValidFilter:
    """Cached :class:`ValidFilter` of an ``n x n`` Gaussian for maps of ``size``: the kernel's
    FFT costs as much as filtering one map, so it is computed once per size and device."""
    return ValidFilter(gaussian_kernel(n, sigma), tuple(size), torch.device(device))


@functools.lru_cache(maxsize=None)
def gaussian_kernel(n: int, sigma: float) -> torch.Tensor:
    """``(n, n)`` float64 Gaussian normalised to sum 1, as MATLAB ``fspecial('gaussian', n, sigma)``."""
    r = torch.arange(n, dtype=torch.float64) - (n - 1) / 2
    h = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma * sigma))
    h[h < torch.finfo(torch.float64).eps * h.max()] = 0
    return h / h.sum()


#: pixels per row band in banded computations (a few MB of float64 maps: stays in cache)
BAND_PIXELS = 48_000


def row_bands(x: torch.Tensor, halo: int, pixels: int | None = None):
    """Split the rows of a ``(B, C, H, W)`` tensor into overlapping bands for local operators.

    Yields views ``x[..., r0:r1 + halo, :]`` whose valid-mode outputs are output rows
    ``[r0, r1)``; together they cover the ``H - halo`` output rows exactly once. Local
    metrics (SSIM, Qabf, Nabf) are memory-bound: on a whole 640x480 image their ~20
    intermediate maps spill out of the CPU caches, on ~75-row bands they do not (SSIM 2x faster).
    """
    b, _, h, w = x.shape
    rows = max(16, (pixels or BAND_PIXELS) // max(1, b * w))
    n_out = h - halo
    for r0 in range(0, n_out, rows):
        yield x[..., r0:min(n_out, r0 + rows) + halo, :]


def box_sum_valid(x: torch.Tensor, k: int) -> torch.Tensor:
    """Sum over every ``k x k`` window (valid mode) via running sums, float64.

    ``(..., H, W)`` -> ``(..., H-k+1, W-k+1)``. For integer data (8-bit images and their
    products) every partial sum is an integer below 2^53, so the result is exact; otherwise
    the error is ~1e-16 of a row total, far below what SSIM's constants can see.
    """
    c = x.to(torch.float64).cumsum(-1)
    r = c[..., k - 1:].clone()
    r[..., 1:] -= c[..., :-k]
    c = r.cumsum(-2)
    s = c[..., k - 1:, :].clone()
    s[..., 1:, :] -= c[..., :-k, :]
    return s
