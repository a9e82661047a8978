"""Side-by-side comparison of fusion methods on real datasets: the first table of every paper.

:func:`compare_dataset` fuses every pair of one dataset with every method, scores the fused
images with :mod:`fusionlab.metrics` (one convention, stated in the outputs), measures
parameters, GFLOPs and CPU latency at the dataset's image size, and writes::

    <out>/<dataset>/fused/<method>/<name>.png    fused images (reused on reruns)
    <out>/<dataset>/fused/<method>/METHOD.json   what produced them (fingerprint)
    <out>/<dataset>/metrics/<method>.csv         per-image metrics (reused while valid)
    <out>/<dataset>/table.csv|.md|.html          mean metrics + efficiency, one row per method
    <out>/<dataset>/grid.png                     the same crops across methods
    <out>/efficiency.json                        cached efficiency rows (per method and size)

Methods are names from :func:`resolve_methods`: ``student`` (the shipped student checkpoint,
or ``student_checkpoint``), any registered model that needs no training (peers such as
``seafusion``, baselines such as ``laplacian``). Peers write what their authors' scripts
write (``peer_protocol="authors"``, the default); fusionlab models and baselines go through
:func:`fusionlab.models.fuse_pair` (visible CbCr kept, rounded 8-bit PNG).

Resumable: a fused PNG that exists is reused as long as the method's fingerprint (weights
file digest, protocol, options) is unchanged; a changed method (e.g. a new student
checkpoint) is fused again from scratch. Metrics are recomputed only for methods whose
fusions changed, or when the convention or metric list changes.
"""
from __future__ import annotations

import gc
import hashlib
import json
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from .errors import ConfigError, UsageError

#: the methods compared when none are given
DEFAULT_METHODS = ("student", "seafusion", "ifcnn", "tardal", "didfuse", "pixel_mean", "pixel_max",
                   "visible_only", "laplacian")
STUDENT_CHECKPOINT = Path(__file__).resolve().parent / "assets" / "student_synthetic.pt"
EFFICIENCY_COLUMNS = {"params_m": "params (M)", "gflops": "GFLOPs", "latency_ms": "CPU latency (ms)"}


# ----------------------------------------------------------------------------- methods
@dataclass
class Method:
    """One compared method: a built model plus what identifies its outputs."""

    name: str
    kind: str                       # "student" | "fusionnet" | "peer" | "baseline"
    model: nn.Module
    description: str
    fingerprint: dict = field(default_factory=dict)

    @property
    def as_authors(self) -> bool:
        return self.fingerprint.get("pipeline") == "authors"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def resolve_methods(methods: str | Sequence[str] | None) -> list[str]:
    """Comma string or list -> validated, de-duplicated-checked names (one-line ConfigError)."""
    from .models import list_models, model_kind

    if methods is None:
        return list(DEFAULT_METHODS)
    names = [m.strip() for m in (methods.split(",") if isinstance(methods, str) else methods) if m and m.strip()]
    if not names:
        raise ConfigError("no method given (e.g. --methods student,seafusion,laplacian)")
    seen = set()
    for n in names:
        if n in seen:
            raise ConfigError(f"method {n!r} is listed twice")
        seen.add(n)
        if n == "student":
            continue
        if n not in list_models():
            known = ["student"] + list_models("peer") + list_models("baseline")
            raise ConfigError(f"unknown method {n!r} (known: {', '.join(known)})")
        if model_kind(n) == "fusionnet":
            raise ConfigError(f"method {n!r} is an untrained FusionNet variant; compare trained models "
                              "('student', or --student CHECKPOINT)")
    return names


