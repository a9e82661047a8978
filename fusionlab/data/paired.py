"""Paired-folder datasets (MSRS / M3FD / RoadScene / TNO / Harvard medical layouts).

Files are matched by stem, so ``ir/00016N.png`` pairs with ``vi/00016N.jpg``. A file whose
partner is missing raises :class:`~fusionlab.errors.MissingPairError` naming it.

Layouts understood by :func:`resolve_layout`:

* IR-VI: ``<root>/ir`` + ``<root>/vi`` (aliases: ``infrared``/``visible``, ``IR``/``VI``, ``vis``);
* medical (Harvard): ``<root>/<modality>`` + ``<root>/mri`` with modality ``ct``, ``pet`` or
  ``spect``. The functional modality takes the *visible* slot (its colour is kept, fusion
  happens in its Y channel, as PET/SPECT-MRI papers do) and MRI takes the *infrared* slot.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..errors import EmptyInputError, MissingPairError, ShapeMismatchError
from ..color import to_luma
from ..io import list_images, read_image

IR_ALIASES = ("ir", "infrared", "IR", "Infrared", "ir_images")
VI_ALIASES = ("vi", "visible", "VI", "vis", "Visible", "vi_images")
MEDICAL_MODALITIES = ("ct", "pet", "spect", "CT", "PET", "SPECT")


def resolve_layout(root: str | os.PathLike) -> tuple[Path, Path]:
    """Return ``(ir_dir, vi_dir)`` for a dataset root (see module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise EmptyInputError(f"{root}: dataset folder not found")
    ir = next((root / a for a in IR_ALIASES if (root / a).is_dir()), None)
    vi = next((root / a for a in VI_ALIASES if (root / a).is_dir()), None)
    if ir is not None and vi is not None:
        return ir, vi
    mri = next((root / a for a in ("mri", "MRI") if (root / a).is_dir()), None)
    func = next((root / a for a in MEDICAL_MODALITIES if (root / a).is_dir()), None)
    if mri is not None and func is not None:
        return mri, func
    subdirs = ", ".join(sorted(p.name for p in root.iterdir() if p.is_dir())) or "none"
    raise EmptyInputError(
        f"{root}: expected sub-folders ir/ and vi/ (or <ct|pet|spect>/ and mri/), found: {subdirs}")


def find_pairs(ir_dir: str | os.PathLike, vi_dir: str | os.PathLike,
               allow_unpaired: bool = False) -> list[tuple[str, Path, Path]]:
    """Match image files of two folders by stem -> sorted ``[(name, ir_path, vi_path)]``.

    Raises:
        EmptyInputError: a folder is missing or holds no images.
        MissingPairError: a file has no partner (unless ``allow_unpaired``), or a stem is
            ambiguous (two files with the same stem in one folder).
    """
    dirs = {"infrared": Path(ir_dir), "visible": Path(vi_dir)}
    by_stem: dict[str, dict[str, Path]] = {}
    for kind, d in dirs.items():
        if not d.is_dir():
            raise EmptyInputError(f"{d}: {kind} folder not found")
        files = list_images(d)
        if not files:
            raise EmptyInputError(f"{d}: no image files in the {kind} folder")
        stems: dict[str, Path] = {}
        for f in files:
            if f.stem in stems:
                raise MissingPairError(f"{f}: ambiguous, {stems[f.stem].name} has the same name stem")
            stems[f.stem] = f
        by_stem[kind] = stems
    ir_s, vi_s = by_stem["infrared"], by_stem["visible"]
    if not allow_unpaired:
        for stem in sorted(set(ir_s) ^ set(vi_s)):
            have, miss = ("infrared", "visible") if stem in ir_s else ("visible", "infrared")
            f = by_stem[have][stem]
            raise MissingPairError(f"{f}: no {miss} partner named {stem}.* in {dirs[miss]}")
    common = sorted(set(ir_s) & set(vi_s))
    if not common:
        raise MissingPairError(f"{dirs['infrared']} and {dirs['visible']}: no file names in common")
    return [(s, ir_s[s], vi_s[s]) for s in common]


def load_pair(ir_path: str | os.PathLike, vi_path: str | os.PathLike, vi_mode: str = "auto") -> dict:
    """Read one aligned pair: ``ir`` ``(1, H, W)`` (luma), ``vi`` ``(1|3, H, W)`` in [0, 1].

    ``vi_mode="auto"`` keeps colour if the file has it, ``"rgb"`` forces 3 channels,
    ``"gray"`` forces luma. Sizes must agree, else :class:`ShapeMismatchError`.
    """
    ir = to_luma(read_image(ir_path))
    vi = read_image(vi_path, mode="gray" if vi_mode == "gray" else ("rgb" if vi_mode == "rgb" else "auto"))
    if ir.shape[-2:] != vi.shape[-2:]:
        raise ShapeMismatchError(
            f"{vi_path}: size {vi.shape[-1]}x{vi.shape[-2]} differs from infrared {ir_path} "
            f"{ir.shape[-1]}x{ir.shape[-2]} (images must be registered to the same size)")
    return {"ir": ir, "vi": vi}


class PairedFolder(Dataset):
    """Aligned IR/VI (or medical) pairs from a folder, optionally as random aligned crops.

    Args:
        root: dataset root (see :func:`resolve_layout`); or pass ``ir_dir`` and ``vi_dir``.
        crop_size: if set, return random aligned ``crop_size`` x ``crop_size`` crops
            (images smaller than that are reflect-padded first).
        flip: random horizontal/vertical flips (with crops; training only).
        vi_mode: ``"auto"`` | ``"rgb"`` | ``"gray"`` (see :func:`load_pair`).
        names: restrict to these stems.
        seed: crops/flips are a pure function of ``(seed, epoch, index)``; call
            :meth:`set_epoch` between epochs.

    Items: dict ``name``, ``ir`` ``(1, h, w)``, ``vi`` ``(C, h, w)`` in [0, 1], ``ir_path``,
    ``vi_path`` (strings).
    """

    def __init__(self, root: str | os.PathLike | None = None, *, ir_dir=None, vi_dir=None,
                 crop_size: int | None = None, flip: bool = False, vi_mode: str = "auto",
                 names: Sequence[str] | None = None, seed: int = 0, cache: bool = False):
        if root is not None:
            ir_dir, vi_dir = resolve_layout(root)
        if ir_dir is None or vi_dir is None:
            raise EmptyInputError("PairedFolder needs a root folder or both ir_dir and vi_dir")
        self.pairs = find_pairs(ir_dir, vi_dir)
        if names is not None:
            wanted = set(names)
            self.pairs = [p for p in self.pairs if p[0] in wanted]
            if not self.pairs:
                raise EmptyInputError(f"{ir_dir}: none of the requested names {sorted(wanted)[:5]} are present")
        self.crop_size, self.flip, self.vi_mode = crop_size, flip, vi_mode
        self.seed, self.epoch = int(seed), 0
        self._cache: dict[int, dict] | None = {} if cache else None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def names(self) -> list[str]:
        return [p[0] for p in self.pairs]

    def _load(self, i: int) -> dict:
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        name, ir_p, vi_p = self.pairs[i]
        item = load_pair(ir_p, vi_p, self.vi_mode)
        item.update(name=name, ir_path=str(ir_p), vi_path=str(vi_p))
        if self._cache is not None:
            self._cache[i] = item
        return item

    def __getitem__(self, i: int) -> dict:
        item = dict(self._load(i))
        if self.crop_size:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch * 7919 + i)
            item["ir"], item["vi"] = random_aligned_crop(item["ir"], item["vi"], self.crop_size, g, self.flip)
        return item


def random_aligned_crop(ir: torch.Tensor, vi: torch.Tensor, size: int, g: torch.Generator,
                        flip: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Same random ``size`` x ``size`` window (and flips) from ``(C, H, W)`` IR and VI."""
    h, w = ir.shape[-2:]
    if h < size or w < size:  # reflect-pad small images (replicate if too small to reflect)
        ph, pw = max(0, size - h), max(0, size - w)
        pad = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
        mode = "reflect" if ph < h and pw < w else "replicate"
        ir = F.pad(ir[None], pad, mode=mode)[0]
        vi = F.pad(vi[None], pad, mode=mode)[0]
        h, w = ir.shape[-2:]
    y = int(torch.randint(0, h - size + 1, (1,), generator=g))
    x = int(torch.randint(0, w - size + 1, (1,), generator=g))
    ir, vi = ir[..., y:y + size, x:x + size], vi[..., y:y + size, x:x + size]
    if flip:
        if bool(torch.rand((), generator=g) < 0.5):
            ir, vi = ir.flip(-1), vi.flip(-1)
        if bool(torch.rand((), generator=g) < 0.5):
            ir, vi = ir.flip(-2), vi.flip(-2)
    return ir.contiguous(), vi.contiguous()
