"""Small helpers the walkthrough notebooks share (so the notebooks hold narrative, not code).

* :func:`choose_data` - which images a notebook uses: a folder the user gives, else the
  shared real subsets (``$FUSIONLAB_SHARED/data`` or ``../../shared/data`` beside the repo),
  else the embedded synthetic pairs; the returned :class:`DataChoice` prints which one;
* :func:`load_pairs` - the first ``n`` pairs of that choice, optionally downscaled;
* :func:`load_student` - the shipped distilled student, or an untrained tiny one (with a
  printed note) when the checkpoint is absent;
* :func:`setup` - threads, seeds and figure defaults for a reproducible notebook run.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import ConfigError

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
    env = os.environ.get("FUSIONLAB_SHARED")
    if env:
        d = Path(env).expanduser() / "data"
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


def load_student(checkpoint: str | os.PathLike | None = None, fallback: str = "dtpf_student_tiny",
                 verbose: bool = True):
    """The distilled student for demos: ``(model, note)``.

    Loads ``checkpoint`` (default: the shipped ``fusionlab/assets/student_synthetic.pt``). If
    that file is absent (a fresh checkout before the asset is built), returns an UNTRAINED
    ``fallback`` model instead, and says so - its fusions are then close to the visible image.
    """
    from ..demo import DEFAULT_CHECKPOINT
    from ..models import create_model, load_checkpoint

    path = Path(checkpoint) if checkpoint else DEFAULT_CHECKPOINT
    if path.is_file():
        model, info = load_checkpoint(path, map_location="cpu")
        note = f"model: {info.get('model')} loaded from {path.name}"
    elif checkpoint:
        from ..errors import CheckpointError

        raise CheckpointError(f"{path}: checkpoint not found")
    else:
        torch.manual_seed(0)
        model = create_model(fallback).eval()
        note = (f"NOTE: {path.name} is not in this checkout; using an UNTRAINED {fallback} "
                "(its fusions are not meaningful; train one in 04_distillation)")
    if verbose:
        print(note)
    return model.eval(), note


def setup(seed: int = 0, threads: int | None = None) -> str:
    """Make a notebook run reproducible and CPU-friendly; returns the preset name.

    Seeds torch, sets small readable matplotlib defaults and the torch thread count:
    ``threads`` if given, else 1 in the ``ci`` preset (its tensors are tiny: threads only
    add synchronisation, and on a busy shared machine oversubscribed OpenMP threads make a
    step 5-10x slower - measured on the 2-core CI machine under load), else torch's default.
    """
    import matplotlib as mpl

    from ..presets import get_preset

    preset = get_preset()
    if threads or preset == "ci":
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


def degraded_items(pairs, labels=None, seed: int = 0) -> list[dict]:
    """Every pair under every degradation: items ``name`` (``<pair>/<label>``), ``ir``
    ``(1, 1, H, W)``, ``vi`` ``(1, C, H, W)`` (degraded, batched), ``label``, ``pair``.

    The draw of each (pair, label) is seeded by ``seed`` and its position, so every model
    sees exactly the same degraded inputs.
    """
    from ..data import DEGRADATIONS, degrade

    labels = list(labels or DEGRADATIONS)
    items = []
    for i, p in enumerate(pairs):
        for j, lab in enumerate(labels):
            g = torch.Generator().manual_seed(seed * 100_003 + i * 101 + j)
            ir, vi = degrade(p["ir"][None], p["vi"][None], lab, g)
            items.append({"name": f"{p['name']}/{lab}", "ir": ir, "vi": vi, "label": lab, "pair": p["name"]})
    return items


def score_fusers(fusers, items, metrics=None):
    """Mean metrics per (fuser, degradation label).

    Args:
        fusers: ``{name: fuse(item) -> fused luma (1, 1, H, W)}`` (e.g.
            :func:`fusionlab.train.model_fuser`).
        items: from :func:`degraded_items`.
        metrics: names (default: the headline metrics, EN VIF Qabf SSIM).

    Returns:
        pandas DataFrame with columns ``fuser``, ``label`` and one per metric.
    """
    import pandas as pd

    from ..metrics.evaluate import HEADLINE_METRICS
    from ..train.evaluation import evaluate_fuser

    metrics = list(metrics or HEADLINE_METRICS)
    rows = []
    for fname, fuse in fusers.items():
        _, per = evaluate_fuser(fuse, items, metrics)
        for it, r in zip(items, per):
            rows.append({"fuser": fname, "label": it["label"], **{m: r[m] for m in metrics}})
    return pd.DataFrame(rows).groupby(["fuser", "label"], sort=False).mean().reset_index()


@torch.no_grad()
def compare_features(teacher, student, ir: torch.Tensor, vi: torch.Tensor, text: torch.Tensor | None = None,
                     adapters=None) -> list[dict]:
    """Teacher vs student features, level by level (what L_feat compares).

    Args:
        teacher, student: FusionNets; ``ir`` ``(1, 1, H, W)``, ``vi`` ``(1, 1|3, H, W)`` in [0, 1].
        text: the teacher's text embedding ``(1, text_dim)`` or None.
        adapters: the learned 1x1 convolutions of the distillation loss
            (``trainer.criterion.adapters``), mapping teacher channels to student channels.

    Returns:
        one dict per level: ``teacher``, ``student`` (and ``adapted``) channel-mean absolute
        activation maps ``(h, w)`` numpy, ``channels`` ``(C_t, C_s)``, and with adapters
        ``cosine``: the mean per-pixel cosine between ``Down(F_t)`` and ``F_s`` (1 = same
        direction everywhere; what normalised L_feat pushes towards).
    """
    from ..io import to_luma

    vi_y = to_luma(vi)
    _, ft = teacher.eval()(ir, vi_y, text, return_features=True)
    _, fs = student.eval()(ir, vi_y, None, return_features=True)
    mapped = adapters(ft) if adapters is not None else [None] * len(ft)
    out = []
    for t, s, a in zip(ft, fs, mapped):
        d = {"teacher": t[0].abs().mean(0).numpy(), "student": s[0].abs().mean(0).numpy(),
             "channels": (int(t.shape[1]), int(s.shape[1]))}
        if a is not None:
            if a.shape[-2:] != s.shape[-2:]:
                a = F.interpolate(a, size=s.shape[-2:], mode="bilinear", align_corners=False)
            d["adapted"] = a[0].abs().mean(0).numpy()
            d["cosine"] = float(F.cosine_similarity(a, s.float(), dim=1).mean())
        out.append(d)
    return out


def shrink_grid(grid_path: str | os.PathLike, out_dir: str | os.PathLike, preset: str,
                rows: list | None = None, seeds: list[int] | None = None) -> Path:
    """Write a smaller copy of an ablation grid file (some rows, fewer seeds) for a quick run.

    Args:
        grid_path: ``ablations/<name>.yaml``.
        out_dir: folder for the copy (``<out_dir>/<name>.yaml``); the grid keeps its name, so
            its report reads like the full one.
        preset: the preset whose seeds ``seeds`` replaces.
        rows: row labels or indices to keep (negative indices count from the end); None = all.
        seeds: seeds for ``preset``; None keeps the grid's.

    Relative path parameters (``data``, ``eval_data``, ``caption_file``) are made absolute
    against the original file's folder, so the copy runs from anywhere. Returns the copy's
    path (validated with :func:`fusionlab.ablate.load_grid`).
    """
    import yaml

    from ..ablate import load_grid
    from ..ablate.grid import PATH_KEYS, resolve_path
    from ..io import atomic_write_text

    grid = load_grid(grid_path)
    raw = yaml.safe_load(Path(grid_path).read_text())

    def absolutise(params):
        if isinstance(params, dict):
            for k in PATH_KEYS:
                v = params.get(k)
                if isinstance(v, str) and v != "synthetic" and "$" not in v:
                    params[k] = resolve_path(v, grid, k)
        return params

    absolutise(raw.get("base"))
    for p in (raw.get("presets") or {}).values():
        absolutise(p)
    keep = list(range(len(raw["rows"])))
    if rows is not None:
        keep = []
        for r in rows:
            i = grid.labels.index(r) if isinstance(r, str) and r in grid.labels else int(r)
            keep.append(i % len(raw["rows"]))
        if not keep:
            raise ConfigError(f"{grid_path}: rows={rows!r} selects no row")
    raw["rows"] = [raw["rows"][i] for i in dict.fromkeys(keep)]
    for r in raw["rows"]:
        absolutise(r.get("params"))
        for p in (r.get("presets") or {}).values():
            absolutise(p)
    if not any(r.get("reference") for r in raw["rows"]):
        raw["rows"][-1]["reference"] = True  # deltas need a reference row
    if seeds is not None:
        raw.setdefault("presets", {})
        raw["presets"][preset] = {**(raw["presets"].get(preset) or {}), "seeds": [int(s) for s in seeds]}
    out = Path(out_dir) / Path(grid_path).name
    atomic_write_text(out, yaml.safe_dump(raw, sort_keys=False))
    load_grid(out)  # validate the copy
    return out