def build_method(name: str, device: torch.device | str = "cpu", student_checkpoint: str | os.PathLike | None = None,
                 peer_protocol: str = "authors") -> Method:
    """Build method ``name`` (loads weights; raises the one-line errors of missing files)."""
    from . import models
    from .errors import CheckpointError

    if name == "student":
        ckpt = Path(student_checkpoint) if student_checkpoint else STUDENT_CHECKPOINT
        if not ckpt.is_file():
            raise CheckpointError(f"{ckpt}: student checkpoint not found (pass --student CHECKPOINT)")
        model, info = models.load_checkpoint(ckpt, map_location=device)
        return Method(name, "student", model.eval(), f"{info['model']} from {ckpt.name}",
                      {"pipeline": "fusionlab", "checkpoint_sha256": _sha256(ckpt)})
    kind = models.model_kind(name)
    if kind == "peer":
        opts = {} if peer_protocol in ("authors", "fusionlab") else {"protocol": peer_protocol}
        model = models.create_model(name, **opts).to(device).eval()
        files = sorted(model.weights_path.glob("*")) if model.weights_path.is_dir() else [model.weights_path]
        digests = {f.name: _sha256(f) for f in files if f.suffix in (".pt", ".pth", ".pkl")}
        variant = getattr(model, "variant", None)
        pipeline = "fusionlab" if peer_protocol == "fusionlab" else "authors"
        desc = (f"{type(model).__name__}{f' ({variant})' if variant else ''}, "
                f"{'protocol ' + model.protocol.name if pipeline == 'authors' else 'fusionlab pipeline'}")
        return Method(name, kind, model, desc, {"pipeline": pipeline, "protocol": model.protocol.name,
                                                "variant": variant, "weights": digests})
    from .models.baselines import BASELINES

    model = models.create_model(name).to(device).eval()
    return Method(name, kind, model, f"baseline: {BASELINES[name][1]}", {"pipeline": "fusionlab", "baseline": name})


# ----------------------------------------------------------------------------- fusing
def _read_manifest(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "METHOD.json").read_text())
    except (OSError, ValueError):
        return None


def fuse_method(method: Method, pairs: Sequence[tuple[str, Path, Path]], folder: Path,
                progress: bool = True) -> int:
    """Fuse every pair into ``folder/<name>.png``, reusing files made by the same method.

    Returns the number of pairs fused in this call (0 = everything was reused).
    """
    from tqdm import tqdm

    from .data.paired import load_pair
    from .io import atomic_write_text, list_images, write_image
    from .models import fuse_pair

    old = _read_manifest(folder)
    if old is not None and old.get("fingerprint") != method.fingerprint:
        # another model wrote these (e.g. a new student checkpoint): start over
        for f in list_images(folder):
            f.unlink()
        (folder / "METHOD.json").unlink()
        old = None
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {n for n, _, _ in pairs}
    for f in list_images(folder):  # pairs no longer in the dataset would break the metric matching
        if f.stem not in wanted:
            f.unlink()
    if old is None:
        atomic_write_text(folder / "METHOD.json", json.dumps(
            {"method": method.name, "description": method.description, "fingerprint": method.fingerprint},
            indent=1) + "\n")
    todo = [(n, i, v) for n, i, v in pairs if not (folder / f"{n}.png").is_file()]
    for name, ir_path, vi_path in tqdm(todo, desc=f"fuse {method.name}", unit="pair", file=sys.stderr,
                                       disable=not progress or not todo, dynamic_ncols=True):
        if method.as_authors:
            write_image(folder / f"{name}.png", method.model.fuse_as_authors(ir_path, vi_path).astype("float32") / 255)
            continue
        pair = load_pair(ir_path, vi_path)
        fused = fuse_pair(method.model, pair["ir"][None], pair["vi"][None])
        write_image(folder / f"{name}.png", fused[0])
    return len(todo)


