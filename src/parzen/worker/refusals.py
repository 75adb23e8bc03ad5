"""A worker that cannot load an experiment's objective stops taking that experiment's trials.

The cause lies with this worker or with the payload, never with one trial: a key other than
the coordinator's (``PayloadSignatureError``), a module missing on this host, another Python
minor version for code pickled by value, a GridFS payload it cannot read. Such a worker

- remembers the objective as one it cannot load (by experiment and payload hash, so a
  payload signed later, with the right key, is tried afresh);
- says so once, loudly, in its log, with the cause and the fix;
- records it on the experiment document (``TrialStore.record_refusal``), where the
  coordinator reads it: the coordinator stops the run only when no other worker takes the
  trials, and then names every worker that refused;
- passes each of that experiment's trials it receives back to the queue, unclaimed, for the
  other workers.

A worker that loads the objective after all (restarted under the same name with the right
key) clears its record.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from parzen.exceptions import StoreError
from parzen.store import Experiment, Refusal, TrialStore
from parzen.trial import TrialState

log = logging.getLogger("parzen.worker")

# How long a slot that passed a trial back holds its message before taking another. The
# passed trial is published first, so an idle worker that can run it gets it at once; without
# the hold, a refusing worker with nothing else to do would take the same message straight
# back and spin while the other workers are busy.
PASS_ON_HOLD_S = 1.0
# A refusing worker records its refusal again this often while it keeps receiving the
# experiment's trials: a coordinator counts only refusals recorded during its own run (less
# this period), so a worker that refused long ago, and was fixed or is gone, is not named.
RENEW_S = 10.0
# How much of a cause a refusal keeps: the message names the cause and the fix.
MAX_REASON_CHARS = 2000


def objective_id(exp: Experiment) -> str:
    """The payload a refusal is about: its hash (or, for an old import-path objective, the
    path)."""
    obj = exp.objective
    return (obj.sha256 or obj.path or "") if obj is not None else ""


class Refusals:
    """The objectives this worker process cannot load, shared by its slots.

    Args:
        store: the trial store.
        worker: this worker's name.
        host: its host name.
        pid: its process id.
        shutdown: set when the worker stops; a holding slot lets go at once.
    """

    def __init__(self, store: TrialStore, worker: str, host: str, pid: int,
                 shutdown: threading.Event) -> None:
        self._store = store
        self._worker = worker
        self._host = host
        self._pid = pid
        self._shutdown = shutdown
        self._lock = threading.Lock()
        self._record_lock = threading.Lock()
        # (exp_key, objective_id) -> (reason, monotonic time of its last record)
        self._refused: dict[tuple[str, str], tuple[str, float]] = {}

    def refuses(self, exp: Experiment) -> bool:
        """Whether this worker cannot load ``exp``'s objective; renews the record in the
        store when it is due."""
        key = (exp.exp_key, objective_id(exp))
        with self._lock:
            known = self._refused.get(key)
        if known is None:
            return False
        reason, recorded = known
        if time.monotonic() - recorded > RENEW_S \
                or not any(r.worker == self._worker for r in exp.refusals):
            self._record(exp, reason)
        return True

    def refuse(self, exp: Experiment, cause: BaseException | None) -> None:
        """Remember that this worker cannot load ``exp``'s objective, record it in the store,
        and say so in the log (once per objective)."""
        key = (exp.exp_key, objective_id(exp))
        reason = str(cause)[:MAX_REASON_CHARS] if cause is not None else "unknown cause"
        with self._lock:
            first = key not in self._refused
            self._refused[key] = (reason, time.monotonic())
        self._record(exp, reason)
        if first:
            log.error(
                "worker %s REFUSES experiment %r: it cannot load the objective, and stops "
                "taking its trials until it is restarted. %s. Its trials go back to the queue "
                "for the other workers; the refusal is recorded on the experiment, and the "
                "coordinator stops the run only if no other worker takes them",
                self._worker, exp.exp_key, reason.rstrip("."))

    def loaded(self, exp: Experiment) -> None:
        """This worker loaded ``exp``'s objective: drop a refusal it recorded earlier."""
        if any(r.worker == self._worker for r in exp.refusals):
            try:
                self._store.clear_refusal(exp.exp_key, self._worker)
            except StoreError as exc:  # a stale record only names this worker needlessly
                log.warning("experiment %r: could not clear this worker's old refusal: %s",
                            exp.exp_key, exc)

    def pass_on(self, exp: Experiment, tid: int,
                republish: Callable[[str, int], None] | None) -> None:
        """Give trial ``tid``'s message back to the queue for the other workers, then hold
        this slot ``PASS_ON_HOLD_S``. Nothing is passed on for a trial that is no longer
        queued, or once no coordinator drives the experiment (the next one republishes what
        it finds queued), so no message circles forever."""
        try:
            state = self._store.get(exp.exp_key, tid).state
            now = self._store.now()
        except StoreError as exc:  # unreachable, or the trial is gone: the coordinator
            log.warning("trial %s of %r: %s; not passing it on", tid, exp.exp_key, exc)
            return  #                republishes what waits a dispatch timeout
        driven = exp.driver is not None and exp.driver.expires is not None \
            and exp.driver.expires > now
        if state is not TrialState.NEW or not driven or republish is None:
            return
        republish(exp.exp_key, tid)
        self._shutdown.wait(PASS_ON_HOLD_S)

    def _record(self, exp: Experiment, reason: str) -> None:
        try:
            # One write at a time: the store's replace of this worker's record is two
            # operations, and slots refusing together would leave two records.
            with self._record_lock:
                self._store.record_refusal(exp.exp_key, Refusal(
                    worker=self._worker, host=self._host, pid=self._pid,
                    objective=objective_id(exp), reason=reason))
        except StoreError as exc:  # the log above still says it; retried at the next renewal
            log.warning("experiment %r: could not record this worker's refusal: %s",
                        exp.exp_key, exc)
            return
        with self._lock:
            key = (exp.exp_key, objective_id(exp))
            if key in self._refused:
                self._refused[key] = (self._refused[key][0], time.monotonic())
