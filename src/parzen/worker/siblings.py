"""A worker's watch over its siblings: the other workers of its host (its pid namespace).

When one of them dies (``kill -9``, the out-of-memory killer), the trials it was running sit
RUNNING until their lease runs out (a minute by default), unless someone who can see that its
process is gone requeues them. The coordinator's reaper can when it runs on the same host;
on a cluster it rarely does, but the dead worker's siblings always can. So every worker
looks, every ``CHECK_S`` seconds, at the running trials of the experiments it has worked
on, and requeues those whose owner's process has ended (``Owner.known_dead``) through the
store's fenced ``requeue_dead``; each requeued trial is published again at once. Several
siblings (and the reaper) may look at the same trial: the claim token lets one of them win.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from parzen.exceptions import StoreError
from parzen.store import TrialStore
from parzen.trial import TrialState

log = logging.getLogger("parzen.worker")

# How often a worker looks for dead siblings: well inside the default 60 s lease, and few
# reads (one per experiment worked on) for the store.
CHECK_S = 5.0


class SiblingWatch:
    """Requeues the trials of dead workers of this host (see the module's docstring).

    Args:
        store: the trial store.
        name: this worker's name, for its log lines.
    """

    def __init__(self, store: TrialStore, name: str) -> None:
        self._store = store
        self._name = name
        self._lock = threading.Lock()
        self._watched: dict[str, int] = {}  # exp_key -> its max_attempts
        self._thread: threading.Thread | None = None

    def watch(self, exp_key: str, max_attempts: int) -> None:
        """Look after ``exp_key``'s trials from now on (this worker runs some of them)."""
        with self._lock:
            self._watched[exp_key] = max_attempts

    def check(self, republish: Callable[[str, int], None]) -> int:
        """Requeue and republish the watched experiments' trials whose worker's process has
        ended; returns how many went back to NEW.

        Raises:
            StoreError: the store could not be read or written.
        """
        with self._lock:
            watched = dict(self._watched)
        n = 0
        for exp_key, max_attempts in watched.items():
            dead = {t.tid: t.claim_token
                    for t in self._store.find(exp_key, [TrialState.RUNNING])
                    if t.claim_token and t.owner is not None and t.owner.known_dead()}
            if not dead:
                continue
            for t in self._store.requeue_dead(exp_key, dead, max_attempts):
                owner = t.history[-1].owner if t.history else None
                if t.state is not TrialState.NEW:
                    log.error("trial %s of %r: its worker %s died on its last allowed "
                              "attempt (max_attempts=%d): failed (WorkerDied)", t.tid,
                              exp_key, owner or "?", max_attempts)
                    continue
                n += 1
                log.warning("trial %s of %r: its worker %s died (its process is gone from "
                            "this host; seen by worker %s), requeued for attempt %d without "
                            "waiting for its lease", t.tid, exp_key, owner or "?", self._name,
                            t.attempts + 1)
                republish(exp_key, t.tid)
        return n

    def start(self, republish: Callable[[str, int], None], stop: threading.Event) -> None:
        """Check every ``CHECK_S`` seconds in a daemon thread until ``stop`` is set."""
        if self._thread is not None:
            return

        def loop() -> None:
            while not stop.wait(CHECK_S):
                try:
                    self.check(republish)
                except StoreError as exc:  # an outage: the leases still expire meanwhile
                    log.debug("checking for dead sibling workers failed: %s", exc)
                except Exception:  # a driver's error: not ours to enumerate; keep watching
                    log.exception("checking for dead sibling workers failed; the leases of "
                                  "their trials still expire")

        self._thread = threading.Thread(target=loop, name="parzen-siblings", daemon=True)
        self._thread.start()
