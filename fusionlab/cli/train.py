"""`fusionlab train` (not implemented yet)."""
from __future__ import annotations

HELP = "train (not implemented yet)"


def add_arguments(p) -> None:
    pass


def run(args) -> int:
    from ..errors import FusionlabError

    raise FusionlabError("'fusionlab train' is not implemented yet")
