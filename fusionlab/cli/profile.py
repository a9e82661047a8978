"""`fusionlab profile` (not implemented yet)."""
from __future__ import annotations

HELP = "profile (not implemented yet)"


def add_arguments(p) -> None:
    pass


def run(args) -> int:
    from ..errors import FusionlabError

    raise FusionlabError("'fusionlab profile' is not implemented yet")
