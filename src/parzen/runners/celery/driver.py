"""The driver lease: one coordinator at a time inserts and publishes an experiment's trials.

The lease lives on the experiment document and is renewed by the coordinator's loop. Another
coordinator is refused while it is live; it may take over once the lease runs out, or at once
when the holder is a dead process on the same host.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from datetime import datetime, timezone

from parzen import processes
from parzen.exceptions import ExperimentLocked
from parzen.store import DriverLease, Experiment, TrialStore
from parzen.store.retry import CLOSE_PATIENCE_S, patiently

log = logging.getLogger("parzen.runners.celery")

# Read at each use (tests shorten it to watch a takeover).
DRIVER_LEASE_S = 30.0


def locked_error(exp_key: str, cur: DriverLease | None) -> ExperimentLocked:
    """The refusal for a run that finds ``cur`` driving ``exp_key``."""
    pid = cur.pid if cur is not None else "?"
    host = cur.host if cur is not None else "?"
    started = cur.started if cur is not None else "?"
    expires = cur.expires if cur is not None else "?"
    return ExperimentLocked(
        f"experiment {exp_key!r} is being driven by another coordinator: pid "
        f"{pid} on host {host!r} (started {started}, lease until {expires}). Stop it first, "
        f"or wait for its lease to expire ({DRIVER_LEASE_S:g} s after it stops renewing)"
    )


class Driver:
    """This run's claim on an experiment's driver lease."""

    def __init__(self, store: TrialStore, exp_key: str) -> None:
        self._store = store
        self._exp_key = exp_key
        pid = os.getpid()
        self.lease = DriverLease(
            holder=uuid.uuid4().hex, host=socket.gethostname(), pid=pid,
            started=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            pid_ns=processes.pid_namespace(), pid_start=processes.start_ticks(pid))
        self._last_renew = time.monotonic()

    def refuse_if_held(self, old: Experiment | None) -> None:
        """Refuse early, without writing, when another live coordinator holds the lease
        (``acquire`` settles races).

        Raises:
            ExperimentLocked: see ``locked_error``.
        """
        cur = old.driver if old is not None else None
        if cur is None or cur.holder == self.lease.holder or cur.expires is None \
                or cur.expires <= self._store.now():
            return
        if cur.dead_here():
            return  # a dead coordinator on this host: taken over by acquire()
        raise locked_error(self._exp_key, cur)

    def acquire(self) -> None:
        """Take the lease, taking it over from a dead coordinator on this host.

        Raises:
            ExperimentLocked: another live coordinator holds it.
        """
        store, exp_key = self._store, self._exp_key
        if store.acquire_driver(exp_key, self.lease, DRIVER_LEASE_S):
            self._taken()
            return
        exp = store.get_experiment(exp_key)
        cur = exp.driver if exp is not None else None
        if cur is not None and cur.dead_here():
            log.warning("taking over %r from dead coordinator pid %s on this host", exp_key,
                        cur.pid)
            store.release_driver(exp_key, cur.holder)
            if store.acquire_driver(exp_key, self.lease, DRIVER_LEASE_S):
                self._taken()
                return
        raise locked_error(exp_key, cur)

    def _taken(self) -> None:
        self._last_renew = time.monotonic()
        # The lease is checked before each insert (renew_if_due), but this process can be
        # paused between that check and the write; the store refuses the write itself once
        # another coordinator holds the lease.
        self._store.fence_inserts(self._exp_key, self.lease.holder)

    def renew_if_due(self, now: float) -> None:
        """Renew the lease once a third of it has passed.

        Raises:
            ExperimentLocked: another coordinator took the experiment over (this one stalled
                past its lease).
            StoreUnavailable: the store could not be reached.
        """
        if now - self._last_renew <= DRIVER_LEASE_S / 3:
            return
        # renew, not acquire: a lease taken by another and let go since is not ours again.
        if not self._store.renew_driver(self._exp_key, self.lease.holder, DRIVER_LEASE_S):
            raise ExperimentLocked(
                f"lost the driver lease on {self._exp_key!r} to another coordinator "
                "(this one stalled for longer than the lease); stopping"
            )
        self._last_renew = now

    def still_held(self) -> bool:
        """Whether this coordinator still holds the lease (renewing it): asked right before
        a write that only the driver may make, such as cancelling the experiment's queue."""
        return bool(patiently(
            lambda: self._store.renew_driver(self._exp_key, self.lease.holder, DRIVER_LEASE_S),
            "renewing the driver lease", CLOSE_PATIENCE_S))

    def release(self) -> None:
        """Give the lease up (a no-op if another coordinator holds it now)."""
        # A MongoTrials may outlive this run: its later inserts (a warm start, the next fmin
        # with its own lease) are not this run's to fence.
        self._store.fence_inserts(self._exp_key, None)
        patiently(lambda: self._store.release_driver(self._exp_key, self.lease.holder),
                  "releasing the driver lease", CLOSE_PATIENCE_S)
