"""One entry point for the whole metric suite: tensors, files and folders.

    from fusionlab.metrics import evaluate, evaluate_files, evaluate_folders, METRIC_NAMES
    evaluate(ir, vi, fused)                 # (H, W)/(1, H, W) -> dict; (B, 1, H, W) -> DataFrame
    evaluate_files("ir.png", "vi.png", "fused.png")                  # dict, papers' reading
    evaluate_folders("ir/", "vi/", "fused/", mean_row=True)          # DataFrame, one row per image

Metrics (the ``METRICS`` registry of :mod:`.registry`, filled where each metric is defined;
names as papers print them): EN SD SF AG MI SCD VIF Qabf SSIM MSE CC PSNR (``METRIC_NAMES``,
the default set) and Nabf (``EXTRA_METRICS``). Higher is better for all but MSE and Nabf
(``LOWER_IS_BETTER``). Inputs are ``(B, 1, H, W)`` float tensors on
0..255 (CPU or CUDA); :func:`~.conventions.to_metric_scale` converts [0, 1] RGB/gray.
"""
from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import torch

from ..errors import ConfigError, EmptyInputError, InvalidTensorError, MissingPairError, ShapeMismatchError
from ..io import as_batch
from . import correlation, information, qabf, ssim, statistics, vif  # noqa: F401  (they register the metrics)
from ._common import check_images, trusted_inputs
from .conventions import Convention, get_convention, read_gray, to_metric_scale
from .registry import METRICS, metric_info, metric_names

#: the 12 metrics fusion papers report, in the order of their tables (the registry's default set)
METRIC_NAMES: tuple[str, ...] = metric_names()
#: computed only when asked for by name (``metrics=[..., "Nabf"]`` or ``metrics="all"``)
EXTRA_METRICS: tuple[str, ...] = metric_names("extra")
#: metrics where lower is better (reports and plots need to know)
LOWER_IS_BETTER: frozenset[str] = frozenset(n for n in METRICS if metric_info(n).lower_is_better)
#: the DTPF paper's ablation tables (EN, VIF, Qabf)
PAPER_METRICS: tuple[str, ...] = metric_names("paper")
#: the paper's metrics and SSIM: what validation logs and the walkthroughs score
HEADLINE_METRICS: tuple[str, ...] = metric_names("headline")
#: the nine scores widgets and the demo show
SUMMARY_METRICS: tuple[str, ...] = metric_names("summary")

#: images per chunk are limited to about this many pixels: the metrics are memory-bound, and
#: one 640x480 image at a time keeps the ~20 MB of float64 maps near the CPU caches
#: (measured: 2x less CPU time than chunks of 4 images, 2.7x less than 8)
CHUNK_PIXELS = 400_000
#: below this many pixels per batch everything runs in the calling thread, untouched:
#: switching torch's thread count costs more than the metrics of a few small images
POOL_MIN_PIXELS = 250_000


def resolve_metrics(metrics: str | Iterable[str] | None = None) -> list[str]:
    """``None`` -> the 12 :data:`METRIC_NAMES`; ``"all"`` -> those + extras; a comma string or
    list -> validated names (case-insensitive, e.g. ``"qabf"``), in the order given."""
    if metrics is None:
        return list(metric_names())
    if isinstance(metrics, str):
        if metrics.strip().lower() == "all":
            return list(metric_names("all"))
        metrics = [m for m in metrics.split(",") if m.strip()]
    by_lower = {n.lower(): n for n in METRICS.names()}
    out = []
    for m in metrics:
        name = by_lower.get(str(m).strip().lower())
        if name is None:
            raise ConfigError(f"unknown metric {m!r} (known: {', '.join(metric_names('all'))})")
        if name not in out:
            out.append(name)
    if not out:
        raise ConfigError("no metric selected (known: " + ", ".join(metric_names("all")) + ")")
    return out


def _warn_if_unit_range(*xs: torch.Tensor) -> None:
    if all(float(x.max()) <= 1.0 for x in xs) and any(bool((x != x.round()).any()) for x in xs):
        warnings.warn("metric inputs look like [0, 1] images; metrics expect 0..255 "
                      "(use fusionlab.metrics.to_metric_scale)", stacklevel=3)


