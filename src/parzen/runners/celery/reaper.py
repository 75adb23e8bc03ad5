"""Reaping lost attempts: a RUNNING trial whose worker died goes back to NEW (or to ERROR
once ``max_attempts`` is used up), and is published again.

Two signs tell that a worker died. Its lease expires: it stopped heartbeating, wherever it
ran. Or, sooner, its process is seen to have ended (``Owner.known_dead``): the coordinator
can see that of workers in its own pid namespace (the same host, outside containers), and
their trials need not wait out the lease.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from parzen.store import TrialStore
from parzen.trial import Trial, TrialState

log = logging.getLogger("parzen.runners.celery")


def reap(store: TrialStore, exp_key: str, max_attempts: int,
         publish: Callable[[int], None], running: Iterable[Trial] = ()) -> int:
    """Requeue the experiment's trials whose worker died, and publish each requeued trial.

    Args:
        running: trials believed RUNNING (as last read): those whose owner's process has
            ended are requeued without waiting for their lease. The requeue is fenced on
            each one's claim token, so a trial that moved on since it was read is left alone.
    Returns:
        How many trials went back to NEW.
    Raises:
        StoreUnavailable: the store could not be reached.
    """
    n = 0
    dead = {t.tid: t.claim_token for t in running
            if t.state is TrialState.RUNNING and t.claim_token and t.owner is not None
            and t.owner.known_dead()}
    if dead:
        for t in store.requeue_dead(exp_key, dead, max_attempts):
            last = t.history[-1].owner if t.history else None
            if t.state is not TrialState.NEW:
                log.error("trial %s of %r: its worker %s died on its last allowed attempt "
                          "(max_attempts=%d): failed (WorkerDied)", t.tid, exp_key,
                          last or "?", max_attempts)
                continue
            n += 1
            log.warning("trial %s of %r: its worker %s died (its process is gone from this "
                        "host), requeued for attempt %d without waiting for its lease",
                        t.tid, exp_key, last or "?", t.attempts + 1)
            publish(t.tid)
    for t in store.requeue_expired(exp_key, max_attempts):
        if t.state is not TrialState.NEW:
            continue  # out of attempts: now ERROR(LeaseExpired), nothing to publish
        n += 1
        last = t.history[-1].owner if t.history else None
        log.warning("trial %s of %r: lease expired (worker %s died or stalled), requeued for "
                    "attempt %d", t.tid, exp_key, last or "?", t.attempts + 1)
        publish(t.tid)
    return n
