"""The ``parzen`` command: ``parzen worker`` plus the experiment tools (see ``--help``)."""

from __future__ import annotations

from parzen.cli._main import main

__all__ = ["main"]
