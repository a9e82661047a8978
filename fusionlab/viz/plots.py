"""Seaborn plots of results per variant (one figure per question); drawing only.

* :func:`metric_plot` - each metric per variant: mean ± std over seeds (error bars) with
  the individual seeds as dots. Answers "how good is each variant, and how noisy?".
* :func:`delta_plot` - difference of each variant to the reference row, measured (per-seed
  differences, mean ± std) beside the paper's. Answers "does the paper's trend reproduce?"
  even when the absolute numbers come from other data (e.g. the synthetic ``ci`` set).

Both take long tables (one value per row) and the variant order, and return a matplotlib
Figure (nothing is shown or saved here). :mod:`fusionlab.ablate.report` builds them from an
ablation's ``results.csv`` (``fusionlab.ablate.metric_plot(df)``, ``delta_plot(df)``).
"""
from __future__ import annotations

import pandas as pd


def _height(n_rows: int) -> float:
    return max(2.2, 0.45 * n_rows + 1.0)


def metric_plot(long: pd.DataFrame, order: list[str], metrics: list[str], title: str | None = None):
    """One panel per metric: variant (y) vs value (x), mean ± std over seeds, seeds as dots.

    ``long``: columns ``label``, ``seed``, ``metric``, ``value``; ``order``: the variants top to bottom.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns
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


def delta_plot(deltas: pd.DataFrame, order: list[str], reference: str, metrics: list[str],
               title: str | None = None):
    """One panel per metric: Δ to the reference row, measured (mean ± sd of per-seed Δ) and paper.

    ``deltas``: columns ``label``, ``metric``, ``source`` (``measured`` | ``paper``), ``delta``;
    ``order``: the variants top to bottom (the reference row is left out).
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    order = [label for label in order if label != reference]
    d = deltas[deltas["label"] != reference]
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