# ----------------------------------------------------------------------------- metrics
def score_method(method: Method, ir_dir: Path, vi_dir: Path, fused_dir: Path, csv_path: Path,
                 metrics: list[str], convention: str, fused_now: bool, progress: bool = True) -> pd.DataFrame:
    """Per-image metrics of one method (cached in ``csv_path`` + a ``.json`` sidecar)."""
    from .io import atomic_write_text
    from .metrics import evaluate_folders

    meta_path = csv_path.with_suffix(".json")
    from .io import list_images

    key = {"fingerprint": method.fingerprint, "convention": convention, "metrics": metrics}
    if not fused_now and csv_path.is_file():
        try:
            if json.loads(meta_path.read_text()) == key:
                cached = pd.read_csv(csv_path, index_col="name", dtype={"name": str})
                if sorted(map(str, cached.index)) == sorted(f.stem for f in list_images(fused_dir)):
                    return cached
        except (OSError, ValueError, KeyError):
            pass
    df = evaluate_folders(ir_dir, vi_dir, fused_dir, metrics, convention, progress=progress)
    atomic_write_text(csv_path, df.to_csv(float_format="%.10g"))
    atomic_write_text(meta_path, json.dumps(key, indent=1) + "\n")
    return df


# ----------------------------------------------------------------------------- efficiency
def measure_efficiency(methods: Sequence[Method], size: tuple[int, int], repeats: int = 3,
                       cache: Path | None = None, say: Callable[[str], None] | None = None) -> pd.DataFrame:
    """Parameters (M), GFLOPs (multiply-add = 2, ``FlopCounterMode``: convolutions and
    matmuls; element-wise rules count 0) and median CPU latency (ms) of one
    ``model(ir, vi_y)`` forward at ``size`` (H, W), repeats interleaved across methods.

    Rows are cached in ``cache`` (JSON) by method fingerprint, size and thread count.
    """
    from .models import count_parameters
    from .models.profile import count_flops

    say = say or (lambda s: None)
    h, w = size
    threads = torch.get_num_threads()
    stored = {}
    if cache is not None and cache.is_file():
        try:
            stored = json.loads(cache.read_text())
        except ValueError:
            stored = {}

    def key(m: Method) -> str:
        return json.dumps([m.name, m.fingerprint, h, w, threads], sort_keys=True)

    rows = {m.name: stored[key(m)] for m in methods if key(m) in stored}
    todo = [m for m in methods if m.name not in rows]
    if todo:
        g = torch.Generator().manual_seed(0)
        dev = next((p.device for p in todo[0].model.parameters()), torch.device("cpu"))
        ir, vi = torch.rand(1, 1, h, w, generator=g).to(dev), torch.rand(1, 1, h, w, generator=g).to(dev)
        times: dict[str, list[float]] = {m.name: [] for m in todo}
        with torch.no_grad():
            for m in todo:
                say(f"{m.name}: FLOPs and warm-up at {h}x{w}")
                # the counted forward runs the real kernels, so it is also the warm-up
                rows[m.name] = {"params_m": count_parameters(m.model) / 1e6,
                                "gflops": count_flops(m.model, ir, vi) / 1e9}
            for r in range(repeats):
                for m in todo:  # interleaved: machine load hits every method alike
                    gc.collect()
                    t0 = time.perf_counter()
                    m.model(ir, vi)
                    times[m.name].append(time.perf_counter() - t0)
                say(f"latency run {r + 1}/{repeats}")
        for m in todo:
            rows[m.name]["latency_ms"] = 1000 * statistics.median(times[m.name])
            stored[key(m)] = rows[m.name]
        if cache is not None:
            from .io import atomic_write_text

            try:  # merge with rows another run may have written meanwhile
                stored = {**json.loads(cache.read_text()), **stored}
            except (OSError, ValueError):
                pass
            atomic_write_text(cache, json.dumps(stored, indent=1) + "\n")
    df = pd.DataFrame([rows[m.name] for m in methods], index=pd.Index([m.name for m in methods], name="method"))
    return df[list(EFFICIENCY_COLUMNS)]


def typical_size(pairs: Sequence[tuple[str, Path, Path]]) -> tuple[int, int]:
    """Median height and median width of a dataset's visible images (its "data size")."""
    from PIL import Image

    sizes = []
    for _, _, vi in pairs:
        with Image.open(vi) as im:
            sizes.append(im.size[::-1])
    return int(statistics.median(s[0] for s in sizes)), int(statistics.median(s[1] for s in sizes))


