"""fusionlab: a Jupyter-first workbench for text-guided multi-modality image fusion.

Reproduces and extends DTPF ("Distilling Textual Priors from LLM to Efficient Image
Fusion"): a text-guided teacher distilled into a small student that needs no text.

Top-level API (:mod:`fusionlab.api`, imported on first use so ``import fusionlab`` stays light)::

    import fusionlab
    fusionlab.list_models()                                    # architectures
    model = fusionlab.load_model()                             # shipped student / .pt / folder / hub id
    fused = fusionlab.fuse("ir.png", "vi.png", model=model)    # (C, H, W) in [0, 1]
    fusionlab.evaluate("ir.png", "vi.png", "fused.png")        # {"EN": ..., "VIF": ..., ...}
    model.save_pretrained("my-student")                        # safetensors + config.json + card

Sub-packages (each importable alone): ``io``, ``data``, ``datasets``, ``metrics``, ``models``, ``text``,
``losses``, ``train``, ``ablate``, ``viz``. The CLI (``fusionlab.cli``) sits on top.
"""

__version__ = "0.1.0"

_API = ("fuse", "evaluate", "load_model", "list_models")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    # PEP 562: fusionlab.fuse & co. import torch and the models only when first used
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'fusionlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
