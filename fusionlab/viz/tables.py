"""Paper-style table styling: chosen cells in bold, no wrapped cells."""
from __future__ import annotations

from typing import Any, Mapping

import pandas as pd


def style_best(table: pd.DataFrame, best: Mapping[str, Any]):
    """A pandas Styler of ``table``: in each column named in ``best``, the cell of row
    ``best[column]`` in bold (as papers mark the best value); cells kept on one line."""

    def bold(col: pd.Series) -> list[str]:
        return ["font-weight: bold" if col.name in best and idx == best[col.name] else "" for idx in col.index]

    return table.style.apply(bold, axis=0).set_properties(**{"white-space": "nowrap"})