# ----------------------------------------------------------------------------- tables
def best_per_column(table: pd.DataFrame, metrics: Sequence[str]) -> dict[str, str | None]:
    """Method with the best mean per metric column (lowest for MSE and Nabf, highest otherwise)."""
    from .metrics import LOWER_IS_BETTER

    out = {}
    for c in metrics:
        col = pd.to_numeric(table[c], errors="coerce").dropna()
        out[c] = None if col.empty else (col.idxmin() if c in LOWER_IS_BETTER else col.idxmax())
    return out


def _fmt(v, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.{digits}f}" if abs(v) < 1000 else f"{v:.1f}"


def _digits(c: str) -> int:
    return {"params (M)": 3, "GFLOPs": 2, "CPU latency (ms)": 1}.get(c, 4)


def _header(c: str) -> str:
    from .metrics import LOWER_IS_BETTER

    if c in EFFICIENCY_COLUMNS.values():
        return c
    return f"{c} {'↓' if c in LOWER_IS_BETTER else '↑'}"


def format_markdown(table: pd.DataFrame, metrics: Sequence[str]) -> str:
    """Markdown table; the best value of each metric column in bold."""
    best = best_per_column(table, metrics)
    cols = list(table.columns)
    lines = ["| method | " + " | ".join(_header(c) for c in cols) + " |", "|---|" + "---:|" * len(cols)]
    for name, row in table.iterrows():
        cells = []
        for c in cols:
            s = _fmt(row[c], _digits(c))
            cells.append(f"**{s}**" if best.get(c) == name else s)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_html(table: pd.DataFrame, metrics: Sequence[str], caption: str) -> str:
    """Standalone HTML page with the table; best value per metric column bold on green."""
    import html

    best = best_per_column(table, metrics)
    head = "".join(f"<th>{html.escape(_header(c))}</th>" for c in table.columns)
    body = []
    for name, row in table.iterrows():
        cells = []
        for c in table.columns:
            s = html.escape(_fmt(row[c], _digits(c)))
            cells.append(f'<td class="best">{s}</td>' if best.get(c) == name else f"<td>{s}</td>")
        body.append(f"<tr><th>{html.escape(str(name))}</th>{''.join(cells)}</tr>")
    style = ("body{font-family:sans-serif;margin:1.5em} table{border-collapse:collapse} "
             "th,td{border:1px solid #bbb;padding:3px 7px;text-align:right} th{background:#f2f2f2} "
             "td.best{font-weight:bold;background:#d7f0d2} caption{caption-side:bottom;text-align:left;"
             "padding-top:.6em;color:#444;max-width:70em}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>fusionlab compare</title>"
            f"<style>{style}</style></head><body>\n<table>\n<caption>{html.escape(caption)}</caption>\n"
            f"<thead><tr><th>method</th>{head}</tr></thead>\n<tbody>\n" + "\n".join(body)
            + "\n</tbody></table>\n</body></html>\n")


