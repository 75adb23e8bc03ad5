"""The runner protocol: how the coordinator loop hands trials over and gets them evaluated.

The loop is the same for every way of running trials; a runner only dispatches, waits, does
its housekeeping and closes. What a runner must do when the run ends is decided here, once:
``Closing`` says how the run ended, and each runner acts on it (a Celery runner cancels the
queue while it still holds the driver lease; a local one stops its slots first, so that the
trials they were running are back in the queue, then cancels the queue).
"""

from __future__ import annotations

import enum
import functools
import logging
from collections.abc import Sequence
from typing import Protocol

from parzen.store import TrialStore
from parzen.store.retry import CLOSE_PATIENCE_S, patiently
from parzen.trial import TrialState

log = logging.getLogger("parzen.runners")


class Closing(enum.Enum):
    """How the run ends, which decides what its runner does with the trials left over."""

    FINISHED = "finished"  # nothing is in flight: cancel whatever is still queued
    STOPPED = "stopped"  # stopped early (timeout, early stop, Ctrl-C, an error): cancel the
    #                      queued trials and the running ones
    HANDS_OFF = "hands off"  # the run never took the experiment, or another coordinator
    #                          took it over: no trial is ours to touch


class Runner(Protocol):
    """Evaluates dispatched trials; owned by one coordinator loop."""

    def start(self) -> None:
        """Take the experiment for this run (a Celery runner writes its driver lease and
        the experiment document here). Nothing is written before this call, so a run
        refused earlier leaves nothing behind.

        Raises:
            ExperimentLocked: another live coordinator drives the experiment.
            SpaceChanged: the experiment's trials come from another space or objective.
        """

    def dispatch(self, tids: Sequence[int]) -> None:
        """Hand NEW trials over for evaluation (publish them, queue them, ...)."""

    def wait(self, timeout_s: float) -> None:
        """Block until some trial may have changed state, or ``timeout_s`` passed."""

    def maintain(self) -> None:
        """Periodic housekeeping: renew leases, reap expired ones, republish lost messages.

        Raises:
            ObjectiveUnloadable: no worker can load the objective.
            ExperimentLocked: another coordinator took the experiment over.
        """

    def close(self, closing: Closing) -> None:
        """Release resources and settle the leftover trials as ``closing`` says."""

    def stop_requested(self) -> str | None:
        """Why the run was asked to stop from outside (``parzen stop``, read from the store
        by ``maintain``), or None. The loop then ends the run as Ctrl-C would: it cancels
        the queued and running trials and returns the best one."""

    def queue_hint(self) -> str:
        """Where queued trials wait to be picked up and how to add an evaluator there, for
        an error about trials nobody picked up (``"on queue 'gpu': start a worker with
        ..."``); "" when there is nothing to add."""


def cancel_queued(store: TrialStore, exp_key: str, states: Sequence[TrialState]) -> int:
    """Cancel the experiment's trials in ``states``, riding out a short store outage."""
    n = patiently(functools.partial(store.cancel, exp_key, tuple(states)),
                  "cancelling queued trials", CLOSE_PATIENCE_S)
    if n:
        log.info("cancelled %d queued or running trials of %r", n, exp_key)
    return n
