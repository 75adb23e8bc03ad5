"""Runners get NEW trials evaluated. The coordinator loop is the same for all of them.

One module (or package) per way of running trials: ``inline`` (in this process, ``Trials``),
``local`` (local sandbox processes, ``ParallelTrials``) and ``celery`` (Celery workers over
MongoDB, ``MongoTrials``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class Runner(Protocol):
    """Evaluates dispatched trials; owned by one coordinator loop."""

    def dispatch(self, tids: Sequence[int]) -> None:
        """Hand NEW trials over for evaluation (publish them, queue them, ...)."""

    def wait(self, timeout_s: float) -> None:
        """Block until some trial may have changed state, or ``timeout_s`` passed."""

    def maintain(self) -> None:
        """Periodic housekeeping: reap expired leases, republish lost messages."""

    def close(self, cancelled: bool) -> None:
        """Release resources; ``cancelled`` says the run ended before its trials did."""
