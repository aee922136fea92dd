"""The ``maskloop`` command line: one sub-command per job.

Each area registers its own sub-commands (``register(subparsers)``); a command
function takes the parsed ``argparse.Namespace`` and returns an exit status.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from maskloop import __version__
from maskloop.errors import DISK_FULL_MESSAGE, UserError, is_disk_full


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit status 2 (argparse's own convention)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every area's sub-commands."""
    from maskloop.cli import data, edges, engine, evaluate, export, learn, model, replay, serve, users

    parser = _Parser(prog="maskloop", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"maskloop {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser] = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_Parser
    )
    model.register(subparsers)
    evaluate.register(subparsers)
    edges.register(subparsers)
    engine.register(subparsers)
    learn.register(subparsers)
    replay.register(subparsers)
    serve.register(subparsers)
    data.register(subparsers)
    export.register(subparsers)
    users.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        if args.debug:
            raise
        print(f"maskloop: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("maskloop: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug or not is_disk_full(exc):
            raise
        print(
            f"maskloop: error: the {DISK_FULL_MESSAGE} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
