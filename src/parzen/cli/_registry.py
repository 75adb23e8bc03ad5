"""How a command module defines its sub-commands: ``@command(name)`` on the function that
adds the sub-command's arguments, ``setup`` to finish its parser, and the ``--state``
argument that several commands share.

Which commands exist, and in which module each lives, is listed in ``_main.COMMANDS``; that
module is imported only when its command runs (or prints its ``--help``).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Sequence

from parzen.exceptions import ConfigError
from parzen.trial import STATE_ALIASES, TrialState

Configure = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]

# name -> configure, filled by the command modules as they load. ``configure`` adds the
# arguments and calls ``setup`` (which sets ``parser.set_defaults(run=...)``).
CONFIGURE: dict[str, Configure] = {}

STATE_WORDS = ", ".join(s.word for s in TrialState)
ALIAS_WORDS = ", ".join(f"{alias} = {name}" for alias, name in STATE_ALIASES.items())


def command(name: str) -> Callable[[Configure], Configure]:
    """Register ``configure(parser)`` as the sub-command ``name`` (listed in
    ``_main.COMMANDS`` with its module and help)."""

    def deco(configure: Configure) -> Configure:
        CONFIGURE[name] = configure
        return configure

    return deco


def setup(p: argparse.ArgumentParser, run: Run, examples: str) -> None:
    """Finish a command's parser: its examples after the options, and ``run`` to call."""
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = "examples:\n" + examples
    p.set_defaults(run=_pipe_safe(run))


def _pipe_safe(run: Run) -> Run:
    """``parzen trials EXP | head`` closes the pipe early; that is not an error."""

    @functools.wraps(run)
    def wrapped(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except BrokenPipeError:
            try:  # silence the interpreter's own flush of stdout at exit
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            except (OSError, ValueError):
                pass
            return 0

    return wrapped


def parse_states(values: Sequence[str] | None) -> list[TrialState] | None:
    """The states of ``--state`` options (repeated, or comma-separated), aliases accepted;
    None when none was given."""
    if not values:
        return None
    states = []
    for v in values:
        for name in v.split(","):
            try:
                states.append(TrialState.parse(name))
            except ConfigError as exc:
                raise ConfigError(f"--state: {exc}") from None
    return sorted(set(states))
