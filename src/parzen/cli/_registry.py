"""The registry of ``parzen`` sub-commands, filled by the command modules as they load."""

from __future__ import annotations

import argparse
from collections.abc import Callable

Configure = Callable[[argparse.ArgumentParser], None]

# Each command module registers its commands here: name -> (configure, help). ``configure``
# adds the arguments and sets ``parser.set_defaults(run=...)``.
COMMANDS: dict[str, tuple[Configure, str]] = {}


def command(name: str, help_text: str) -> Callable[[Configure], Configure]:
    """Register ``configure(parser)`` as the sub-command ``name``."""

    def deco(configure: Configure) -> Configure:
        COMMANDS[name] = (configure, help_text)
        return configure

    return deco
