"""Efficiency of the model variants: parameters, FLOPs/MACs, peak memory, CPU latency.

One function, :func:`profile_models`, measures several variants *side by side in one run*
(latency repeats are interleaved: teacher, student, teacher, student, ...) so that their
ratios are meaningful on a shared, noisy machine. ``fusionlab profile`` and
``benchmarks/model_efficiency.py`` both print its table. :func:`paired_ratio` estimates one
latency ratio with an interval, for a goal judged on it.

Conventions: FLOPs from ``torch.utils.flop_counter.FlopCounterMode`` (a multiply-add = 2
FLOPs; convolutions, matmuls and attention); GMACs = GFLOPs / 2 (what fusion papers call
"FLOPs" when they use thop). Peak memory = weights + the largest amount of tensor memory
alive during one forward pass (CPU allocator events of ``torch.profiler``, or
``torch.cuda.max_memory_allocated`` on CUDA). Latency = median wall time of a
``torch.no_grad()`` forward of one ``H x W`` pair with random weights; CPU time = the
process CPU seconds of the same forwards (all threads; on a machine shared with other jobs
it is the steadier figure, wall time includes waiting for a core).
"""
from __future__ import annotations

import gc
import math
import statistics
import time
from typing import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from .net import count_parameters
from .zoo import create_model, model_config, model_kind


@dataclass
class ProfileRow:
    model: str
    params_m: float
    gflops: float | None = None
    gmacs: float | None = None
    peak_mem_mb: float | None = None
    latency_s: float | None = None
    latency_min_s: float | None = None
    latency_max_s: float | None = None
    cpu_s: float | None = None
    latencies_s: list | None = None  # every timed run, in order (repeat r of every model ran side by side)


def _inputs(cfg, size, device):
    g = torch.Generator().manual_seed(0)
    h, w = size
    ir, vi = torch.rand(1, 1, h, w, generator=g), torch.rand(1, 1, h, w, generator=g)
    text_dim = getattr(cfg, "text_dim", None)  # peers and baselines have no config and no text
    text = torch.randn(1, text_dim, generator=g) if text_dim else None
    return ir.to(device), vi.to(device), (text.to(device) if text is not None else None)


def _cpu_sdpa_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """``softmax(q k^T) v``: ``2 B H L S (d_qk + d_v)`` FLOPs (softmax and scaling not counted)."""
    b, h, l, d_qk = query_shape
    s, d_v = key_shape[-2], value_shape[-1]
    return 2 * b * h * l * s * (d_qk + d_v)


def _mkldnn_conv_flops(x_shape, w_shape, bias, padding, stride, dilation, groups, *args, out_shape=None,
                       **kwargs) -> int:
    """A direct ``aten.mkldnn_convolution`` call (the fast kernels' 1x1 convs): as a convolution.
    Note its argument order (padding before stride) differs from ``aten.convolution``."""
    from torch.utils.flop_counter import conv_flop_count

    return conv_flop_count(x_shape, w_shape, out_shape, transposed=False)


def _flop_formulas() -> dict:
    """FLOP formulas that ``FlopCounterMode`` lacks: without them a model that calls
    ``F.scaled_dot_product_attention`` on CPU (the flash kernel) or ``aten.mkldnn_convolution``
    directly (as the fast kernels do) counts those ops as zero - the earlier, too low counts
    of the student. :func:`count_flops` also runs the literal block code, which uses neither;
    these keep any other model honest. (``FlopCounterMode`` passes them shapes, not tensors.)"""
    aten = torch.ops.aten
    formulas = {}
    if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu"):
        formulas[aten._scaled_dot_product_flash_attention_for_cpu] = _cpu_sdpa_flops
    if hasattr(aten, "mkldnn_convolution"):
        formulas[aten.mkldnn_convolution] = _mkldnn_conv_flops
    return formulas


def count_flops(model, ir, vi, text=None) -> int:
    """FLOPs of one forward (multiply-add = 2), via ``FlopCounterMode`` plus the formulas of
    :func:`_flop_formulas` (CPU flash attention, direct oneDNN convolutions).

    Counted on the literal block code (``kernels.use_fast_kernels(False)``): the FLOPs of
    the model's definition, the same whichever kernels run it. (The fast CPU kernels do
    ~20 % more arithmetic - e.g. the relative-position bias as a GEMM - to move less memory.)
    """
    from torch.utils.flop_counter import FlopCounterMode

    from . import kernels

    with torch.no_grad(), kernels.use_fast_kernels(False), \
            FlopCounterMode(display=False, custom_mapping=_flop_formulas()) as fc:
        model(ir, vi, text)
    return int(fc.get_total_flops())


