"""Run-size presets shared by notebooks, configs and tests.

``FUSIONLAB_PRESET`` selects one: ``ci`` (seconds; CI and nbval), ``laptop`` (minutes on a
CPU; the default for students) or ``full`` (paper-scale, for GPUs).
"""
from __future__ import annotations

import os

from .errors import ConfigError

PRESETS = ("ci", "laptop", "full")
DEFAULT_PRESET = "laptop"


def get_preset(default: str = DEFAULT_PRESET) -> str:
    """Return the active preset name from ``FUSIONLAB_PRESET`` (validated)."""
    name = os.environ.get("FUSIONLAB_PRESET", "").strip().lower() or default
    if name not in PRESETS:
        raise ConfigError(f"FUSIONLAB_PRESET={name!r} is not one of {', '.join(PRESETS)}")
    return name


def pick(ci, laptop, full, preset: str | None = None):
    """Choose a value by preset: ``pick(ci=2, laptop=50, full=500)``."""
    p = preset or get_preset()
    if p not in PRESETS:
        raise ConfigError(f"preset {p!r} is not one of {', '.join(PRESETS)}")
    return {"ci": ci, "laptop": laptop, "full": full}[p]
