"""Argument parsing and dispatch for the ``parzen`` command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from parzen.cli import dashboard, tools, worker  # noqa: F401  (importing a command module registers it)
from parzen.cli._registry import COMMANDS
from parzen.exceptions import ParzenError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="parzen",
        description="Distributed hyperparameter optimisation: run workers and inspect "
                    "experiments.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (configure, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        configure(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``parzen`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        code: int = args.run(args)
        return code
    except ParzenError as exc:
        print(f"parzen {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