# ----------------------------------------------------------------------------- picture
def choose_crops(pairs: Sequence[tuple[str, Path, Path]], n: int, crop: int) -> list[tuple[str, int, int, int]]:
    """``n`` pairs spread over the (sorted) dataset and, in each, the ``crop`` x ``crop``
    window with the most IR + visible gradient energy -> ``[(name, top, left, size)]``."""
    import torch.nn.functional as F
    from kornia.filters import sobel

    from .data.paired import load_pair
    from .io import to_luma

    idx = sorted(set(np.linspace(0, len(pairs) - 1, min(n, len(pairs))).round().astype(int).tolist()))
    out = []
    for i in idx:
        name, ir_p, vi_p = pairs[i]
        p = load_pair(ir_p, vi_p)
        x = torch.cat([p["ir"][None], to_luma(p["vi"][None])], 0)
        h, w = x.shape[-2:]
        s = min(crop, h, w)
        energy = sobel(x).sum(0, keepdim=True)
        pooled = F.avg_pool2d(energy, s, stride=max(1, s // 8))
        k = int(pooled.flatten().argmax())
        top, left = (k // pooled.shape[-1]) * max(1, s // 8), (k % pooled.shape[-1]) * max(1, s // 8)
        out.append((name, int(top), int(left), int(s)))
    return out


def picture_grid(crops, pairs_by_name: dict, fused_dirs: dict[str, Path], path: Path, title: str = "") -> Path:
    """PNG grid: one row per crop, columns IR, visible, then each method's fused crop."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .io import atomic_path, read_image

    cols = ["infrared", "visible"] + list(fused_dirs)
    fig, axes = plt.subplots(len(crops), len(cols), figsize=(1.9 * len(cols), 1.95 * len(crops) + 0.4),
                             squeeze=False)
    for r, (name, top, left, s) in enumerate(crops):
        _, ir_p, vi_p = pairs_by_name[name]
        files = [ir_p, vi_p] + [d / f"{name}.png" for d in fused_dirs.values()]
        for c, (label, f) in enumerate(zip(cols, files)):
            img = read_image(f)[:, top:top + s, left:left + s]
            ax = axes[r][c]
            arr = img.permute(1, 2, 0).numpy()
            ax.imshow(arr[..., 0] if arr.shape[-1] == 1 else arr, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(label, fontsize=9)
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------- driver
def dataset_label(root: Path, taken: set[str]) -> str:
    """``.../msrs/test`` -> ``msrs_test``; ``.../mydata`` -> ``mydata``; unique within ``taken``."""
    root = Path(root).resolve()
    label = f"{root.parent.name}_{root.name}" if root.name in ("test", "val", "train", "eval") else root.name
    base, i = label, 2
    while label in taken:
        label, i = f"{base}_{i}", i + 1
    return label


def compare_dataset(root: str | os.PathLike, methods: Sequence[Method], out: Path, label: str,
                    convention: str = "cddfuse", metrics: Sequence[str] | None = None, repeats: int = 3,
                    crops: int = 3, crop_size: int = 128, progress: bool = True,
                    say: Callable[[str], None] | None = None) -> dict:
    """Fuse, score, profile and tabulate one dataset (see module docstring).

    Returns a dict with ``label``, ``root``, ``size`` (H, W), ``pairs`` (count), ``table``
    (DataFrame: mean metrics + efficiency, one row per method), ``files`` (written paths).
    """
    from .data import find_pairs, resolve_layout
    from .io import atomic_write_text
    from .metrics import resolve_metrics

    say = say or (lambda s: None)
    metric_names = resolve_metrics(metrics if metrics is not None else "all")
    ir_dir, vi_dir = resolve_layout(root)
    pairs = find_pairs(ir_dir, vi_dir)
    ddir = Path(out) / label
    fused_dirs, per_method = {}, {}
    for m in methods:
        folder = ddir / "fused" / m.name
        n = fuse_method(m, pairs, folder, progress)
        say(f"{label}: {m.name}: {n} pair(s) fused, {len(pairs) - n} reused")
        fused_dirs[m.name] = folder
        per_method[m.name] = score_method(m, ir_dir, vi_dir, folder, ddir / "metrics" / f"{m.name}.csv",
                                          metric_names, convention, fused_now=n > 0, progress=progress)
    size = typical_size(pairs)
    say(f"{label}: efficiency at {size[0]}x{size[1]} ({torch.get_num_threads()} CPU thread(s))")
    eff = measure_efficiency(methods, size, repeats, cache=Path(out) / "efficiency.json", say=say)
    table = pd.DataFrame({name: df[metric_names].mean(skipna=True) for name, df in per_method.items()}).T
    table.index.name = "method"
    table = table.join(eff.rename(columns=EFFICIENCY_COLUMNS))
    caption = (f"{label}: {len(pairs)} pairs from {Path(root).resolve()}; mean metrics, convention "
               f"'{convention}' (fusionlab.metrics; MSE and Nabf lower is better, the rest higher); "
               f"best value per metric in bold. Efficiency of one model(ir, vi_y) forward at "
               f"{size[0]}x{size[1]} on CPU with {torch.get_num_threads()} thread(s): parameters, GFLOPs "
               "(multiply-add = 2; element-wise rules count 0), median latency of "
               f"{repeats} interleaved runs. Peers: authors' weights and test-time processing.")
    ddir.mkdir(parents=True, exist_ok=True)
    files = {"csv": ddir / "table.csv", "md": ddir / "table.md", "html": ddir / "table.html",
             "grid": ddir / "grid.png"}
    atomic_write_text(files["csv"], f"# {caption}\n" + table.to_csv(float_format="%.6g"))
    md = format_markdown(table, metric_names)
    methods_md = "\n".join(f"- `{m.name}`: {m.description}" for m in methods)
    atomic_write_text(files["md"], f"{md}\n\n{caption}\n\nMethods:\n{methods_md}\n")
    atomic_write_text(files["html"], format_html(table, metric_names, caption))
    say(f"{label}: picture grid")
    chosen = choose_crops(pairs, crops, crop_size)
    picture_grid(chosen, {p[0]: p for p in pairs}, fused_dirs, files["grid"],
                 title=f"{label}: the same {crop_size}px crops across methods")
    return {"label": label, "root": str(Path(root).resolve()), "size": size, "pairs": len(pairs),
            "table": table, "markdown": md, "caption": caption, "files": files}


def compare(data: Sequence[str | os.PathLike], methods: str | Sequence[str] | None, out: str | os.PathLike,
            convention: str = "cddfuse", metrics: str | Sequence[str] | None = None, student_checkpoint=None,
            peer_protocol: str = "authors", device: str | torch.device = "cpu", repeats: int = 3,
            crops: int = 3, crop_size: int = 128, progress: bool = True,
            say: Callable[[str], None] | None = None) -> list[dict]:
    """Compare ``methods`` on every dataset root in ``data``; writes ``<out>/README.md`` too.

    Raises one-line :class:`~fusionlab.errors.FusionlabError` subclasses for bad input
    (unknown method, missing weights, dataset folder without pairs, ...), all checked
    before any fusion starts.
    """
    from .data import find_pairs, resolve_layout
    from .io import atomic_write_text
    from .metrics import get_convention, resolve_metrics

    if not data:
        raise UsageError("give at least one --data ROOT")
    get_convention(convention)
    resolve_metrics(metrics if metrics is not None else "all")
    if peer_protocol not in ("authors", "fusionlab", "vif_benchmark", "author"):
        raise ConfigError(f"peer protocol {peer_protocol!r} is not one of authors, fusionlab, vif_benchmark, author")
    if repeats < 1 or crops < 1 or crop_size < 16:
        raise UsageError(f"need repeats >= 1, crops >= 1 and crop size >= 16 (got {repeats}, {crops}, {crop_size})")
    names = resolve_methods(methods)
    roots, labels = [], set()
    for root in data:
        find_pairs(*resolve_layout(root))  # fail on a bad dataset before any work
        label = dataset_label(Path(root), labels)
        labels.add(label)
        roots.append((root, label))
    built = [build_method(n, device, student_checkpoint, peer_protocol) for n in names]
    out = Path(out)
    results = [compare_dataset(root, built, out, label, convention, metrics, repeats, crops, crop_size, progress, say)
               for root, label in roots]
    parts = ["# fusionlab compare", "",
             f"Methods: {', '.join(names)}. Metrics: convention '{convention}' (fusionlab.metrics).", ""]
    for r in results:
        parts += [f"## {r['label']}", "", r["markdown"], "", r["caption"], "", f"![grid]({r['label']}/grid.png)", ""]
    parts += ["Methods:", *[f"- `{m.name}`: {m.description}" for m in built], ""]
    atomic_write_text(out / "README.md", "\n".join(parts))
    return results


__all__ = ["DEFAULT_METHODS", "Method", "resolve_methods", "build_method", "fuse_method", "score_method",
           "measure_efficiency", "typical_size", "best_per_column", "format_markdown", "format_html",
           "choose_crops", "picture_grid", "compare_dataset", "compare", "dataset_label"]