def peak_memory_bytes(model, ir, vi, text=None) -> int:
    """Weights + peak live tensor memory of one forward pass, in bytes."""
    weights = sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))
    if ir.device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(ir.device)
        base = torch.cuda.memory_allocated(ir.device)
        with torch.no_grad():
            model(ir, vi, text)
        torch.cuda.synchronize()
        return int(torch.cuda.max_memory_allocated(ir.device) - base + weights)
    from torch.profiler import ProfilerActivity, profile

    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        model(ir, vi, text)
    # allocations are attributed to the op that made them (self memory, children excluded),
    # frees outside any op are "[memory]" events: summing self usage in time order gives
    # the live-memory curve
    events = sorted((e.time_range.start, e.self_cpu_memory_usage) for e in prof.events()
                    if e.self_cpu_memory_usage)
    live = peak = 0
    for _, delta in events:  # allocations (+) and frees (-) in time order
        live += delta
        peak = max(peak, live)
    return int(peak + weights)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def profile_models(names, size=(480, 640), repeats: int = 3, warmup: int = 1, device: str = "cpu",
                   threads: int | None = None, flops: bool = True, memory: bool | Sequence[str] = True,
                   latency: bool = True, progress=None, tune_allocator: bool = True,
                   extra: dict | None = None, **overrides) -> list[ProfileRow]:
    """Measure the variants ``names`` at ``size`` (H, W) side by side.

    Args:
        names: model names (see :func:`~fusionlab.models.list_models`); peers (published
            weights) and baselines too, ``overrides`` apply to FusionNet variants only.
        extra: more ``{row name: module}`` to measure in the same interleaved run, any module
            called as ``module(ir, vi)`` (a baseline network, an exported or compiled model).
            FLOPs and memory are left empty for modules that are not plain torch code.
        size: input ``(H, W)``.
        repeats: timed forwards per model (interleaved between models); the median is reported.
        warmup: untimed forwards per model first (allocator and oneDNN warm-up).
        device: ``"cpu"`` or ``"cuda"``.
        threads: ``torch.set_num_threads`` for the run (restored afterwards); None keeps it.
        flops / memory / latency: which measurements to make (parameters are always counted);
            ``memory`` may also name the rows to measure (the profiler's memory pass costs
            minutes for big models).
        progress: optional callable receiving one-line status strings.
        tune_allocator: call :func:`~fusionlab.models.runtime.tune_cpu_allocator` first
            (steady-state timings without page-fault storms; process-wide, see there).
        overrides: applied to every model (e.g. ``fusion="concat_conv1x1"``).

    Returns:
        one :class:`ProfileRow` per name, in order.
    """
    dev = torch.device(device)
    if tune_allocator and dev.type == "cpu":
        from .runtime import tune_cpu_allocator

        tune_cpu_allocator()
    say = progress or (lambda s: None)
    old_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(int(threads))
    try:
        rows, models = [], {}
        for name in names:  # validate names/options before heavy work
            if model_kind(name) == "fusionnet":
                model_config(name, **overrides)
        built = []
        for name in names:
            torch.manual_seed(0)
            m = create_model(name, **(overrides if model_kind(name) == "fusionnet" else {})).to(dev).eval()
            built.append((name, m, _inputs(getattr(m, "config", None), size, dev)))
        for name, m in (extra or {}).items():
            built.append((name, m, _inputs(getattr(m, "config", None), size, dev)))
        for name, m, x in built:
            row = ProfileRow(name, round(count_parameters(m) / 1e6, 3))
            plain = any(True for _ in m.parameters())  # torch code (not an ONNX/TorchScript wrapper)
            if flops and plain:
                say(f"{name}: counting FLOPs")
                f = count_flops(m, *x)
                row.gflops, row.gmacs = round(f / 1e9, 3), round(f / 2e9, 3)
            if plain and (memory is True or (not isinstance(memory, bool) and name in memory)):
                say(f"{name}: measuring peak memory")
                row.peak_mem_mb = round(peak_memory_bytes(m, *x) / 2 ** 20, 1)
            rows.append(row)
            models[name] = (m, x)
        names = [name for name, _, _ in built]
        if latency:
            times = {n: [] for n in names}
            cpu = {n: [] for n in names}
            with torch.no_grad():
                for name in names:
                    m, x = models[name]
                    for _ in range(warmup):
                        say(f"{name}: warm-up")
                        m(*x)
                for r in range(repeats):
                    for name in names:  # interleaved: machine load hits all models alike
                        m, x = models[name]
                        gc.collect()
                        _sync(dev)
                        c0, t0 = time.process_time(), time.perf_counter()
                        m(*x)
                        _sync(dev)
                        times[name].append(time.perf_counter() - t0)
                        cpu[name].append(time.process_time() - c0)
                        say(f"{name}: run {r + 1}/{repeats} {times[name][-1]:.2f} s")
            for row in rows:
                ts = times[row.model]
                row.latency_s = round(statistics.median(ts), 3)
                row.latency_min_s, row.latency_max_s = round(min(ts), 3), round(max(ts), 3)
                row.latencies_s = [round(t, 4) for t in ts]
                row.cpu_s = round(statistics.median(cpu[row.model]), 3)
        return rows
    finally:
        torch.set_num_threads(old_threads)


