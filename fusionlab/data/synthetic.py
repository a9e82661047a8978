"""Embedded default data: deterministic synthetic infrared/visible pairs.

The scenes imitate what makes IR-VI fusion hard, so that every notebook, test and the demo
run with no download:

* warm targets (people, vehicles) are bright in IR but camouflaged in VI (their colour is
  close to the local background);
* fine background texture (foliage, bricks, road) is visible only in VI; IR sees a blurred,
  low-contrast version of the layout;
* VI is colour (sky, vegetation, buildings), IR is single-channel;
* an optional clean reference fusion (VI colour with the targets' thermal intensity
  brought into the luma) is available for supervised checks.

Everything is a function of ``(seed, size)``; the same call gives the same pixels on every
machine (torch CPU generator, no global RNG touched).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..errors import ConfigError


def _fractal_noise(g: torch.Generator, h: int, w: int, octaves: int = 5, base: int = 4,
                   persistence: float = 0.55) -> torch.Tensor:
    """Sum of bilinearly upsampled random grids -> ``(1, 1, H, W)`` roughly in [0, 1]."""
    out = torch.zeros(1, 1, h, w)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        gh, gw = max(2, base * 2**o * h // max(h, w)), max(2, base * 2**o * w // max(h, w))
        grid = torch.rand(1, 1, gh, gw, generator=g)
        out += amp * F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=False)
        total += amp
        amp *= persistence
    out = out / total
    lo, hi = out.amin(), out.amax()
    return (out - lo) / (hi - lo + 1e-8)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    import kornia

    k = max(3, int(2 * round(3 * sigma) + 1))
    return kornia.filters.gaussian_blur2d(x, (k, k), (sigma, sigma), border_type="reflect")


def _ellipse(h: int, w: int, cy: float, cx: float, ry: float, rx: float, soft: float) -> torch.Tensor:
    yy = torch.arange(h, dtype=torch.float32).view(-1, 1)
    xx = torch.arange(w, dtype=torch.float32).view(1, -1)
    d = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
    return torch.sigmoid((1.0 - d) / soft)


def _rect(h: int, w: int, y0: float, x0: float, y1: float, x1: float, soft: float = 1.0) -> torch.Tensor:
    yy = torch.arange(h, dtype=torch.float32).view(-1, 1)
    xx = torch.arange(w, dtype=torch.float32).view(1, -1)
    my = torch.sigmoid((yy - y0) / soft) * torch.sigmoid((y1 - yy) / soft)
    mx = torch.sigmoid((xx - x0) / soft) * torch.sigmoid((x1 - xx) / soft)
    return my * mx


def make_pair(seed: int = 0, size: int | Sequence[int] = 256, with_reference: bool = True) -> dict:
    """Generate one synthetic pair.

    Args:
        seed: integer seed; the output is a pure function of ``(seed, size)``.
        size: ``S`` or ``(H, W)``; any size >= 8.

    Returns:
        dict with ``ir`` ``(1, H, W)``, ``vi`` ``(3, H, W)``, optionally ``reference``
        ``(3, H, W)`` (all float32 in [0, 1]), ``target_mask`` ``(1, H, W)`` in [0, 1],
        ``name`` (``"syn_<seed>"``) and ``label`` (``"normal"``).
    """
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if h < 8 or w < 8:
        raise ConfigError(f"synthetic size must be at least 8x8, got {h}x{w}")
    g = torch.Generator().manual_seed(int(seed) * 7919 + 17)
    r = lambda a, b: a + (b - a) * float(torch.rand((), generator=g))  # noqa: E731
    scale = min(h, w) / 256.0

    horizon = r(0.3, 0.5) * h
    yy = torch.arange(h, dtype=torch.float32).view(1, 1, -1, 1).expand(1, 1, h, w)
    ground = torch.sigmoid((yy - horizon) / 1.5)  # 1 below the horizon
    sky = 1.0 - ground

    # --- visible: colourful, textured ------------------------------------------------
    sky_grad = (1.0 - yy / h).clamp(0, 1)
    sky_rgb = torch.cat([0.45 + 0.2 * sky_grad, 0.6 + 0.2 * sky_grad, 0.85 + 0.1 * sky_grad], 1)
    clouds = _fractal_noise(g, h, w, octaves=4, base=3)
    sky_rgb = sky_rgb * (1 - 0.35 * clouds) + 0.35 * clouds
    fine = _fractal_noise(g, h, w, octaves=6, base=8, persistence=0.7)
    coarse = _fractal_noise(g, h, w, octaves=3, base=2)
    hue = r(0, 1)
    veg = torch.cat([0.25 + 0.25 * hue + 0.0 * coarse, 0.35 + 0.2 * coarse, 0.15 + 0.1 * coarse], 1)
    # grain: near-pixel-scale texture (leaves, gravel) that only the visible camera resolves
    grain = _blur(torch.rand(1, 1, h, w, generator=g), 0.7)
    grain = (grain - grain.mean()) / (grain.std() + 1e-6)
    ground_rgb = veg * (0.55 + 0.6 * fine) * (1 + 0.12 * grain)
    # road: a darker band with lane marks
    road_y0 = horizon + r(0.35, 0.55) * (h - horizon)
    road_h = r(0.15, 0.3) * (h - horizon)
    road = _rect(h, w, road_y0, -10, road_y0 + road_h, w + 10, soft=1.0)[None, None]
    road_rgb = torch.full((1, 3, h, w), 0.33) * (0.8 + 0.4 * fine) * (1 + 0.08 * grain)
    dashes = ((torch.arange(w).view(1, 1, 1, -1) // max(4, int(24 * scale))) % 2 == 0).float()
    lane = _rect(h, w, road_y0 + 0.45 * road_h, -10, road_y0 + 0.55 * road_h + 1, w + 10)[None, None]
    road_rgb = road_rgb + 0.5 * dashes * lane
    vi = sky * sky_rgb + ground * (road * road_rgb + (1 - road) * ground_rgb)

    ir = 0.12 + 0.1 * _blur(clouds, 4.0 * scale + 0.5)  # cold sky
    ir = sky * ir + ground * (0.32 + 0.12 * _blur(coarse, 2.0) + 0.04 * _blur(fine, 3.0 * scale + 0.5))
    ir = ir * (1 - 0.15 * road) + 0.15 * road * 0.25

    # --- buildings on the horizon: bricks/windows in VI, mild warmth in IR -------------
    for _ in range(int(r(1, 4))):
        bw, bh = r(0.08, 0.2) * w, r(0.1, 0.3) * h
        x0 = r(0, w - bw)
        m = _rect(h, w, horizon - bh, x0, horizon + 2, x0 + bw, soft=0.8)[None, None]
        tone = r(0.45, 0.75)
        step = max(3, int(r(6, 12) * scale))
        wy = ((torch.arange(h).view(-1, 1) // step) % 2 == 0).float()
        wx = ((torch.arange(w).view(1, -1) // step) % 2 == 0).float()
        windows = (wy * wx)[None, None]
        b_rgb = torch.cat([torch.full((1, 1, h, w), tone), torch.full((1, 1, h, w), tone * 0.9),
                           torch.full((1, 1, h, w), tone * 0.85)], 1) * (1 - 0.45 * windows) * (0.85 + 0.3 * fine)
        vi = vi * (1 - m) + b_rgb * m
        ir = ir * (1 - m) + m * (0.38 + 0.08 * _blur(windows, 2.0))

    # --- warm targets: bright in IR, camouflaged in VI --------------------------------
    target_mask = torch.zeros(1, 1, h, w)
    n_targets = int(r(2, 7))
    for i in range(n_targets):
        person = float(torch.rand((), generator=g)) < 0.6
        cy = r(horizon + 0.1 * (h - horizon), h * 0.95)
        cx = r(0.05 * w, 0.95 * w)
        depth = 0.4 + 0.9 * (cy - horizon) / max(1.0, h - horizon)  # nearer = bigger
        if person:
            ry, rx = 14 * scale * depth + 2, 5 * scale * depth + 1.5
            m = _ellipse(h, w, cy, cx, ry, rx, 0.15)
            m = torch.maximum(m, _ellipse(h, w, cy - 1.25 * ry, cx, 0.35 * ry, 0.9 * rx, 0.15))  # head
        else:
            ry, rx = 8 * scale * depth + 2, 18 * scale * depth + 3
            m = _rect(h, w, cy - ry, cx - rx, cy + ry, cx + rx, soft=1.2 * scale + 0.3)
        m = m[None, None]
        heat = r(0.75, 1.0)
        ir = ir * (1 - m) + m * heat * (0.92 + 0.08 * _blur(fine, 1.5))
        # camouflage: colour of the local background, slightly darker
        vi = vi * (1 - m) + m * (vi * r(0.82, 0.97) + 0.02)
        target_mask = torch.maximum(target_mask, m)

    # sensor realism: mild blur + noise in IR, tiny noise in VI
    ir = _blur(ir, 0.8) + 0.01 * torch.randn(1, 1, h, w, generator=g)
    vi = vi + 0.006 * torch.randn(1, 3, h, w, generator=g)
    ir, vi = ir.clamp(0, 1), vi.clamp(0, 1)

    out = {"ir": ir[0], "vi": vi[0], "target_mask": target_mask[0], "name": f"syn_{int(seed):05d}",
           "label": "normal"}
    if with_reference:
        from ..color import merge_luma, split_luma

        vi_y, cbcr = split_luma(vi)
        out["reference"] = merge_luma(torch.maximum(vi_y, ir * target_mask), cbcr)[0]
    return out


class SyntheticPairs(Dataset):
    """A map-style dataset of ``n`` synthetic pairs (seeds ``seed0 .. seed0 + n - 1``).

    Items are dicts as returned by :func:`make_pair` (``ir (1,H,W)``, ``vi (3,H,W)``, ...).
    Pairs are generated on first access and cached in memory (``cache=True``).
    """

    def __init__(self, n: int = 16, size: int | Sequence[int] = 128, seed0: int = 0,
                 with_reference: bool = True, cache: bool = True):
        if n < 1:
            raise ConfigError(f"SyntheticPairs needs n >= 1, got {n}")
        self.n, self.size, self.seed0 = int(n), size, int(seed0)
        self.with_reference = with_reference
        self._cache: dict[int, dict] | None = {} if cache else None

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.n:
            raise IndexError(i)
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        item = make_pair(self.seed0 + i, self.size, self.with_reference)
        if self._cache is not None:
            self._cache[i] = item
        return item


def write_synthetic_folder(root: str | Path, n: int = 8, size: int | Sequence[int] = 256, seed0: int = 0,
                           with_reference: bool = True) -> Path:
    """Write ``n`` pairs as PNGs in the layout of real datasets: ``<root>/{ir,vi[,reference]}/NAME.png``.

    Returns ``root``. Existing files with the same names are replaced atomically.
    """
    from ..io import write_image

    root = Path(root)
    for i in range(n):
        item = make_pair(seed0 + i, size, with_reference)
        write_image(root / "ir" / f"{item['name']}.png", item["ir"])
        write_image(root / "vi" / f"{item['name']}.png", item["vi"])
        if with_reference:
            write_image(root / "reference" / f"{item['name']}.png", item["reference"])
    return root
