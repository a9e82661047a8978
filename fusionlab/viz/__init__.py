"""Drawing for notebooks: seaborn plots, image figures, ipywidgets comparers.

* :mod:`.plots` - :func:`metric_plot` (metric per variant, error bars over seeds),
  :func:`delta_plot` (difference to the reference row, measured vs paper), from long tables;
* :mod:`.images` - :func:`show_images`, :func:`side_by_side`, :func:`wipe`,
  :class:`ImageCompare` (any two images, side by side or wipe slider);
* :mod:`.tables` - :func:`style_best` (chosen cells in bold);
* :mod:`.compare` - the walkthrough widgets (CompareWidget, FusionExplorer, DegradationExplorer);
* :mod:`.metric_maps` - the per-pixel maps behind Qabf, VIF, SSIM and the gradients.

viz only draws: the numbers come from their owners (metrics, models, train, ablate), and
nothing here imports :mod:`fusionlab.ablate` (which draws its tables and figures with viz:
``fusionlab.ablate.metric_plot(results)``, ``RunCompare``, ``show_run``, ...).

Every function returns a Figure / widget and never calls ``plt.show()``: notebooks display
what they get, scripts save it.
"""
from .images import ImageCompare, find_samples, show_images, side_by_side, to_array, wipe
from .plots import delta_plot, metric_plot
from .tables import style_best

__all__ = ["ImageCompare", "find_samples", "show_images", "side_by_side", "to_array", "wipe", "delta_plot",
           "metric_plot", "style_best"]