@dataclass
class PairedRatio:
    """Latency of ``a`` over ``b`` (:func:`paired_ratio`): the geometric mean of the per-pair
    ratios, its bootstrap interval ``[low, high]``, every pair's ratio and both medians."""
    ratio: float
    low: float
    high: float
    ratios: list[float] = field(default_factory=list)
    a_median_s: float = math.nan
    b_median_s: float = math.nan

    def __str__(self) -> str:
        return (f"{self.ratio:.3f} (95 % interval {self.low:.3f}-{self.high:.3f}, {len(self.ratios)} pairs; "
                f"medians {self.a_median_s:.3f} / {self.b_median_s:.3f} s)")


def paired_ratio(run_a: Callable[[], object], run_b: Callable[[], object], repeats: int = 15, warmup: int = 1,
                 n_boot: int = 4000, level: float = 0.95, seed: int = 0,
                 clock: Callable[[], float] = time.perf_counter) -> PairedRatio:
    """How many times longer ``run_a()`` takes than ``run_b()``, on a machine whose speed drifts.

    Each of ``repeats`` pairs times both calls back to back, in alternating order (a b, b a,
    ...) so that a drift within a pair favours neither side; the estimate is the geometric
    mean of the pairs' ratios, with a percentile bootstrap interval (``n_boot`` resamples of
    the pairs, deterministic for ``seed``). A ratio of medians taken over separate runs moved
    by +-0.3 between runs of the same code on this project's 2-core host; the paired estimate
    says how far to trust it.

    Args:
        run_a, run_b: the two computations (e.g. ``lambda: model(ir, vi)`` under no_grad).
        warmup: untimed calls of each first.
        clock: the timer (seconds); tests pass a fake one.
    """
    if repeats < 2:
        raise ValueError(f"paired_ratio needs at least 2 pairs, got repeats={repeats}")
    for _ in range(warmup):
        run_a(), run_b()
    ta, tb = [], []
    for r in range(repeats):
        for side in ((0, 1) if r % 2 == 0 else (1, 0)):
            gc.collect()
            t0 = clock()
            (run_a if side == 0 else run_b)()
            (ta if side == 0 else tb).append(clock() - t0)
    logs = np.log(np.asarray(ta)) - np.log(np.asarray(tb))
    rng = np.random.default_rng(seed)
    means = logs[rng.integers(0, len(logs), size=(n_boot, len(logs)))].mean(axis=1)
    alpha = (1.0 - level) / 2
    return PairedRatio(ratio=float(np.exp(logs.mean())), low=float(np.exp(np.quantile(means, alpha))),
                       high=float(np.exp(np.quantile(means, 1 - alpha))), ratios=[float(v) for v in np.exp(logs)],
                       a_median_s=statistics.median(ta), b_median_s=statistics.median(tb))


COLUMNS = {"params_m": "params (M)", "gflops": "GFLOPs", "gmacs": "GMACs", "peak_mem_mb": "peak mem (MB)",
           "latency_s": "median latency (s)", "latency_min_s": "min (s)", "latency_max_s": "max (s)",
           "cpu_s": "CPU time (s)"}


def format_table(rows: list[ProfileRow], reference: str | None = None) -> str:
    """Markdown table of :func:`profile_models` rows; ``reference`` (e.g. the teacher's name)
    adds ratio columns relative to that model."""
    dicts = [asdict(r) for r in rows]
    cols = [c for c in COLUMNS if any(d[c] is not None for d in dicts)]
    ref = next((d for d in dicts if d["model"] == reference), None)
    ratios = [c for c in ("params_m", "gflops", "latency_s") if ref is not None and c in cols and ref[c]]
    head = ["model"] + [COLUMNS[c] for c in cols] + [f"{COLUMNS[c].split(' (')[0]} / {reference}" for c in ratios]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for d in dicts:
        cells = [d["model"]] + ["" if d[c] is None else f"{d[c]:g}" for c in cols]
        cells += [f"{d[c] / ref[c]:.3f}" if d[c] is not None else "" for c in ratios]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def rows_to_dicts(rows: list[ProfileRow]) -> list[dict]:
    return [asdict(r) for r in rows]
