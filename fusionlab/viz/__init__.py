"""Plots and viewers for notebooks: seaborn result plots, image figures, ipywidgets comparers.

* :mod:`.plots` - :func:`metric_plot` (metric per variant, error bars over seeds),
  :func:`delta_plot` (difference to the reference row, measured vs paper);
* :mod:`.images` - :func:`show_images`, :func:`side_by_side`, :func:`wipe`,
  :class:`ImageCompare` (any two images, side by side or wipe slider);
* :mod:`.runs` - :class:`RunCompare` / :func:`compare_runs_figure` (two runs' fused
  images), :func:`show_run` (one run folder's metrics and samples);
* :mod:`.tables` - :func:`style_paper_table` (best value per metric in bold).

Every function returns a Figure / widget and never calls ``plt.show()``: notebooks display
what they get, scripts save it.
"""
from .images import ImageCompare, find_samples, show_images, side_by_side, to_array, wipe
from .plots import delta_plot, long_results, metric_plot, seed_deltas
from .runs import RunCompare, compare_runs_figure, default_pair, run_images, show_run
from .tables import best_rows, style_paper_table

__all__ = [
    "ImageCompare", "find_samples", "show_images", "side_by_side", "to_array", "wipe",
    "delta_plot", "long_results", "metric_plot", "seed_deltas",
    "RunCompare", "compare_runs_figure", "default_pair", "run_images", "show_run", "best_rows", "style_paper_table",
]
