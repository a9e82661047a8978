"""fusionlab: a Jupyter-first workbench for text-guided multi-modality image fusion.

Reproduces and extends DTPF ("Distilling Textual Priors from LLM to Efficient Image
Fusion"): a text-guided teacher distilled into a small student that needs no text.

Sub-packages (each importable alone): ``io``, ``data``, ``datasets``, ``metrics``, ``models``, ``text``,
``losses``, ``train``, ``ablate``, ``viz``. The CLI (``fusionlab.cli``) sits on top.
"""

__version__ = "0.1.0"
