"""Training data: deterministic, resumable, degradation-aware batches.

A :class:`BatchStream` mixes any number of sources (the synthetic generator and paired
folders: MSRS / M3FD / RoadScene / TNO ``ir/``+``vi/``, Harvard ``<ct|pet|spect>/``+``mri/``),
takes random aligned crops with flips, and degrades each sample with kornia-based
degradations (low light, over-exposure, IR low contrast, IR noise). A batch holds the
degraded inputs (what the network sees), the clean targets (what the losses compare with)
and the degradation labels (what the oracle captioner names, and what selects the loss
weights of a text-guided teacher).

Batch ``k`` is a pure function of ``(seed, k)``: the sample order (one seeded permutation
per epoch), the crops, flips and degradations are all drawn from generators seeded by the
batch index, never from global RNG state. Resuming at step ``k`` therefore continues with
exactly the batches an uninterrupted run would have seen, without saving any iterator.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch.utils.data import Dataset

from ..data import DEGRADATIONS, PairedFolder, SyntheticPairs, degrade_batch
from ..data.paired import random_aligned_crop
from ..errors import ConfigError, EmptyInputError

SYNTHETIC = "synthetic"
HOLDOUT = "holdout"
#: synthetic training scenes use seeds 1000.. (the demo and notebooks show seeds < 1000, so
#: what they display was never trained on); validation scenes start at 100000
SYNTHETIC_TRAIN_SEED0 = 1_000
SYNTHETIC_VAL_SEED0 = 100_000


def _seed(*parts) -> int:
    """Stable 63-bit seed from any parts (hash() is salted per process; sha1 is not)."""
    h = hashlib.sha1(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


def split_names(names: Sequence[str], holdout: int, split_seed: int = 0) -> tuple[list[str], list[str]]:
    """Split pair names into ``(train, held_out)``: ``holdout`` names chosen by a seeded
    shuffle (the same for every run and stage, so the teacher and the student never train on
    the evaluation pairs)."""
    names = sorted(names)
    if holdout <= 0:
        return names, []
    if holdout >= len(names):
        raise ConfigError(f"holdout={holdout} leaves no training pairs out of {len(names)}")
    order = torch.randperm(len(names), generator=torch.Generator().manual_seed(_seed("split", split_seed) % 2**31))
    held = sorted(names[int(i)] for i in order[:holdout])
    return [n for n in names if n not in set(held)], held


class _RGB(Dataset):
    """Wrap a dataset so that ``vi`` always has 3 channels (gray visible images replicated),
    letting synthetic, RGB and gray datasets share one batch."""

    def __init__(self, ds: Dataset, tag: str):
        self.ds, self.tag = ds, tag

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> dict:
        item = self.ds[i]
        vi = item["vi"]
        if vi.shape[0] == 1:
            vi = vi.expand(3, -1, -1)
        return {"ir": item["ir"], "vi": vi, "name": f"{self.tag}{item['name']}"}


def build_sources(specs: Sequence[str], split: str, *, synthetic_pairs: int, synthetic_size: int,
                  holdout: int = 0, split_seed: int = 0, train_specs: Sequence[str] = ()) -> list[Dataset]:
    """Datasets for one split.

    Args:
        specs: entries ``"synthetic"``, ``"holdout"`` (validation only: the pairs held out
            of the training folders) or dataset folders.
        split: ``"train"`` or ``"val"``.
        synthetic_pairs: number of synthetic scenes (training seeds start at
            :data:`SYNTHETIC_TRAIN_SEED0`, validation seeds at :data:`SYNTHETIC_VAL_SEED0`).
        holdout: pairs of every training folder kept out of training.
        train_specs: the training specs (to resolve ``"holdout"``).
    """
    out: list[Dataset] = []
    for spec in specs:
        spec = str(spec)
        if spec == SYNTHETIC:
            seed0 = SYNTHETIC_TRAIN_SEED0 if split == "train" else SYNTHETIC_VAL_SEED0
            out.append(_RGB(SyntheticPairs(synthetic_pairs, synthetic_size, seed0, with_reference=False), ""))
        elif spec == HOLDOUT:
            if split != "val":
                raise ConfigError("data.train: 'holdout' is only valid in data.val")
            if holdout <= 0:
                raise ConfigError("data.val: 'holdout' needs data.holdout > 0")
            for t in train_specs:
                if t not in (SYNTHETIC, HOLDOUT):
                    out.append(_folder(t, split_names(PairedFolder(expand_path(t)).names, holdout, split_seed)[1]))
        else:
            names = None
            if split == "train" and holdout > 0:
                names = split_names(PairedFolder(expand_path(spec)).names, holdout, split_seed)[0]
            out.append(_folder(spec, names))
    if not out:
        raise EmptyInputError(f"no {split} data: data.{split} is empty")
    return out


def expand_path(path: str) -> Path:
    """``~`` and ``$VARS`` expanded; the variables of :data:`fusionlab.dirs.DEFAULT_VARIABLES`
    (``$FUSIONLAB_SHARED``, ``$FUSIONLAB_DATA``, ...) get their defaults when unset, so configs
    can name the real training folders (``$FUSIONLAB_SHARED/data/train/msrs``)."""
    from ..dirs import DEFAULT_VARIABLES

    path = str(path)
    for var, default in DEFAULT_VARIABLES.items():
        if var in path and not os.environ.get(var):
            path = path.replace("${%s}" % var, str(default())).replace(f"${var}", str(default()))
    return Path(os.path.expandvars(os.path.expanduser(path)))


def _folder(path: str, names: Sequence[str] | None) -> Dataset:
    p = expand_path(path)
    if not p.is_dir():
        raise EmptyInputError(f"{p}: dataset folder not found (expected 'synthetic' or a folder with ir/ and vi/)")
    # cache=True: full images stay in memory, crops are cut per batch (datasets here are small)
    return _RGB(PairedFolder(p, vi_mode="rgb", names=names, cache=True), f"{p.parent.name}/{p.name}:")


@dataclass
class _Index:
    source: int
    item: int


class BatchStream:
    """Deterministic batches of aligned crops with degradations.

    Args:
        sources: datasets whose items hold ``ir (1,H,W)``, ``vi (3,H,W)``, ``name``.
        crop: crop size (images smaller than that are reflect-padded).
        batch: batch size.
        flip: random horizontal/vertical flips.
        degrade_prob: probability that a sample is degraded (else ``normal``).
        degradations: the degradation labels to draw from (uniformly).
        seed: the run seed.
        weights: optional sampling weight per source (e.g. ``[2, 1]``: twice as many crops
            from the first folder as from the second, whatever their sizes). None: every
            pair once per epoch, sources in proportion to their sizes.

    ``stream.batch(k)`` -> dict ``ir``, ``vi`` (degraded, ``(B,1,c,c)`` / ``(B,3,c,c)`` in
    [0, 1]), ``ir_clean``, ``vi_clean``, ``labels`` (list of str), ``names``.
    """

    def __init__(self, sources: Sequence[Dataset], crop: int, batch: int, flip: bool = True,
                 degrade_prob: float = 0.5, degradations: Sequence[str] | None = None, seed: int = 0,
                 weights: Sequence[float] | None = None):
        self.sources = list(sources)
        self.weights = None
        if weights is not None:
            if len(weights) != len(self.sources) or any(float(w) < 0 for w in weights) or not sum(weights) > 0:
                raise ConfigError(f"data.train_weights={list(weights)}: need one non-negative weight per training "
                                  f"source ({len(self.sources)}), not all zero")
            self.weights = torch.tensor([float(w) if len(ds) else 0.0 for w, ds in zip(weights, self.sources)])
        self.index = [_Index(s, i) for s, ds in enumerate(self.sources) for i in range(len(ds))]
        if not self.index:
            raise EmptyInputError("training data holds no pairs")
        self.crop, self.batch_size, self.flip, self.seed = int(crop), int(batch), bool(flip), int(seed)
        degradations = [d for d in (degradations if degradations is not None else DEGRADATIONS) if d != "normal"]
        bad = [d for d in degradations if d not in DEGRADATIONS]
        if bad:
            raise ConfigError(f"unknown degradation {bad[0]!r} (known: {', '.join(DEGRADATIONS)})")
        if not 0.0 <= degrade_prob <= 1.0:
            raise ConfigError(f"degrade_prob={degrade_prob} must be in [0, 1]")
        self.probs = {"normal": 1.0 - degrade_prob}
        if degradations and degrade_prob > 0:
            self.probs.update({d: degrade_prob / len(degradations) for d in degradations})
        self.probs = {k: v for k, v in self.probs.items() if v > 0} or {"normal": 1.0}
        self._perm: tuple[int, torch.Tensor] | None = None

    def __len__(self) -> int:
        """Number of pairs (one epoch)."""
        return len(self.index)

    def state(self) -> dict:
        """What the data order depends on (stored in checkpoints and checked on resume)."""
        st = {"seed": self.seed, "pairs": len(self.index), "batch": self.batch_size, "crop": self.crop}
        if self.weights is not None:
            st["weights"] = [round(float(w), 6) for w in self.weights]
        return st

    def epoch_of(self, step: int) -> float:
        return step * self.batch_size / len(self.index)

    def _permutation(self, epoch: int) -> torch.Tensor:
        if self._perm is None or self._perm[0] != epoch:
            g = torch.Generator().manual_seed(_seed("perm", self.seed, epoch) % 2**63)
            self._perm = (epoch, torch.randperm(len(self.index), generator=g))
        return self._perm[1]

    def batch(self, step: int) -> dict:
        irs, vis, names = [], [], []
        n = len(self.index)
        for j in range(self.batch_size):
            pos = step * self.batch_size + j
            item = self._weighted_item(pos) if self.weights is not None else None
            if item is None:
                idx = self.index[int(self._permutation(pos // n)[pos % n])]
                item = self.sources[idx.source][idx.item]
            g = torch.Generator().manual_seed(_seed("crop", self.seed, pos) % 2**63)
            ir, vi = random_aligned_crop(item["ir"], item["vi"], self.crop, g, self.flip)
            irs.append(ir)
            vis.append(vi)
            names.append(item["name"])
        g = torch.Generator().manual_seed(_seed("degrade", self.seed, step) % 2**63)
        out = degrade_batch(torch.stack(irs), torch.stack(vis), probs=self.probs, g=g)
        out["names"] = names
        return out


    def _weighted_item(self, pos: int) -> dict:
        """Sample ``pos`` of a weighted mix: a source drawn by weight, then one of its pairs
        (both from generators seeded by ``pos``, so resuming stays exact)."""
        g = torch.Generator().manual_seed(_seed("source", self.seed, pos) % 2**63)
        src = int(torch.multinomial(self.weights, 1, generator=g))
        ds = self.sources[src]
        return ds[int(torch.randint(len(ds), (1,), generator=g))]


def val_items(sources: Sequence[Dataset], max_pairs: int | None, crop: int | None) -> list[dict]:
    """Validation pairs, each ``{ir (1,1,H,W), vi (1,3,H,W), name}``, centre-cropped to
    ``crop`` (if set and smaller than the image) to bound validation time on CPUs."""
    items = []
    longest = max((len(ds) for ds in sources), default=0)
    for i in range(longest):  # round-robin, so a small max_pairs still covers every source
        for ds in sources:
            if i >= len(ds):
                continue
            if max_pairs is not None and len(items) >= max_pairs:
                return items
            it = ds[i]
            ir, vi = it["ir"], it["vi"]
            if crop:
                h, w = ir.shape[-2:]
                ch, cw = min(crop, h), min(crop, w)
                y, x = (h - ch) // 2, (w - cw) // 2
                ir, vi = ir[:, y:y + ch, x:x + cw], vi[:, y:y + ch, x:x + cw]
            items.append({"ir": ir[None].contiguous(), "vi": vi[None].contiguous(), "name": it["name"]})
    return items
