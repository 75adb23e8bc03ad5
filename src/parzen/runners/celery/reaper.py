"""Reaping expired leases: a RUNNING trial whose worker stopped heartbeating goes back to NEW
(or to ERROR once ``max_attempts`` is used up), and is published again."""

from __future__ import annotations

import logging
from collections.abc import Callable

from parzen.store import TrialStore
from parzen.trial import TrialState

log = logging.getLogger("parzen.runners.celery")


def reap(store: TrialStore, exp_key: str, max_attempts: int,
         publish: Callable[[int], None]) -> int:
    """Requeue the experiment's expired leases and publish each requeued trial.

    Returns:
        How many trials went back to NEW.
    Raises:
        StoreUnavailable: the store could not be reached.
    """
    n = 0
    for t in store.requeue_expired(exp_key, max_attempts):
        if t.state is not TrialState.NEW:
            continue  # out of attempts: now ERROR(LeaseExpired), nothing to publish
        n += 1
        last = t.history[-1].owner if t.history else None
        log.warning("trial %s of %r: lease expired (worker %s died or stalled), requeued for "
                    "attempt %d", t.tid, exp_key, last or "?", t.attempts + 1)
        publish(t.tid)
    return n
