"""Exception classes of fusionlab.

Every error a user can cause (bad files, bad configs, bad checkpoints, ...) raises a
subclass of :class:`FusionlabError` whose message is ONE line naming the file or value
and what is wrong (and, where sensible, what to do). The CLI prints that line and exits
with code 1 (2 for usage errors); Python users can catch the specific class.
"""
from __future__ import annotations


class FusionlabError(Exception):
    """Base class: a problem with the user's input, config or environment."""

    exit_code = 1


class UsageError(FusionlabError):
    """Wrong command-line usage (exit code 2)."""

    exit_code = 2


class ImageReadError(FusionlabError):
    """A file cannot be read as an image (missing, corrupt, truncated, unsupported)."""


class ImageTooLargeError(ImageReadError):
    """An image is larger than the configured pixel limit."""


class ShapeMismatchError(FusionlabError):
    """Two images that must align (IR/VI/fused) have different sizes."""


class MissingPairError(FusionlabError):
    """A file in one modality folder has no partner in the other."""


class EmptyInputError(FusionlabError):
    """A folder or dataset holds no usable images."""


class InvalidTensorError(FusionlabError):
    """A tensor has the wrong shape/dtype or holds NaN/inf."""


class CheckpointError(FusionlabError):
    """A checkpoint is missing, corrupt or of another architecture."""


class ConfigError(FusionlabError):
    """A config / grid file has an unknown key, an invalid value or bad syntax."""


class MemoryBudgetError(FusionlabError):
    """A memory budget (``--max-memory``) is too small for the work asked of it."""


class OutputError(FusionlabError):
    """An output location cannot be written."""


class ModelUnavailableError(FusionlabError):
    """Pretrained weights/model files are not available (e.g. offline without a local copy)."""


class RunFailedError(FusionlabError):
    """An experiment run (notebook) failed."""


class DatasetError(FusionlabError):
    """A dataset is unknown, not installed, fails verification, or cannot be fetched/unpacked."""
