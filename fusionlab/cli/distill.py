"""`fusionlab distill` (not implemented yet)."""
from __future__ import annotations

HELP = "distill (not implemented yet)"


def add_arguments(p) -> None:
    pass


def run(args) -> int:
    from ..errors import FusionlabError

    raise FusionlabError("'fusionlab distill' is not implemented yet")
