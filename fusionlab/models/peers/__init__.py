"""Published IR/VI fusion networks with their authors' weights, for side-by-side comparison.

::

    from fusionlab.models import create_model
    sea = create_model("seafusion")                 # loads SeAFusion.pth (strict, weights_only)
    fused_y = sea(ir, vi_y)                         # (B,1,H,W) in [0,1], like every fusionlab model
    rgb_u8 = sea.fuse_as_authors("ir/1.png", "vi/1.png")   # what the authors' script saves

=========  ==========================================================  ==================
name       network (weights)                                            default protocol
=========  ==========================================================  ==================
seafusion  SeAFusion, Information Fusion 2022 (SeAFusion.pth)             vif_benchmark
ifcnn      IFCNN-MAX, Information Fusion 2020 (IFCNN-MAX.pth)             vif_benchmark
tardal     TarDAL generator, CVPR 2022 (tardal.pt; ``variant=``           author
           ``"tardal+"`` / ``"tardal++"`` for the other two files)
didfuse    DIDFuse auto-encoder, IJCAI 2020 (Encoder.pkl + Decoder.pkl)   vif_benchmark
=========  ==========================================================  ==================

Each network is written here from the facts in ``shared/peers/<name>/SOURCE.md`` and the
state-dict listings; weights are found as :mod:`.base` describes and loaded strictly.
"""
from .base import PeerMethod, Protocol, find_weights, load_strict, weight_dirs
from .didfuse import DIDFuse
from .ifcnn import IFCNN
from .seafusion import SeAFusion
from .tardal import TarDAL

#: registry name -> class (all are also in :data:`fusionlab.models.MODELS`)
PEERS = {"seafusion": SeAFusion, "ifcnn": IFCNN, "tardal": TarDAL, "didfuse": DIDFuse}

__all__ = ["PEERS", "PeerMethod", "Protocol", "SeAFusion", "IFCNN", "TarDAL", "DIDFuse", "find_weights",
           "load_strict", "weight_dirs"]
