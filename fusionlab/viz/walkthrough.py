"""Small helpers the walkthrough notebooks share (so the notebooks hold narrative, not code).

* :func:`choose_data` - which images a notebook uses: a folder the user gives, else the
  shared real subsets (``$FUSIONLAB_SHARED/data`` or ``../../shared/data`` beside the repo),
  else the embedded synthetic pairs; the returned :class:`DataChoice` prints which one;
* :func:`load_pairs` - the first ``n`` pairs of that choice, optionally downscaled;
* :func:`setup` - threads, seeds and figure defaults for a reproducible notebook run;
* :func:`image_grid` - a grid of images with titles; :func:`run_dir` - where runs go.

The notebooks also import, from here, helpers that live with their owners:
:func:`~fusionlab.models.load_student` (models), :func:`~fusionlab.data.degraded_items`
(data), :func:`~fusionlab.train.evaluation.score_fusers` and
:func:`~fusionlab.train.evaluation.compare_features` (train). Grid shrinking is
:func:`fusionlab.ablate.grid.shrink_grid`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ..data.degrade import degraded_items  # noqa: F401  (re-exported for the notebooks)
from ..errors import ConfigError
from ..models.checkpoint import load_student  # noqa: F401  (re-exported for the notebooks)
from ..train.evaluation import compare_features, score_fusers  # noqa: F401  (re-exported for the notebooks)

#: Named real subsets inside the shared data folder (see shared/data/README.md).
SHARED_DATASETS = {
    "msrs": "msrs/test",
    "tno": "tno/test",
    "roadscene": "roadscene/test",
    "m3fd": "m3fd/test",
    "textif_samples": "textif_samples/test",
    "ct-mri": "harvard/CT-MRI",
    "pet-mri": "harvard/PET-MRI",
    "spect-mri": "harvard/SPECT-MRI",
}


def find_shared_data(start: str | os.PathLike | None = None) -> Path | None:
    """The shared real-data folder, or None.

    Order: ``$FUSIONLAB_SHARED/data``; then ``shared/data`` beside the repository, looked for
    from ``start`` (default: the current folder - ``notebooks/`` under Jupyter/nbval, the repo
    root under pytest) upwards: ``../shared/data`` and ``../../shared/data``.
    """
    from ..dirs import shared_dir

    if os.environ.get("FUSIONLAB_SHARED"):
        d = shared_dir() / "data"
        return d.resolve() if d.is_dir() else None
    here = Path(start or Path.cwd()).resolve()
    for up in (here, *list(here.parents)[:2]):
        d = up.parent / "shared" / "data"
        if d.is_dir():
            return d.resolve()
    return None


@dataclass
class DataChoice:
    """Which images a notebook runs on.

    Attributes:
        kind: ``"folder"`` (user-given), ``"shared"`` (real shared subset) or ``"synthetic"``.
        root: dataset folder (``ir/`` + ``vi/`` or a medical layout); None for synthetic.
        dataset: the shared subset name (e.g. ``"msrs"``) or the folder name.
        shared: the shared data folder when present (for galleries of every dataset).
    """

    kind: str
    root: Path | None
    dataset: str
    shared: Path | None = None
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if self.kind == "synthetic":
            msg = "data: embedded SYNTHETIC pairs (no real data found; pass data_root=... or set FUSIONLAB_SHARED)"
        elif self.kind == "shared":
            msg = f"data: REAL shared subset '{self.dataset}' from {self.root}"
        else:
            msg = f"data: REAL pairs from the folder you gave, {self.root}"
        return "\n".join([msg, *self.notes])


def choose_data(data_root: str | os.PathLike | None = None, dataset: str = "msrs",
                start: str | os.PathLike | None = None) -> DataChoice:
    """Decide which data a notebook uses (see module docstring); ``print`` the result.

    Args:
        data_root: a dataset folder (``ir/`` + ``vi/``, or ``<ct|pet|spect>/`` + ``mri/``), or
            a name of :data:`SHARED_DATASETS`, or None/"" (shared subset ``dataset`` when the
            shared data is present, synthetic otherwise), or ``"synthetic"``.
        dataset: the shared subset used when ``data_root`` is None.

    Raises:
        EmptyInputError: ``data_root`` is a path that is not a usable dataset folder.
        ConfigError: ``dataset`` is not a known shared subset name.
    """
    from ..data import resolve_layout

    shared = find_shared_data(start)
    if data_root in (None, "", "auto"):
        if dataset not in SHARED_DATASETS:
            raise ConfigError(f"dataset={dataset!r} is not one of {', '.join(SHARED_DATASETS)}")
        if shared is not None and (shared / SHARED_DATASETS[dataset]).is_dir():
            return DataChoice("shared", shared / SHARED_DATASETS[dataset], dataset, shared)
        return DataChoice("synthetic", None, "synthetic", shared)
    if str(data_root) == "synthetic":
        return DataChoice("synthetic", None, "synthetic", shared)
    if str(data_root) in SHARED_DATASETS and not Path(data_root).exists():
        if shared is None:
            raise ConfigError(f"data_root={data_root!r}: shared data folder not found (set FUSIONLAB_SHARED)")
        return DataChoice("shared", shared / SHARED_DATASETS[str(data_root)], str(data_root), shared)
    root = Path(data_root).expanduser()
    resolve_layout(root)  # raises a one-line EmptyInputError naming the folder if unusable
    return DataChoice("folder", root.resolve(), root.name, shared)


def _downscale(x: torch.Tensor, max_side: int | None) -> torch.Tensor:
    if not max_side or max(x.shape[-2:]) <= max_side:
        return x
    h, w = x.shape[-2:]
    s = max_side / max(h, w)
    size = (max(8, round(h * s)), max(8, round(w * s)))
    return F.interpolate(x[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0].clamp(0, 1)


def load_pairs(choice: DataChoice, n: int = 4, max_side: int | None = None, size: int | tuple = (192, 256),
               seed0: int = 0, names: list[str] | None = None, spread: bool = True) -> list[dict]:
    """``n`` pairs of ``choice`` as dicts ``name``, ``ir`` ``(1, H, W)``, ``vi`` ``(C, H, W)``.

    Args:
        n: number of pairs (fewer if the folder holds fewer).
        spread: take pairs evenly spread over the (sorted) folder rather than the first
            ``n`` - in MSRS the first files are all night scenes, the last ones day scenes.
        max_side: downscale real images so that the longer side is at most this (antialiased;
            keeps notebooks fast on a CPU); None keeps the original size.
        size: synthetic image size ``S`` or ``(H, W)``.
        seed0: first synthetic seed.
        names: pick these pair names (stems) instead of the first ``n``.
    """
    from ..data import PairedFolder, make_pair

    if n < 1:
        raise ConfigError(f"n={n}: need at least one pair")
    if choice.kind == "synthetic":
        return [make_pair(seed0 + i, size) for i in range(n)]
    ds = PairedFolder(choice.root, names=names)
    k = min(n, len(ds))
    idx = [round(j * (len(ds) - 1) / max(1, k - 1)) for j in range(k)] if spread and k > 1 else list(range(k))
    out = []
    for i in idx:
        item = ds[i]
        out.append({"name": item["name"], "ir": _downscale(item["ir"], max_side),
                    "vi": _downscale(item["vi"], max_side), "ir_path": item["ir_path"], "vi_path": item["vi_path"]})
    return out


def setup(seed: int = 0, threads: int | None = None) -> str:
    """Make a notebook run reproducible and CPU-friendly; returns the preset name.

    Seeds torch, sets small readable matplotlib defaults and the torch thread count:
    ``threads`` if given (or ``$FUSIONLAB_THREADS``), else 1 in the ``ci`` preset (its tensors
    are tiny: threads only add synchronisation) and 1 whenever the machine is already busy
    (1-minute load average >= 1, i.e. another job holds a core), else torch's default. Why:
    oversubscribed OpenMP threads spin - on the 2-core machine under load a training step
    was 5-10x slower with 2 threads, and a laptop training cell made 0 steps in 3.4 min.
    """
    import matplotlib as mpl

    from ..presets import get_preset

    preset = get_preset()
    threads = threads or int(os.environ.get("FUSIONLAB_THREADS", "0") or 0) or None
    busy = hasattr(os, "getloadavg") and os.getloadavg()[0] >= 1.0
    if threads or preset == "ci" or busy:
        torch.set_num_threads(int(threads or 1))
    torch.manual_seed(seed)
    mpl.rcParams.update({"figure.dpi": 80, "axes.titlesize": 9, "font.size": 9, "image.cmap": "gray"})
    return preset


def image_grid(grid, row_titles=None, col_titles=None, size: float = 2.2, suptitle: str | None = None,
               cmap: str = "gray"):
    """A grid of images -> matplotlib Figure.

    Args:
        grid: rows of images; each image a ``(C, H, W)``/``(1, C, H, W)`` tensor in [0, 1], an
            ``(H, W)`` array (drawn with ``cmap`` and a colour bar, e.g. a gradient map), or None
            (empty cell).
        row_titles, col_titles: labels of the rows / columns (or of each cell: a list of
            lists for ``col_titles``).
        size: inches per cell.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from .compare import to_display

    rows = [list(r) for r in grid]
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(size * n_cols * 1.15, size * n_rows), squeeze=False)
    for r, row in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.set_xticks([]), ax.set_yticks([])
            img = row[c] if c < len(row) else None
            if img is None:
                ax.axis("off")
                continue
            if isinstance(img, np.ndarray) and img.ndim == 2 or (torch.is_tensor(img) and img.ndim == 2):
                im = ax.imshow(np.asarray(img), cmap=cmap)
                fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
            else:
                ax.imshow(to_display(img))
            title = None
            if col_titles is not None:
                ct = col_titles[r] if isinstance(col_titles[0], (list, tuple)) else (col_titles if r == 0 else None)
                title = ct[c] if ct is not None and c < len(ct) else None
            if title:
                ax.set_title(str(title), fontsize=8)
            if c == 0 and row_titles is not None and r < len(row_titles):
                ax.set_ylabel(str(row_titles[r]), fontsize=9)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def run_dir(name: str, preset: str | None = None) -> Path:
    """Folder for a notebook's training runs: ``runs/walkthrough/<name>`` next to the notebook,
    or a fresh temporary folder in the ``ci`` preset (CI leaves no files in the work tree)."""
    from ..presets import get_preset

    if (preset or get_preset()) == "ci":
        import tempfile

        return Path(tempfile.mkdtemp(prefix=f"fusionlab_{name}_"))
    return Path("runs") / "walkthrough" / name
