"""Models: the DTPF teacher and student, fusion-module and width variants.

::

    from fusionlab.models import create_model, list_models, fuse_pair
    model = create_model("dtpf_student")                 # random weights
    fused = model(ir, vi_y)                               # (B,1,H,W) in [0,1], any H, W
    fused, feats = model(ir, vi_y, text, return_features=True)
    rgb = fuse_pair(model, ir, vi_rgb, tile=256)          # colour: Y fused, VI CbCr kept
    save_checkpoint("s.pt", model, metadata={"epochs": 3})
    model, info = load_checkpoint("s.pt", expected="dtpf_student")

Modules: ``blocks`` (attention, FFN, LayerNorm), ``fusion`` (the 5 fusion modules),
``film`` (text modulation), ``net`` (FusionNet + config), ``zoo`` (registered variants),
``inference`` (colour, padding, sliding windows), ``checkpoint``, ``profile`` (efficiency table),
``runtime`` (CPU allocator tuning for large images), ``peers`` (published networks with their
authors' weights: seafusion, ifcnn, tardal, didfuse), ``baselines`` (pixel mean/max,
visible only, Laplacian pyramid).
"""
from .checkpoint import SHIPPED_STUDENT, find_checkpoint, load_checkpoint, load_student, read_checkpoint, save_checkpoint
from .film import FiLM
from .fusion import FUSION_MODULES
from .inference import as_fusion_fn, fuse_pair, sliding_window
from .runtime import tune_cpu_allocator
from .net import FusionNet, FusionNetConfig, count_parameters, pad_to_multiple
from .zoo import MODELS, ExternalModel, create_model, list_models, model_config, model_kind

__all__ = [
    "create_model", "list_models", "model_config", "MODELS", "FusionNet", "FusionNetConfig", "FUSION_MODULES",
    "FiLM", "fuse_pair", "sliding_window", "save_checkpoint", "load_checkpoint", "read_checkpoint",
    "count_parameters", "pad_to_multiple", "tune_cpu_allocator", "as_fusion_fn", "find_checkpoint", "load_student",
    "SHIPPED_STUDENT", "ExternalModel", "model_kind",
]
