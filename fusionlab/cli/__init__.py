"""The ``fusionlab`` command line: one sub-command per module of this package.

Each sub-command module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``; heavy imports (torch, models) happen inside ``run`` so that
``fusionlab --help`` stays instant. This is the only place that turns exceptions into
one-line messages and exit codes:

* 0 success; 1 failure (bad input, failed run); 2 usage error; 130 interrupted (Ctrl-C);
* no traceback unless ``--debug`` is given (or ``FUSIONLAB_DEBUG=1``).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

COMMANDS = ("demo", "fuse", "evaluate", "caption", "train", "distill", "ablate", "report", "profile",
            "data", "compare", "export")


class OneLineParser(argparse.ArgumentParser):
    """argparse with a single-line error message and exit code 2."""

    def error(self, message: str):  # noqa: D401
        sys.stderr.write(f"{self.prog}: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = OneLineParser(prog="fusionlab", description=(
        "Text-guided multi-modality image fusion with knowledge distillation (DTPF): "
        "fuse, evaluate, train, distil, run ablation grids."))
    parser.add_argument("--version", action="version", version=f"fusionlab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for name in COMMANDS:
        mod = importlib.import_module(f".{name}", __name__)
        p = sub.add_parser(name, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show full tracebacks on errors")
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Idle OpenMP threads sleep instead of spinning: on a shared 2-core machine spinning
    # workers made runs 10-50x slower. Read by libgomp when torch loads, so set it first.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", False)) or os.environ.get("FUSIONLAB_DEBUG") == "1"
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return 2
    from ..errors import FusionlabError

    prog = f"fusionlab {args.command}"
    try:
        code = args._run(args)
        return int(code or 0)
    except FusionlabError as e:
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"{prog}: error: {_one_line(e)}\n")
        return e.exit_code
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog}: interrupted\n")
        return 130
    except BrokenPipeError:
        return 1
    except Exception as e:  # unexpected: still one line, traceback on --debug
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"{prog}: error: unexpected {type(e).__name__}: {_one_line(e)} "
                         "(rerun with --debug for the traceback)\n")
        return 1


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
