"""Publishing trials to Celery, republishing those whose message may be lost, and waiting
for workers' wake-ups.

A message carries ids only (``evaluate_trial(exp_key, tid)``); the store decides who runs a
trial, so publishing a trial twice is harmless and republishing is the cure for any lost
message (a Redis flush, a crash between insert and publish).
"""

from __future__ import annotations

import logging
import time

from celery import Celery

from parzen.backends import CeleryBackend
from parzen.exceptions import ConfigError
from parzen.store.uri import redact
from parzen.trial import TrialState
from parzen.trials import Trials
from parzen.worker.celery_app import (
    BROKER_CONNECT_TIMEOUT_S,
    TASK_NAME,
    make_app,
    refusal_hint,
    refuse_tls_to_a_plain_port,
)
from parzen.worker.wakeup import MIN_SHARE, FinishedSignal

log = logging.getLogger("parzen.runners.celery")

# A cluster with no worker on the queue is said to be so at once, then every ten minutes: a
# warning per republish (every dispatch timeout) would bury the rest of the log.
IDLE_REPEAT_S = 600.0


def queue_hint(backend: CeleryBackend) -> str:
    """Where this run's trials wait, and the command that starts a worker there."""
    return (f"on queue {backend.queue!r}: start a worker with `parzen worker --queue "
            f"{backend.queue}` (PARZEN_MONGO_URL, PARZEN_BROKER_URL and PARZEN_SECRET set as "
            "for this run)")


class Dispatcher:
    """The Celery side of one run: publish, republish, wait.

    Raises (on construction):
        ConfigError: the broker cannot be reached, or its transport is not installed.
    """

    def __init__(self, backend: CeleryBackend, exp_key: str) -> None:
        assert backend.broker is not None
        self._backend = backend
        self._exp_key = exp_key
        self._app: Celery = make_app(backend.broker, queue=backend.queue)
        self._check_broker()
        self._finished = FinishedSignal.from_url(backend.broker)
        self._dispatched: dict[int, float] = {}
        self._last_wake = time.monotonic()
        self._idle_warned = -1e18
        self.republished = 0

    def _check_broker(self) -> None:
        broker = str(self._backend.broker)
        refuse_tls_to_a_plain_port(broker)  # kombu would hang in the handshake
        try:
            with self._app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=2, interval_start=0.2, interval_step=0.5,
                                       timeout=BROKER_CONNECT_TIMEOUT_S)
        except ImportError as exc:
            # Not the server: this machine lacks the transport's packages.
            fix = ("pip install 'celery[redis]' (a plain pip install parzen brings it)"
                   if broker.startswith("redis") else
                   f"pip install the module {getattr(exc, 'name', None) or 'named above'}")
            raise ConfigError(
                f"cannot load the broker transport for {redact(broker)}: "
                f"{type(exc).__name__}: {exc}. Install it: {fix}"
            ) from None
        except Exception as exc:  # kombu raises transport-specific errors
            raise ConfigError(
                f"cannot reach the broker at {redact(broker)}: "
                f"{type(exc).__name__}: {exc}. Is Redis running and the URL right?"
            ) from None

    def publish(self, tid: int) -> None:
        """Publish trial ``tid``; a broker error is logged and mended by a later republish."""
        self._dispatched[tid] = time.monotonic()
        try:
            self._app.send_task(TASK_NAME, args=[self._exp_key, tid],
                                queue=self._backend.queue)
        except Exception as exc:  # kombu/redis errors; the trial is republished later
            log.warning("could not publish trial %s of %r to %s: %s: %s. %sIt is republished "
                        "every %g s until the broker takes it", tid, self._exp_key,
                        redact(str(self._backend.broker)), type(exc).__name__,
                        str(exc).rstrip("."), refusal_hint(exc),
                        self._backend.dispatch_timeout)

    def republish_waiting(self, trials: Trials, idle_warning: bool = True) -> None:
        """Republish the NEW trials whose message has waited a whole dispatch timeout, and
        say so when trials wait while none runs (no worker listens on the queue), unless not
        ``idle_warning`` (workers that cannot load the objective are said to be the cause)."""
        now = time.monotonic()
        waited = running = 0
        in_flight = trials.in_flight
        # Forget trials no longer in flight: finished, or dropped because their document
        # vanished from the store (Trials.refresh warns of those), so none is republished.
        for tid in [t for t in self._dispatched if t not in in_flight]:
            del self._dispatched[tid]
        for tid in in_flight:
            t = trials.known(tid)
            running += t.state is TrialState.RUNNING
            if t.state is TrialState.NEW and \
                    now - self._dispatched.get(tid, -1e18) > self._backend.dispatch_timeout:
                # Only a trial this coordinator published has waited: a resumed run
                # republishes what it inherited at once.
                waited += tid in self._dispatched
                self.republished += 1
                self.publish(tid)
        if waited and not running and idle_warning:
            self._warn_idle(waited, now)

    def _warn_idle(self, waited: int, now: float) -> None:
        """Once, then every IDLE_REPEAT_S: trials waited a whole dispatch timeout and none is
        running, so no worker listens on the queue, or every one is down or busy."""
        if now - self._idle_warned < IDLE_REPEAT_S:
            return
        self._idle_warned = now
        b = self._backend
        log.warning(
            "%d trial%s of %r waited %g s on queue %r and no worker is running any of them: no "
            "worker listens on that queue, or all are busy with other experiments. To add "
            "one: PARZEN_MONGO_URL='%s' PARZEN_BROKER_URL='%s' parzen worker --queue %s "
            "(passwords shown as ***; the environment, or --mongo-file and --broker-file, keep "
            "them out of `ps`). The messages are republished every %g s; fmin waits for a "
            "worker until its timeout", waited, "s" if waited != 1 else "", self._exp_key,
            b.dispatch_timeout, b.queue, redact(b.url), redact(str(b.broker)), b.queue,
            b.dispatch_timeout)

    def wait(self) -> None:
        """Wait out what is left of the poll interval since the last wake-up, so the loop's
        own work does not stretch the period between refreshes; a worker finishing a trial
        ends it early (``parzen.worker.wakeup``), but not before ``MIN_SHARE`` of it."""
        poll = self._backend.poll_interval
        left = self._last_wake + poll - time.monotonic()
        if self._finished is None or not self._finished.wait(self._exp_key, left):
            time.sleep(max(0.0, self._last_wake + poll - time.monotonic()))
        else:
            time.sleep(max(0.0, self._last_wake + MIN_SHARE * poll - time.monotonic()))
        self._last_wake = time.monotonic()
