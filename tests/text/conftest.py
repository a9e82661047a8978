"""Fixtures of the text tests: a tiny random vision-language model built offline from configs."""
from __future__ import annotations

import pytest
import torch

from support import TINY_CLIP


def _tiny_qwen2vl(path):
    """A random Qwen2-VL of a few thousand parameters with a word-level tokenizer (no download)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (PreTrainedTokenizerFast, Qwen2VLConfig, Qwen2VLForConditionalGeneration,
                              Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor)

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
               "<|image_pad|>", "<|video_pad|>", "[UNK]"]
    words = ("event type : description normal low_light over_exposure ir_noise ir_low_contrast the image is "
             "dark noisy a scene . user assistant").split()
    vocab = {w: i for i, w in enumerate(special + words)}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    try:  # transformers < 5 (the mllm floor, 4.56) insists on a Qwen2 tokenizer class in the processor
        from transformers import Qwen2TokenizerFast as tok_class
    except ImportError:
        tok_class = PreTrainedTokenizerFast
    tok = tok_class(tokenizer_object=tk, unk_token="[UNK]", pad_token="<|endoftext|>",
                                  eos_token="<|im_end|>", additional_special_tokens=special[1:7])
    template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% for c in m['content'] %}"
                "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>{% else %}{{ c['text'] }}"
                "{% endif %}{% endfor %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
                "{% endif %}")
    proc = Qwen2VLProcessor(image_processor=Qwen2VLImageProcessor(min_pixels=28 * 28, max_pixels=56 * 56),
                            tokenizer=tok, video_processor=Qwen2VLVideoProcessor(), chat_template=template)
    cfg = Qwen2VLConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         rope_scaling={"type": "mrope", "mrope_section": [1, 1, 2]},
                         bos_token_id=1, eos_token_id=2, pad_token_id=0),
        vision_config=dict(depth=1, embed_dim=32, hidden_size=32, num_heads=2, mlp_ratio=2, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2, in_channels=3),
        image_token_id=vocab["<|image_pad|>"], video_token_id=vocab["<|video_pad|>"],
        vision_start_token_id=vocab["<|vision_start|>"], vision_end_token_id=vocab["<|vision_end|>"])
    torch.manual_seed(0)
    Qwen2VLForConditionalGeneration(cfg).save_pretrained(path)
    proc.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory):
    """Folder of a tiny random Qwen2-VL (the ``mllm`` captioner's code path, offline)."""
    return _tiny_qwen2vl(tmp_path_factory.mktemp("vlm") / "tiny-qwen2vl")


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> str:
    """Name of the tiny open_clip architecture ``fl-tiny-clip`` (registered with open_clip)."""
    import json

    import open_clip

    cfg = tmp_path_factory.mktemp("clip") / "fl-tiny-clip.json"
    cfg.write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(cfg)
    return "fl-tiny-clip"


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    """One embedding cache for the text tests (fast), never the user's cache folder."""
    monkeypatch.setenv("FUSIONLAB_CACHE", str(tmp_path_factory.getbasetemp() / "flcache"))
