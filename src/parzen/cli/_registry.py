"""How a command module defines its sub-commands: ``@command(name)`` on the function that
adds the sub-command's arguments.

Which commands exist, and in which module each lives, is listed in ``_main.COMMANDS``; that
module is imported only when its command runs (or prints its ``--help``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

Configure = Callable[[argparse.ArgumentParser], None]

# name -> configure, filled by the command modules as they load. ``configure`` adds the
# arguments and sets ``parser.set_defaults(run=...)``.
CONFIGURE: dict[str, Configure] = {}


def command(name: str) -> Callable[[Configure], Configure]:
    """Register ``configure(parser)`` as the sub-command ``name`` (listed in
    ``_main.COMMANDS`` with its module and help)."""

    def deco(configure: Configure) -> Configure:
        CONFIGURE[name] = configure
        return configure

    return deco
