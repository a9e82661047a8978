"""The caption format of DTPF and helpers to build and parse it.

DTPF (after Text-IF) describes every image pair with two lines::

    Event Type: low_light
    Description: The visible image is dark, ...

The event type names the degradation (Text-IF vocabulary, :data:`EVENT_TYPES`); the
description is free text. The reference code keeps the short template
``"This image has <X> condition."`` (``style="reference"``); fusionlab's default
(``style="descriptive"``) spells the degradation out in plain words, because a sentence
encoder only "understands" words, not identifiers like ``ir_low_contrast`` - with the
reference template all five captions are 0.64-0.81 cosine-similar to each other (the shared
template dominates), with the descriptive one they separate (see docs/text_priors.md).
"""
from __future__ import annotations

import re

from ..data.degrade import DEGRADATIONS
from ..errors import ConfigError

#: Event types produced by fusionlab's captioners (= the synthetic degradation labels).
EVENT_TYPES: tuple[str, ...] = tuple(DEGRADATIONS)

#: Text-IF's general task prompt (the ``constant`` control).
TASK_PROMPT = "This is the infrared and visible light image fusion task."

#: One plain-language description per event type (``style="descriptive"``).
DESCRIPTIONS: dict[str, str] = {
    "normal": "A clear, well exposed scene; the infrared and visible images both show good contrast and detail.",
    "low_light": "The visible image is dark, captured at night or in low light; details are hidden in shadow and noise.",
    "over_exposure": "The visible image is overexposed; strong light washes out the bright regions and their colours.",
    "ir_low_contrast": "The infrared image has low contrast; warm targets barely stand out from the background.",
    "ir_noise": "The infrared image is noisy, with grainy sensor noise and stripe artifacts.",
}

STYLES = ("descriptive", "reference")


def format_caption(event_type: str, description: str | None = None, style: str = "descriptive") -> str:
    """Build ``"Event Type: <X>\\nDescription: <text>"``.

    Args:
        event_type: e.g. ``"low_light"``; any string is accepted (MLLMs invent new types),
            but the built-in descriptions exist only for :data:`EVENT_TYPES`.
        description: free text; default: the built-in one of ``style``.
        style: ``"descriptive"`` (plain words, default) or ``"reference"``
            (``"This image has <X> condition."``, as the DTPF reference code).
    """
    if description is None:
        if style == "reference":
            description = f"This image has {event_type} condition."
        elif style == "descriptive":
            if event_type not in DESCRIPTIONS:
                raise ConfigError(f"no built-in description for event type {event_type!r} "
                                  f"(known: {', '.join(DESCRIPTIONS)}); pass description=")
            description = DESCRIPTIONS[event_type]
        else:
            raise ConfigError(f"caption style {style!r} is not one of {', '.join(STYLES)}")
    return f"Event Type: {event_type}\nDescription: {' '.join(str(description).split())}"


# Synonyms an MLLM may use for the canonical event types (lower-case, words separated by _).
_SYNONYMS: dict[str, str] = {
    "normal": "normal", "none": "normal", "clear": "normal", "no_degradation": "normal", "good": "normal",
    "normal_condition": "normal", "daytime": "normal",
    "low_light": "low_light", "lowlight": "low_light", "low_illumination": "low_light", "dark": "low_light",
    "darkness": "low_light", "night": "low_light", "nighttime": "low_light", "underexposure": "low_light",
    "under_exposure": "low_light", "low_light_condition": "low_light", "insufficient_light": "low_light",
    "over_exposure": "over_exposure", "overexposure": "over_exposure", "overexposed": "over_exposure",
    "over_exposed": "over_exposure", "high_exposure": "over_exposure", "strong_light": "over_exposure",
    "glare": "over_exposure", "too_bright": "over_exposure",
    "ir_low_contrast": "ir_low_contrast", "low_contrast": "ir_low_contrast", "infrared_low_contrast": "ir_low_contrast",
    "low_contrast_infrared": "ir_low_contrast", "low_contrast_ir": "ir_low_contrast", "ir_lowcontrast": "ir_low_contrast",
    "ir_noise": "ir_noise", "infrared_noise": "ir_noise", "noise": "ir_noise", "noisy": "ir_noise",
    "high_noise": "ir_noise", "ir_noisy": "ir_noise", "noisy_infrared": "ir_noise", "sensor_noise": "ir_noise",
    "stripe_noise": "ir_noise", "stripes": "ir_noise",
}

_EVENT_RE = re.compile(r"event\s*[_-]?\s*type\s*[:=\-]\s*(.+)", re.IGNORECASE)


def normalise_event_type(text: str) -> str:
    """``"Low Light"`` / ``"low-light"`` / ``"**Overexposure**"`` -> canonical name, else the cleaned key."""
    key = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    key = re.sub(r"_(condition|conditions|scene|degradation|event)$", "", key) or key
    return _SYNONYMS.get(key, key)


def parse_event_type(caption: str, default: str = "unknown") -> str:
    """Extract the event type of a caption, robust to MLLM formatting variations.

    Handles ``"Event Type: X"`` anywhere in the text (any case, markdown bold, ``Event_Type=``,
    quotes, trailing punctuation), maps synonyms (``"overexposure"`` -> ``over_exposure``,
    ``"Low light"`` -> ``low_light``, ``"infrared noise"`` -> ``ir_noise``). Without an
    ``Event Type`` line, looks for a known type name in the text. Returns ``default`` when
    nothing is found; an unknown but present type is returned cleaned (lower-case, ``_``),
    because the reference prompt allows new event types (``motion_blur``, ...).
    """
    text = str(caption).replace("*", "").replace("`", "")
    m = _EVENT_RE.search(text)
    if m:
        value = m.group(1).splitlines()[0]
        value = re.split(r"[.;,(]|\s-\s", value)[0].strip(" \"'")
        if value:
            return normalise_event_type(value)
    low = re.sub(r"[^a-z0-9]+", "_", text.lower())
    # longest names first so 'ir_low_contrast' wins over 'low_contrast'
    for syn in sorted(_SYNONYMS, key=len, reverse=True):
        if len(syn) > 4 and f"_{syn}_" in f"_{low}_":
            return _SYNONYMS[syn]
    return default
