"""`fusionlab caption` (not implemented yet)."""
from __future__ import annotations

HELP = "caption (not implemented yet)"


def add_arguments(p) -> None:
    pass


def run(args) -> int:
    from ..errors import FusionlabError

    raise FusionlabError("'fusionlab caption' is not implemented yet")
