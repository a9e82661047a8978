"""Seaborn plots of ablation results (one figure per question).

* :func:`metric_plot` - each metric per variant: mean ± std over seeds (error bars) with
  the individual seeds as dots. Answers "how good is each variant, and how noisy?".
* :func:`delta_plot` - difference of each variant to the reference row, measured (per-seed
  differences, mean ± std) beside the paper's. Answers "does the paper's trend reproduce?"
  even when the absolute numbers come from other data (e.g. the synthetic ``ci`` set).

Both take the ``results.csv`` table (:func:`fusionlab.ablate.read_results`) and return a
matplotlib Figure (nothing is shown or saved here).
"""
from __future__ import annotations

import math

import pandas as pd

from ..ablate.report import _row_order, reference_label
from ..ablate.results import metric_columns


def long_results(df: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """ok runs as a long table: ``label, seed, metric, value`` (row order kept)."""
    metrics = [m for m in (metrics or metric_columns(df)) if m in df.columns]
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    long = ok.melt(id_vars=["label", "seed"], value_vars=metrics, var_name="metric", value_name="value")
    long["value"] = pd.to_numeric(long["value"], errors="coerce")
    return long.dropna(subset=["value"])


def _height(n_rows: int) -> float:
    return max(2.2, 0.45 * n_rows + 1.0)


def metric_plot(df: pd.DataFrame, metrics: list[str] | None = None, title: str | None = None):
    """One panel per metric: variant (y) vs value (x), mean ± std over seeds, seeds as dots."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    metrics = metrics or metric_columns(df)
    order = _row_order(df)
    long = long_results(df, metrics)
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics) + 1.5, _height(len(order))),
                             sharey=True, squeeze=False)
    for ax, m in zip(axes[0], metrics):
        sub = long[long["metric"] == m]
        if sub.empty:
            ax.set_title(f"{m} (no ok runs)")
            continue
        sns.stripplot(data=sub, x="value", y="label", order=order, ax=ax, color="0.55", size=4, jitter=0.12)
        sns.pointplot(data=sub, x="value", y="label", order=order, ax=ax, errorbar="sd", capsize=0.25,
                      linestyle="none", color="C0", markers="D")
        ax.set_title(m)
        ax.set_xlabel(f"{m} (mean ± sd over seeds)")
        ax.set_ylabel("")
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title or "Measured metrics per variant", y=1.0)
    fig.tight_layout()
    return fig


def seed_deltas(df: pd.DataFrame, metrics: list[str] | None = None, reference: str | None = None) -> pd.DataFrame:
    """Long table ``label, metric, source, delta``: measured per-seed differences to the
    reference row (same seed), and the paper's difference (one value) when known."""
    metrics = metrics or metric_columns(df)
    reference = reference or reference_label(df)
    ok = df[df["status"] == "ok"] if "status" in df.columns else df
    recs = []
    papers = df.drop_duplicates("label").set_index("label")
    for m in metrics:
        if m not in ok.columns:
            continue
        wide = ok.pivot_table(index="seed", columns="label", values=m, aggfunc="mean")
        for label in _row_order(df):
            if label in wide and reference in wide:
                for d in (wide[label] - wide[reference]).dropna():
                    recs.append({"label": label, "metric": m, "source": "measured", "delta": float(d)})
            col = f"paper_{m}"
            if col in papers.columns:
                p, r = papers[col].get(label), papers[col].get(reference)
                if p is not None and r is not None and not (math.isnan(p) or math.isnan(r)):
                    recs.append({"label": label, "metric": m, "source": "paper", "delta": float(p - r)})
    return pd.DataFrame(recs, columns=["label", "metric", "source", "delta"])


def delta_plot(df: pd.DataFrame, metrics: list[str] | None = None, reference: str | None = None,
               title: str | None = None):
    """One panel per metric: Δ to the reference row, measured (mean ± sd of per-seed Δ) and paper."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    metrics = metrics or metric_columns(df)
    reference = reference or reference_label(df)
    order = [label for label in _row_order(df) if label != reference]
    d = seed_deltas(df, metrics, reference)
    d = d[d["label"] != reference]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics) + 1.5, _height(len(order))),
                             sharey=True, squeeze=False)
    palette = {"measured": "C0", "paper": "C3"}
    for ax, m in zip(axes[0], metrics):
        sub = d[d["metric"] == m]
        ax.axvline(0, color="0.3", lw=0.8)
        if sub.empty or not order:
            ax.set_title(f"Δ{m} (nothing to compare)")
            continue
        sns.barplot(data=sub, x="delta", y="label", hue="source", order=order, hue_order=["measured", "paper"],
                    palette=palette, errorbar="sd", capsize=0.15, ax=ax, legend=False)
        ax.set_title(f"Δ{m} vs '{reference}'")
        ax.set_xlabel(f"Δ{m}")
        ax.set_ylabel("")
        ax.grid(axis="x", alpha=0.3)
    from matplotlib.patches import Patch

    fig.legend(handles=[Patch(color=c, label=k) for k, c in palette.items()], loc="upper right", ncols=2,
               frameon=False)
    fig.suptitle(title or f"Difference to the reference row ({reference}): measured vs paper", y=1.0)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig
