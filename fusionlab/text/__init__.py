"""Text priors for text-guided fusion: captioners, frozen text encoders, a caption-free prior.

Quick use::

    from fusionlab.text import build_text_prior
    prior = build_text_prior("rules", text_dim=512)        # offline: rules captions + MiniLM
    emb = prior({"ir": ir, "vi": vi, "names": names})    # (B, 512) unit vectors, or None for "none"

Parts: :mod:`.captions` (format, parsing), :mod:`.rules` (statistics captioner),
:mod:`.captioners` (CAPTIONERS registry), :mod:`.mllm` (vision-language model captioner),
:mod:`.encoders` (TEXT_ENCODERS registry, on-disk cache in :mod:`.cache`),
:mod:`.projector` (caption-free prior), :mod:`.prior` (build_text_prior).
"""
from .captioners import CAPTIONERS, Captioner, build_captioner, read_caption_file
from .captions import DESCRIPTIONS, EVENT_TYPES, TASK_PROMPT, format_caption, parse_event_type
from .encoders import TEXT_ENCODERS, TextEncoder, build_text_encoder
from .prior import SOURCES, TextPrior, build_text_prior, fixed_projection, text_prior_sources
from .rules import RuleThresholds, classify_degradation, folder_statistics, image_statistics, rules_confusion

__all__ = [
    "CAPTIONERS", "Captioner", "build_captioner", "read_caption_file",
    "DESCRIPTIONS", "EVENT_TYPES", "TASK_PROMPT", "format_caption", "parse_event_type",
    "TEXT_ENCODERS", "TextEncoder", "build_text_encoder",
    "SOURCES", "TextPrior", "build_text_prior", "fixed_projection", "text_prior_sources",
    "RuleThresholds", "classify_degradation", "folder_statistics", "image_statistics", "rules_confusion",
]
