"""Fusion metrics: the suite IR-VI and medical fusion papers report, batched in torch.

Quick use::

    from fusionlab.metrics import evaluate_files, evaluate, to_metric_scale, METRIC_NAMES
    evaluate_files("ir.png", "vi.png", "fused.png")          # {"EN": 6.2, ..., "PSNR": 18.2}
    evaluate(to_metric_scale(ir01), to_metric_scale(vi01), to_metric_scale(fused01))  # DataFrame

One module per family (``statistics``, ``information``, ``correlation``, ``vif``, ``qabf``,
``ssim``), conventions in ``conventions`` (``"cddfuse"`` default, ``"dtpf"``, ``"matlab"``), the entry
points in ``evaluate``, the registry (names, table order, lower-is-better, subsets) in
``registry``. All metric functions take ``(B, 1, H, W)`` float tensors on 0..255
and return ``(B,)`` float64 tensors. ``qabf``, ``ssim`` and ``vif`` are the modules here;
their functions of the same name are ``qabf.qabf``, ``ssim.ssim``, ``vif.vif``. See docs/metrics.md.
"""
from .conventions import CONVENTIONS, Convention, get_convention, read_gray, rgb255_to_gray, to_metric_scale
from . import correlation, information, qabf, ssim, statistics, vif
from .correlation import cc, pearson, scd
from .evaluate import (EXTRA_METRICS, HEADLINE_METRICS, LOWER_IS_BETTER, METRIC_NAMES, PAPER_METRICS, SUMMARY_METRICS,
                       FusionMetrics, compute_metrics, evaluate, evaluate_files, evaluate_folders, fusion_scores,
                       match_triplets, resolve_metrics, to_jsonable)
from .registry import METRICS, Metric, lower_is_better, metric_info, metric_names, register_metric
from .information import entropy, fusion_mi, histogram, joint_histogram, mutual_information
from .qabf import edge_preservation, edge_strength_orientation, kumar_gradients, nabf, sobel_responses
from .ssim import fusion_ssim, ssim_map
from .statistics import average_gradient, gradient_maps, mse, psnr, spatial_frequency, standard_deviation
from .vif import fusion_vif, gaussian_window, vif_components

__all__ = [
    "METRIC_NAMES", "EXTRA_METRICS", "LOWER_IS_BETTER", "PAPER_METRICS", "HEADLINE_METRICS", "SUMMARY_METRICS",
    "METRICS", "Metric", "register_metric", "metric_info", "metric_names", "lower_is_better", "CONVENTIONS", "Convention",
    "get_convention", "read_gray", "rgb255_to_gray", "to_metric_scale", "compute_metrics", "evaluate", "fusion_scores",
    "evaluate_files", "evaluate_folders", "match_triplets", "resolve_metrics", "to_jsonable", "FusionMetrics",
    "entropy", "standard_deviation", "spatial_frequency", "average_gradient", "gradient_maps", "mse", "psnr",
    "histogram", "joint_histogram", "mutual_information", "fusion_mi", "pearson", "cc", "scd",
    "fusion_vif", "vif_components", "gaussian_window", "nabf", "sobel_responses",
    "edge_strength_orientation", "edge_preservation", "kumar_gradients", "ssim_map", "fusion_ssim",
    # sub-modules (their main functions share the module name: qabf.qabf, ssim.ssim, vif.vif)
    "statistics", "information", "correlation", "vif", "qabf", "ssim",
]
