"""Paper-style table styling: the best measured value per metric in bold, no wrapped cells."""
from __future__ import annotations

import pandas as pd

from ..ablate.report import summarize
from ..metrics.registry import lower_is_better


def best_rows(df: pd.DataFrame, metrics: list[str]) -> dict[str, str]:
    """``{metric: label of the row with the best measured mean}`` (metrics with no ok run skipped)."""
    s = summarize(df, metrics)
    out = {}
    for m in metrics:
        col = s[f"{m}_mean"].dropna()
        if len(col):
            out[m] = col.idxmin() if lower_is_better(m) else col.idxmax()  # MSE, Nabf: lowest
    return out


def style_paper_table(table: pd.DataFrame, df: pd.DataFrame, metrics: list[str]):
    """A pandas Styler of :func:`fusionlab.ablate.paper_table`: best measured value per metric
    in bold (as papers do), cells kept on one line."""
    best = best_rows(df, metrics)

    def bold(col: pd.Series) -> list[str]:
        return ["font-weight: bold" if col.name in best and idx == best[col.name] else "" for idx in col.index]

    return table.style.apply(bold, axis=0).set_properties(**{"white-space": "nowrap"})
