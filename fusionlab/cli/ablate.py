"""`fusionlab ablate` (not implemented yet)."""
from __future__ import annotations

HELP = "ablate (not implemented yet)"


def add_arguments(p) -> None:
    pass


def run(args) -> int:
    from ..errors import FusionlabError

    raise FusionlabError("'fusionlab ablate' is not implemented yet")