def compute_metrics(ir: torch.Tensor, vi: torch.Tensor, fused: torch.Tensor,
                    metrics: str | Iterable[str] | None = None,
                    convention: str | Convention = "cddfuse", threads: int | None = None
                    ) -> dict[str, torch.Tensor]:
    """Batched core: every requested metric for every image of a batch.

    Work is split into chunks of about one 640x480 image (:data:`CHUNK_PIXELS`) and, per
    chunk, into VIF (about half the time) and the rest. On CPU, for batches of at least
    :data:`POOL_MIN_PIXELS` pixels, these tasks run on ``threads`` worker threads, each
    with ONE intra-op torch thread (``torch.set_num_threads`` is restored afterwards). Why not torch's own parallelism: the metrics are thousands of small,
    memory-bound ops, and on a shared machine a 2-thread OpenMP region waits for a
    descheduled thread at every op; measured 10x slower than one thread under load,
    while independent tasks never wait for each other.

    Args:
        ir, vi, fused: ``(B, 1, H, W)`` float tensors on 0..255 (same shape and device).
        metrics: see :func:`resolve_metrics`. convention: ``"cddfuse"`` | ``"matlab"`` | Convention.
        threads: CPU worker threads (default ``torch.get_num_threads()``); ignored on CUDA.

    Returns:
        ``{name: (B,) float64 tensor}`` on the inputs' device, in the requested order.
    """
    names = resolve_metrics(metrics)
    conv = get_convention(convention)
    ir, vi, fused = check_images(ir, vi, fused, names=("ir", "vi", "fused"))
    _warn_if_unit_range(ir, vi, fused)
    b, _, h, w = fused.shape
    step = max(1, CHUNK_PIXELS // (h * w))
    groups = [g for g in ([n for n in names if n == "VIF"], [n for n in names if n != "VIF"]) if g]
    tasks = [(i, g) for i in range(0, b, step) for g in groups]

    def run(task) -> dict[str, torch.Tensor]:
        i, group = task
        with torch.no_grad(), trusted_inputs():  # both are thread-local: set in the worker
            # one float64 copy per chunk, shared by the metrics (they reduce in float64)
            f, a, v = (t[i:i + step].to(torch.float64) for t in (fused, ir, vi))
            return {n: METRICS.get(n)(f, a, v, conv).to(torch.float64) for n in group}

    threads = torch.get_num_threads() if threads is None else int(threads)
    if fused.device.type != "cpu" or fused.numel() < POOL_MIN_PIXELS:
        results = [run(t) for t in tasks]  # GPU, or too small for threads to pay off
    elif threads <= 1:
        with _one_intra_op_thread():
            results = [run(t) for t in tasks]
    else:
        with _one_intra_op_thread(), concurrent.futures.ThreadPoolExecutor(min(threads, len(tasks))) as pool:
            results = list(pool.map(run, tasks))
    parts: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    for res in results:  # tasks are in chunk order, so concatenation keeps the image order
        for n, v in res.items():
            parts[n].append(v)
    return {n: torch.cat(p) for n, p in parts.items()}


@contextlib.contextmanager
def _one_intra_op_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def evaluate(ir, vi, fused, metrics: str | Iterable[str] | None = None,
             convention: str | Convention = "cddfuse"):
    """Fusion metrics of images already on the 0..255 scale.

    Args:
        ir, vi, fused: tensors/arrays ``(H, W)`` or ``(1, H, W)`` (one image) or
            ``(B, 1, H, W)`` (a batch), on 0..255.
        metrics: ``None`` (the 12 of :data:`METRIC_NAMES`), ``"all"``, or names.
        convention: ``"cddfuse"`` (default, reproduces the CDDFuse/DTPF tables) or ``"matlab"``.

    Returns:
        one image: ``{name: float}`` (NaN where undefined, e.g. SCD when F equals a source);
        a batch: ``pandas.DataFrame`` with one row per image and one column per metric.
    """
    single = torch.as_tensor(fused).ndim < 4
    vals = compute_metrics(as_batch(ir, "ir"), as_batch(vi, "vi"), as_batch(fused, "fused"), metrics, convention)
    if single:
        return {k: float(v[0]) for k, v in vals.items()}
    import pandas as pd

    return pd.DataFrame({k: v.cpu().numpy() for k, v in vals.items()})


# ----------------------------------------------------------------------------- files
def _read_triplet(ir_path, vi_path, fused_path, conv: Convention) -> tuple[torch.Tensor, ...]:
    ir, vi, fused = (read_gray(p, conv) for p in (ir_path, vi_path, fused_path))
    for t, p, what in ((vi, vi_path, "visible"), (fused, fused_path, "fused")):
        if t.shape != ir.shape:
            raise ShapeMismatchError(f"{p}: {what} image is {t.shape[-1]}x{t.shape[-2]} but infrared "
                                     f"{ir_path} is {ir.shape[-1]}x{ir.shape[-2]}")
    return ir, vi, fused


def fusion_scores(ir, vi, fused, metrics: str | Iterable[str] | None = SUMMARY_METRICS,
                  convention: str | Convention = "cddfuse") -> dict[str, float]:
    """The metrics of ONE fusion given as images in [0, 1]: ``{name: float}``.

    ``ir``, ``vi``, ``fused``: ``(1|3, H, W)`` or ``(1, 1|3, H, W)`` tensors (colour is read as
    gray the papers' way, :func:`~.conventions.to_metric_scale`). ``metrics``: default the nine
    summary scores (:data:`SUMMARY_METRICS`); None = the 12 of :data:`METRIC_NAMES`.
    """
    ir, vi, fused = (to_metric_scale(as_batch(x).float(), convention) for x in (ir, vi, fused))
    vals = compute_metrics(ir, vi, fused, metrics=list(metrics) if metrics is not None else None, convention=convention)
    return {k: float(v[0]) for k, v in vals.items()}


def evaluate_files(ir_path: str | os.PathLike, vi_path: str | os.PathLike, fused_path: str | os.PathLike,
                   metrics: str | Iterable[str] | None = None, convention: str | Convention = "cddfuse",
                   device: str | torch.device | None = "cpu") -> dict[str, float]:
    """Metrics of one fused image file, reading all three files as the convention does
    (:func:`~.conventions.read_gray`: 8-bit, luma, rounded).

    Raises:
        ImageReadError: a file is missing/corrupt. ShapeMismatchError: sizes differ (names the file).
    """
    conv = get_convention(convention)
    ir, vi, fused = (t.to(device) for t in _read_triplet(ir_path, vi_path, fused_path, conv))
    try:
        vals = compute_metrics(ir, vi, fused, metrics, conv)
    except InvalidTensorError as e:  # e.g. too small for a metric's window: say which file
        raise _with_file(e, ir_path, vi_path, fused_path) from None
    return {k: float(v[0]) for k, v in vals.items()}


def _with_file(e: InvalidTensorError, ir_path, vi_path, fused_path) -> InvalidTensorError:
    """check_images names tensors ("ir: image 1x1 is too small ..."); a file user needs the path."""
    msg = str(e)
    for key, p in (("ir", ir_path), ("vi", vi_path), ("fused", fused_path)):
        if msg.startswith(f"{key}: "):
            return InvalidTensorError(f"{p}: {msg[len(key) + 2:]}")
    return InvalidTensorError(f"{fused_path}: {msg}")


def match_triplets(ir_dir: str | os.PathLike, vi_dir: str | os.PathLike,
                   fused_dir: str | os.PathLike) -> list[tuple[str, Path, Path, Path]]:
    """Match IR, VI and fused files by stem -> sorted ``[(name, ir, vi, fused)]``.

    Raises:
        EmptyInputError: a folder is missing or has no images.
        MissingPairError: a file lacks a partner in another folder (message names it).
    """
    from ..data import find_pairs
    from ..io import list_images

    pairs = find_pairs(ir_dir, vi_dir)
    fdir = Path(fused_dir)
    if not fdir.is_dir():
        raise EmptyInputError(f"{fdir}: fused folder not found")
    fused: dict[str, Path] = {}
    for f in list_images(fdir):
        if f.stem in fused:
            raise MissingPairError(f"{f}: ambiguous, {fused[f.stem].name} has the same name stem")
        fused[f.stem] = f
    if not fused:
        raise EmptyInputError(f"{fdir}: no image files in the fused folder")
    names = {p[0] for p in pairs}
    for name, ir_p, _ in pairs:
        if name not in fused:
            raise MissingPairError(f"{ir_p}: no fused partner named {name}.* in {fdir}")
    for stem, f in sorted(fused.items()):
        if stem not in names:
            raise MissingPairError(f"{f}: no infrared/visible partner named {stem}.* in {ir_dir} and {vi_dir}")
    return [(n, ir_p, vi_p, fused[n]) for n, ir_p, vi_p in pairs]


def _prefetch(fn, items: Sequence, depth: int) -> Iterable:
    """Yield ``fn(item)`` in order while up to ``depth`` later items load in threads
    (PIL decoding releases the GIL, so reading overlaps the metric computation)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        queue: collections.deque = collections.deque()
        it = iter(items)
        for item in it:
            queue.append(pool.submit(fn, item))
            if len(queue) >= depth:
                break
        for item in it:
            yield queue.popleft().result()
            queue.append(pool.submit(fn, item))
        while queue:
            yield queue.popleft().result()


def evaluate_folders(ir_dir: str | os.PathLike, vi_dir: str | os.PathLike, fused_dir: str | os.PathLike,
                     metrics: str | Iterable[str] | None = None, convention: str | Convention = "cddfuse",
                     batch_size: int = 8, device: str | torch.device | None = "cpu", progress: bool = True,
                     mean_row: bool = False):
    """Metrics of every fused image in a folder, pairs matched by file stem.

    Consecutive same-size images are evaluated as one batch; a tqdm bar goes to stderr.

    Args:
        ir_dir, vi_dir, fused_dir: folders; ``fused_dir/<stem>.*`` must exist for every
            ``ir_dir/<stem>.*`` / ``vi_dir/<stem>.*`` pair and vice versa.
        mean_row: append a row ``"mean"`` (NaN entries, e.g. an undefined SCD, are skipped).

    Returns:
        ``pandas.DataFrame`` indexed by image name (index name ``"name"``), one column per metric.

    Raises:
        MissingPairError, EmptyInputError, ShapeMismatchError, ImageReadError (one line, names the file).
    """
    import pandas as pd
    from tqdm.auto import tqdm

    names_m = resolve_metrics(metrics)
    conv = get_convention(convention)
    triplets = match_triplets(ir_dir, vi_dir, fused_dir)
    paths = {t[0]: t[1:] for t in triplets}
    rows: dict[str, dict[str, float]] = {}
    batch: list[tuple[str, tuple[torch.Tensor, ...]]] = []

    def flush():
        if not batch:
            return
        ir, vi, fu = (torch.cat([t[1][k] for t in batch]).to(device) for k in range(3))
        try:
            vals = compute_metrics(ir, vi, fu, names_m, conv)
        except InvalidTensorError as e:  # same-size batch: naming its first image names the size
            raise _with_file(e, *paths[batch[0][0]]) from None
        for i, (name, _) in enumerate(batch):
            rows[name] = {k: float(v[i]) for k, v in vals.items()}
        bar.update(len(batch))
        batch.clear()

    load = lambda t: (t[0], _read_triplet(t[1], t[2], t[3], conv))  # noqa: E731
    with tqdm(total=len(triplets), desc="evaluate", unit="img", file=sys.stderr, disable=not progress,
              dynamic_ncols=True) as bar:
        for name, imgs in _prefetch(load, triplets, depth=max(2, batch_size)):
            if batch and (imgs[0].shape != batch[0][1][0].shape or len(batch) >= batch_size):
                flush()
            batch.append((name, imgs))
        flush()
    df = pd.DataFrame.from_dict(rows, orient="index")[names_m]
    df.index.name = "name"
    if mean_row:
        df.loc["mean"] = df.mean(skipna=True)
    return df


def to_jsonable(values: dict[str, float]) -> dict[str, float | None]:
    """NaN/inf -> None so the dict is valid JSON (``json.dumps`` would write bare NaN)."""
    return {k: (float(v) if v is not None and math.isfinite(v) else None) for k, v in values.items()}


# ----------------------------------------------------------------------------- module
class FusionMetrics(torch.nn.Module):
    """Thin module wrapper for training/validation loops.

    Args:
        metrics: names (default the 12 of :data:`METRIC_NAMES`).
        convention: ``"cddfuse"`` | ``"matlab"`` | Convention.
        unit_range: inputs are [0, 1] (gray or RGB) and go through
            :func:`~.conventions.to_metric_scale` first (quantised like a saved PNG).

    ``forward(ir, vi, fused) -> {name: (B,) float64}``; no gradients.
    """

    def __init__(self, metrics: str | Iterable[str] | None = None, convention: str | Convention = "cddfuse",
                 unit_range: bool = True):
        super().__init__()
        self.metrics = resolve_metrics(metrics)
        self.convention = get_convention(convention)
        self.unit_range = unit_range

    @torch.no_grad()
    def forward(self, ir: torch.Tensor, vi: torch.Tensor, fused: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.unit_range:
            ir, vi, fused = (to_metric_scale(t, self.convention) for t in (ir, vi, fused))
        return compute_metrics(ir, vi, fused, self.metrics, self.convention)

    def extra_repr(self) -> str:
        return f"metrics={self.metrics}, convention={self.convention.name!r}, unit_range={self.unit_range}"
