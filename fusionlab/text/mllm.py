"""``mllm`` captioner: a transformers vision-language model describes each image pair.

DTPF captions every training pair once with Qwen2-VL-7B-Instruct; this module does the same
with any model that ``AutoProcessor`` + ``AutoModelForImageTextToText`` can load and whose
processor accepts several images per prompt (Qwen2-VL / Qwen2.5-VL family and compatible).
The model is prompted with BOTH images (infrared first, then visible) and asked for the two
caption lines; the answer is normalised to ``"Event Type: <X>\\nDescription: ..."``.

Where the weights come from (first match wins):

1. ``model`` is an existing folder -> loaded from there;
2. ``<models dir>/mllm/<hub name with / -> -->`` exists (``$FUSIONLAB_MODELS`` or
   ``~/.cache/fusionlab/models``) -> loaded from there;
3. else the hub name is passed to transformers (needs internet; with ``HF_HUB_OFFLINE=1``
   this fails fast and :class:`~fusionlab.errors.ModelUnavailableError` says where to put
   the weights).

Captioning a whole dataset goes through :func:`fusionlab.text.captioners.caption_folder`
(tqdm progress, resume, atomic JSON rewrites) or ``fusionlab caption --captioner mllm``.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from ..device import default_device
from ..errors import ConfigError, ModelUnavailableError, UsageError
from ..io import to_uint8
from ..dirs import models_dir
from .captioners import CAPTIONERS, Captioner
from .captions import format_caption, parse_event_type

DEFAULT_MODEL = "Qwen/Qwen2-VL-7B-Instruct"

#: Infrared-visible prompt (after the DTPF reference prompt: two lines, examples of event
#: types, new types allowed).
PROMPT_IR_VI = (
    "The first image is an infrared image and the second image is a visible-light image of the same scene. "
    "Identify the main image-quality problem of this pair that an image fusion method must handle, for example "
    "low light (dark visible image), over exposure, low contrast in the infrared image, noise in the infrared image, "
    "motion blur or sensor artifacts such as stripes; if there is no problem answer normal. "
    "You may name a new event type if none of these fits. Answer with exactly two lines:\n"
    "Event Type: <one of normal, low_light, over_exposure, ir_low_contrast, ir_noise, or a new short name>\n"
    "Description: <one sentence describing the scene and its degradation>"
)
#: Medical prompt (after the reference medical prompt: what each modality contributes).
PROMPT_MEDICAL = (
    "The first image is an anatomical scan (MRI) and the second image is a functional or CT scan of the same slice. "
    "Say which characteristics a fused image must keep: contrast enhancement, edge preservation, noise suppression, "
    "detail enhancement, structure consistency or artifact reduction. Answer with exactly two lines:\n"
    "Event Type: <the most important characteristic, a short name>\n"
    "Description: <one sentence about both modalities>"
)
PROMPTS = {"ir_vi": PROMPT_IR_VI, "medical": PROMPT_MEDICAL}


def resolve_model(model: str | os.PathLike) -> str:
    """Local folder, default local copy (see module docstring), or the hub name unchanged."""
    p = Path(model).expanduser()
    if p.exists():
        if not (p / "config.json").is_file():
            raise ModelUnavailableError(f"{p}: not a transformers model folder (no config.json)")
        return str(p)
    name = str(model)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ModelUnavailableError(f"{p}: vision-language model folder not found")
    local = default_model_dir(name)
    return str(local) if (local / "config.json").is_file() else name


def default_model_dir(name: str = DEFAULT_MODEL) -> Path:
    """Where a hub model ``name`` is looked for locally: ``<models dir>/mllm/<org>--<name>``."""
    return models_dir() / "mllm" / name.replace("/", "--")


def normalise_caption(raw: str) -> str:
    """Turn a model answer into ``"Event Type: <X>\\nDescription: ..."`` (X = ``unknown`` if absent)."""
    text = str(raw).replace("*", "").strip()
    event = parse_event_type(text, default="unknown")
    m = re.search(r"description\s*[:=]\s*(.+)", text, re.IGNORECASE | re.DOTALL)
    desc = m.group(1) if m else re.sub(r"event\s*type\s*[:=][^\n]*", "", text, flags=re.IGNORECASE)
    desc = " ".join(desc.split())[:500] or "no description."
    return format_caption(event, desc)


def tensor_to_pil(img: torch.Tensor, max_side: int | None = 448):
    """``(C, H, W)`` in [0, 1] -> RGB PIL image, longest side at most ``max_side`` (keeps aspect)."""
    from PIL import Image

    arr = to_uint8(img)
    im = Image.fromarray(arr).convert("RGB")
    if max_side and max(im.size) > max_side:
        s = max_side / max(im.size)
        im = im.resize((max(1, round(im.size[0] * s)), max(1, round(im.size[1] * s))), Image.BICUBIC)
    return im


@CAPTIONERS.register("mllm")
class MLLMCaptioner(Captioner):
    """Captions from a vision-language model (Qwen2-VL family via transformers).

    Args:
        model: local folder or hub name (e.g. :data:`DEFAULT_MODEL`, ``Qwen/Qwen2-VL-7B-Instruct``;
            required: loading a 7B model should never happen by default).
        task: ``"ir_vi"`` or ``"medical"`` (selects the prompt); ``prompt`` overrides it.
        device: ``"auto"`` (CUDA if present) / ``"cpu"`` / ``"cuda:0"``.
        dtype: torch dtype name for the weights (``"auto"`` = as stored, e.g. bfloat16).
        max_new_tokens: answer length limit.
        max_side: images are downscaled so their longest side is at most this (vision tokens
            grow with pixels; 448 keeps a 640x480 pair at ~2x260 tokens for Qwen2-VL).
    """

    def __init__(self, model: str | os.PathLike | None = None, task: str = "ir_vi", prompt: str | None = None,
                 device: str | None = "auto", dtype: str = "auto", max_new_tokens: int = 64,
                 max_side: int | None = 448):
        if model is None:
            raise ConfigError(f"the mllm captioner needs model=<local path or hub name, e.g. {DEFAULT_MODEL}> "
                              "(or caption once with 'fusionlab caption' and use the file)")
        if task not in PROMPTS and prompt is None:
            raise ConfigError(f"mllm task {task!r} is not one of {', '.join(PROMPTS)}")
        self.prompt = prompt or PROMPTS[task]
        self.max_new_tokens, self.max_side = int(max_new_tokens), max_side
        self.device = default_device(device)
        self.model_name = str(model)
        path = resolve_model(model)
        try:
            from transformers import AutoModelForImageTextToText, AutoProcessor
        except ImportError:  # a core install may carry an older transformers (the text encoder needs less)
            import transformers

            raise UsageError(f"the mllm captioner needs transformers >= 4.56 (installed: "
                             f"{getattr(transformers, '__version__', '?')}): pip install 'fusionlab[mllm]'") from None

        try:
            self.processor = AutoProcessor.from_pretrained(path)
            kw = {} if dtype == "auto" else {"dtype": getattr(torch, dtype)}
            self.model = AutoModelForImageTextToText.from_pretrained(path, **kw)
        except (OSError, ValueError, KeyError) as e:
            local = default_model_dir(self.model_name) if path == self.model_name else Path(path)
            raise ModelUnavailableError(
                f"vision-language model {self.model_name!r} not available ({' '.join(str(e).split())[:160]}); "
                f"put it at {local} (hf download {self.model_name} --local-dir {local}) "
                f"or pass model=LOCAL_FOLDER") from None
        self.model = self.model.to(self.device).eval().requires_grad_(False)
        self.path = path

    def _prompt_text(self) -> str:
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "image"},
                                                 {"type": "text", "text": self.prompt}]}]
        if getattr(self.processor, "chat_template", None):
            return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        # No chat template: Qwen2-VL's own layout.
        vis = "<|vision_start|><|image_pad|><|vision_end|>"
        return f"<|im_start|>user\n{vis}{vis}{self.prompt}<|im_end|>\n<|im_start|>assistant\n"

    @torch.inference_mode()
    def generate_raw(self, ir: torch.Tensor, vi: torch.Tensor) -> str:
        """One pair ``(1, H, W)`` / ``(C, H, W)`` -> the model's raw answer."""
        images = [tensor_to_pil(ir, self.max_side), tensor_to_pil(vi, self.max_side)]
        inputs = self.processor(text=[self._prompt_text()], images=images, return_tensors="pt")
        inputs = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}
        out = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        new = out[:, inputs["input_ids"].shape[1]:]
        return self.processor.batch_decode(new, skip_special_tokens=True)[0]

    def caption(self, ir, vi, names=None, labels=None) -> list[str]:
        if ir is None or vi is None or ir.ndim != 4 or vi.ndim != 4 or ir.shape[0] != vi.shape[0]:
            raise ConfigError("the mllm captioner needs ir (B,1,H,W) and vi (B,C,H,W) batches of equal size")
        return [normalise_caption(self.generate_raw(ir[i], vi[i])) for i in range(ir.shape[0])]

    def __repr__(self) -> str:
        return f"MLLMCaptioner(model={self.model_name!r}, device={self.device})"
