"""The metric registry: each metric is registered where it is defined, with what reports,
tables and tests need to know about it.

A metric is ``fn(fused, ir, vi, convention) -> (B,)`` on validated float64 chunks of
``(B, 1, H, W)`` images on 0..255 (``convention``: a :class:`~.conventions.Convention`)::

    from fusionlab.metrics import register_metric

    @register_metric("Contrast", column=20, default=False, bounds=(0, 255))
    def contrast(fused, ir, vi, convention):
        return fused.flatten(1).amax(1) - fused.flatten(1).amin(1)

Attributes (:class:`Metric`): ``column`` (position in the papers' tables), ``default`` (part
of :data:`~fusionlab.metrics.METRIC_NAMES`, computed unless names are given; the others are
computed when asked for by name or with ``"all"``), ``lower_is_better``, ``bounds`` (the
documented range on 0..255, for tests), ``symmetric`` (unchanged when IR and VI are
swapped), ``min_side`` (smallest image side it accepts) and ``subsets``: the named groups
reports use (:func:`metric_names`):

==============  ==============================================================================
``paper``       the DTPF paper's ablation tables: EN, VIF, Qabf
``headline``    ``paper`` + SSIM: what validation logs and the walkthroughs score
``summary``     the nine reference-based and no-reference scores widgets and the demo show
==============  ==============================================================================
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from ..registry import Registry

#: name -> :class:`Metric` (a plain function registered with ``METRICS.register`` works too)
METRICS = Registry("metric")
SUBSETS = ("paper", "headline", "summary")


@dataclass(frozen=True)
class Metric:
    """One registered metric (see the module docstring); calling it calls ``fn``."""

    name: str
    fn: Callable[..., Any]
    column: float = math.inf
    default: bool = True
    lower_is_better: bool = False
    bounds: tuple[float, float] = (-math.inf, math.inf)
    symmetric: bool = True
    min_side: int = 2
    subsets: frozenset[str] = field(default_factory=frozenset)

    def __call__(self, fused, ir, vi, convention):
        return self.fn(fused, ir, vi, convention)


def register_metric(name: str, *, column: float = math.inf, default: bool = True, lower_is_better: bool = False,
                    bounds: tuple[float, float] = (-math.inf, math.inf), symmetric: bool = True, min_side: int = 2,
                    subsets: tuple[str, ...] = ()) -> Callable:
    """Decorator: register ``fn(fused, ir, vi, convention) -> (B,)`` as metric ``name``."""
    unknown = set(subsets) - set(SUBSETS)
    if unknown:
        raise ValueError(f"metric {name!r}: unknown subset(s) {sorted(unknown)} (known: {', '.join(SUBSETS)})")

    def deco(fn: Callable) -> Callable:
        METRICS.register(name, obj=Metric(name, fn, column, default, lower_is_better, tuple(bounds), symmetric,
                                          min_side, frozenset(subsets)))
        return fn

    return deco


def metric_info(name: str) -> Metric:
    """The :class:`Metric` of ``name``; a plain registered function gets the defaults of an
    extra metric (not default, higher is better, unbounded)."""
    obj = METRICS.get(name)
    return obj if isinstance(obj, Metric) else Metric(name, obj, default=False)


def metric_names(subset: str | None = None) -> tuple[str, ...]:
    """Registered metric names in table order: ``None`` = the default set, ``"extra"`` = the
    others, ``"all"`` = both, or one of :data:`SUBSETS`."""
    if subset == "all":
        return metric_names() + metric_names("extra")
    infos = [metric_info(n) for n in METRICS.names()]
    if subset is None:
        keep = [m for m in infos if m.default]
    elif subset == "extra":
        keep = [m for m in infos if not m.default]
    elif subset in SUBSETS:
        keep = [m for m in infos if subset in m.subsets]
    else:
        raise ValueError(f"unknown metric subset {subset!r} (known: {', '.join(('extra', 'all') + SUBSETS)})")
    return tuple(m.name for m in sorted(keep, key=_order))


def _order(m: Metric) -> tuple[float, str]:
    return (m.column, m.name)


def lower_is_better(name: str) -> bool:
    """True for metrics where a smaller value is better (MSE, Nabf); unknown names: False."""
    return name in METRICS and metric_info(name).lower_is_better
