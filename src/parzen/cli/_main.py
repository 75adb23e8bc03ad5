"""Argument parsing and dispatch for the ``parzen`` command.

Commands load lazily. ``COMMANDS`` names each command's module and its one-line help, so
``parzen --help`` imports no command module, and ``parzen trials`` imports the module of
``trials`` only: not Celery's worker, not matplotlib. A command module is imported once the
command line names its command (``_configure``); its ``@command`` functions then add the
arguments. tests/test_architecture.py reads the module names below as imports of this module.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from parzen.cli._registry import CONFIGURE, Configure
from parzen.exceptions import ParzenError


@dataclass(frozen=True)
class Command:
    """Where a sub-command lives, and what ``parzen --help`` says of it."""

    module: str
    help: str


_TOOLS = "parzen.cli.tools"  # the commands that read
_MUTATE = "parzen.cli.mutate"  # the commands that change an experiment
COMMANDS: dict[str, Command] = {
    "worker": Command("parzen.cli.worker",
                      "start a worker that evaluates trials (a Celery worker, threads pool)"),
    "health": Command("parzen.cli.health", "exit 0 if the worker that keeps a health file "
                                           "(parzen worker --health-file) is alive: probes"),
    "experiments": Command(
        _TOOLS, "list experiments: trial counts, best loss, last activity, coordinator"),
    "trials": Command(
        _TOOLS, "list the trials of an experiment: state, loss, duration, worker, parameters"),
    "best": Command(
        _TOOLS, "show the best trial: loss, raw parameters, and their space_eval values"),
    "status": Command(
        _TOOLS, "show progress: counts, throughput, workers, running trials, leases, ETA"),
    "errors": Command(
        _TOOLS, "group the error trials by exception type, with one traceback per group"),
    "plot": Command(_TOOLS,
                    "plot loss by trial and loss against each parameter to an image file"),
    "cancel": Command(_MUTATE, "cancel the new (queued) trials of an experiment (and, with "
                               "no coordinator, the running ones whose worker died)"),
    "requeue": Command(_MUTATE, "give finished trials (error ones by default) another try"),
    "delete": Command(
        _MUTATE, "delete an experiment: its trials, its document and its GridFS payload"),
    "stop": Command("parzen.cli.stop", "ask the live coordinator of an experiment to end its "
                                       "run, as Ctrl-C would"),
}


def configure(name: str) -> Configure:
    """The function that adds the arguments of the command ``name``, importing its module."""
    module = COMMANDS[name].module
    importlib.import_module(module)
    if name not in CONFIGURE:
        raise RuntimeError(f"{module} defines no @command({name!r}), which "
                           "parzen.cli._main.COMMANDS says it does")
    return CONFIGURE[name]


def build_parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """The ``parzen`` parser, with the arguments of the command ``chosen`` only (the others
    appear in ``--help`` by name and help)."""
    parser = argparse.ArgumentParser(
        prog="parzen",
        description="Distributed hyperparameter optimisation: run workers and inspect "
                    "experiments.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, cmd in COMMANDS.items():
        # An unconfigured command leaves its --help to the second pass (parse_args).
        p = sub.add_parser(name, help=cmd.help, description=cmd.help,
                           add_help=name == chosen)
        if name == chosen:
            configure(name)(p)
    return parser


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse a command line in two passes: find the command, then parse with its arguments."""
    argv = sys.argv[1:] if argv is None else list(argv)
    chosen, _ = build_parser().parse_known_args(argv)
    return build_parser(chosen.command).parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``parzen`` command; returns the exit status."""
    args = parse_args(argv)
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
