"""``CeleryRunner``: trials published to Celery workers that share a MongoDB store.

Composed of parts with one job each: ``driver`` (the driver lease), ``experiment`` (the signed
objective and the experiment document), ``dispatch`` (publish, republish, wake-ups),
``reaper`` (expired leases back to NEW) and ``refusals`` (workers that cannot load the
objective). Construction only reads and checks (signing key,
payload, broker, changed space or objective, a live driver); the first writes wait for
``start()``, so a run refused before then, a bad ``points_to_evaluate`` included, leaves
nothing behind.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from parzen.backends import CeleryBackend
from parzen.domain import Domain
from parzen.exceptions import ConfigError, StoreUnavailable, UnreadableTrials
from parzen.execution import payload
from parzen.pruners import Pruner
from parzen.runners.base import Closing, cancel_queued
from parzen.runners.celery import experiment
from parzen.runners.celery.dispatch import Dispatcher, queue_hint
from parzen.runners.celery.driver import Driver
from parzen.runners.celery.reaper import reap
from parzen.runners.celery.refusals import RefusalWatch
from parzen.store import Experiment
from parzen.store.retry import patiently
from parzen.trial import TrialState
from parzen.trials import Trials

log = logging.getLogger("parzen.runners.celery")


class CeleryRunner:
    """Publishes trials to Celery and keeps the experiment healthy while fmin runs.

    Args:
        trials: the run's trials (read side), over the shared store.
        domain: the objective and its space.
        backend: broker, queue, key and timings (``MongoTrials.backend()``).
        max_evals: the run's budget, recorded on the experiment for the tools (None: none).
    Raises:
        ConfigError: no broker, no signing key, an unreachable broker, a bad import path.
        UnreadableTrials: trial documents of the experiment cannot be read as trials (edited
            by hand); the message names each by ``_id`` and says how to mend it.
        SpaceChanged: the experiment's trials come from another space or objective.
        ExperimentLocked: another live coordinator drives the experiment.
    """

    def __init__(self, trials: Trials, domain: Domain, backend: CeleryBackend,
                 max_evals: int | None, pruner: Pruner | None = None) -> None:
        # Workers rebuild the pruner from its settings in the experiment document.
        self._pruner = pruner.to_dict() if pruner is not None else None
        if not backend.broker:
            raise ConfigError(
                "MongoTrials needs a broker to reach the workers: pass "
                "broker='redis://host:6379/0' or set PARZEN_BROKER_URL"
            )
        self._trials = trials
        self._store = trials.store
        self._exp_key = trials.exp_key
        self._backend = backend
        self._domain = domain
        self._max_evals = max_evals
        key = payload.load_secret(backend.secret)
        assert key is not None
        self._objective, self._gridfs_data = experiment.build_objective(
            domain, backend, key, self._exp_key)
        self._driver = Driver(self._store, self._exp_key)
        old = self._store.get_experiment(self._exp_key)
        try:
            if old is not None:
                # Read every trial now, so documents that cannot be read as trials are all
                # named in one refusal, before this run writes anything (the loop's first
                # refresh then reads only what is in flight).
                trials.refresh()
            if not backend.allow_space_change:
                experiment.refuse_changes(self._store, old, domain, self._objective)
            n = self._store.count_by_state(self._exp_key) if old is not None else {}
        except UnreadableTrials as exc:
            raise UnreadableTrials(exc.documents,
                                   f"refusing to resume {self._exp_key!r}") from None
        self._driver.refuse_if_held(old)
        if old is not None:
            log.info("resuming experiment %r: %d done, %d failed, %d cancelled, %d queued or "
                     "running; the next trial is %d", self._exp_key, n[TrialState.DONE],
                     n[TrialState.ERROR], n[TrialState.CANCEL],
                     n[TrialState.NEW] + n[TrialState.RUNNING], old.next_tid)
        self._dispatcher = Dispatcher(backend, self._exp_key)
        self._refusals = RefusalWatch(self._exp_key, backend.dispatch_timeout)
        self._stop = ""  # why ``parzen stop`` asked this run to end, once it did
        self._started = False
        self._last_reap = 0.0
        self._requeued = 0

    def start(self) -> None:
        old = self._store.get_experiment(self._exp_key)
        if not self._backend.allow_space_change:
            # Again: another run may have written meanwhile.
            experiment.refuse_changes(self._store, old, self._domain, self._objective)
        self._driver.acquire()
        try:
            self._objective = experiment.write_experiment(
                self._store, self._exp_key, self._domain, self._objective, self._gridfs_data,
                self._backend.trial_settings, self._max_evals, old, self._pruner)
            self._gridfs_data = None
        except BaseException:
            # Don't keep others off an experiment this run never started.
            self._driver.release()
            raise
        self._started = True
        self._refusals.start(self._objective.sha256, self._store.now())
        self._adopt_changes()

    def _adopt_changes(self) -> None:
        """Read the experiment again when it changed since ``trials`` last read it.

        A MongoTrials kept from an earlier fmin, or read before an operator's requeue, knows
        the requeued trials as finished: this run would neither run nor count them, and would
        cancel them at its end. Checked now, under the driver lease, when only workers change
        trials: after a refresh the trials in flight are current, so equal counts mean
        nothing this object knows is stale.
        """
        trials = self._trials
        patiently(trials.refresh, "reading the experiment")
        stored = patiently(lambda: self._store.count_by_state(self._exp_key),
                           "counting trials")
        if stored != trials.state_counts():
            log.info("experiment %r changed since this MongoTrials last read it (an operator's "
                     "requeue or cancel?): reading it again", self._exp_key)
            patiently(trials.reload, "reading the experiment")

    def dispatch(self, tids: Sequence[int]) -> None:
        for tid in tids:
            self._dispatcher.publish(tid)

    def wait(self, timeout_s: float) -> None:
        self._dispatcher.wait()

    def maintain(self) -> None:
        now = time.monotonic()
        settings = self._backend.trial_settings
        try:
            self._driver.renew_if_due(now)
            if now - self._last_reap > min(1.0, settings.heartbeat_s):
                self._last_reap = now
                self._requeued += reap(
                    self._store, self._exp_key, settings.max_attempts,
                    self._dispatcher.publish,
                    [self._trials.known(tid) for tid in self._trials.in_flight])
                exp = self._store.get_experiment(self._exp_key)
                self._refusals.update(exp)
                self._stop_request(exp)
        except StoreUnavailable as exc:
            log.warning("%s; retrying", exc)
            return
        self._refusals.check(self._trials, now)
        self._dispatcher.republish_waiting(self._trials, idle_warning=not self._refusals.refusals)

    def _stop_request(self, exp: Experiment | None) -> None:
        """Take note of a ``parzen stop`` addressed to this run (a request to another run,
        an earlier one, is not ours to obey)."""
        asked = exp.stop_request if exp is not None else None
        if asked is None or asked.holder != self._driver.lease.holder or self._stop:
            return
        when = asked.at.isoformat(timespec="seconds") if asked.at is not None else "?"
        self._stop = f"asked by parzen stop ({asked.by} at {when})"
        log.warning("%s: ending the run of %r as Ctrl-C would: cancelling its queued and "
                    "running trials and returning the best so far", self._stop, self._exp_key)

    def stop_requested(self) -> str | None:
        return self._stop or None

    def queue_hint(self) -> str:
        return queue_hint(self._backend)

    def close(self, closing: Closing) -> None:
        if not self._started:
            return  # nothing was written, and the driver lease was never taken
        try:
            # While we still hold the driver lease: cancelled after releasing it, the queue
            # could already belong to a coordinator that took over. Asked again here, since
            # this process may have been paused since the loop last renewed it.
            if closing in (Closing.STOPPED, Closing.FINISHED) and not self._driver.still_held():
                log.warning("coordinator for %r: another coordinator took the experiment "
                            "over while this one was paused; its queued and running trials "
                            "are left to it", self._exp_key)
            elif closing is Closing.STOPPED:
                cancel_queued(self._store, self._exp_key, (TrialState.NEW, TrialState.RUNNING))
            elif closing is Closing.FINISHED:
                cancel_queued(self._store, self._exp_key, (TrialState.NEW,))
        finally:
            self._driver.release()
            log.info("coordinator for %r: %d trials requeued (lease expired or worker seen dead; "
                     "workers requeue their dead siblings' trials too), %d messages "
                     "republished", self._exp_key, self._requeued,
                     self._dispatcher.republished)
