"""The worker's Celery app, configured from the environment (``build``):

    PARZEN_MONGO_URL=mongodb://db:27017/parzen PARZEN_BROKER_URL=redis://q:6379/0 \\
    PARZEN_SECRET=... celery -A parzen.worker.app worker

``parzen worker --mongo ... --broker ...`` sets the same variables and starts the same app.
Optional: ``PARZEN_QUEUE``, ``PARZEN_CONCURRENCY``, ``PARZEN_VISIBILITY_TIMEOUT``,
``PARZEN_WORKER_NAME``, ``PARZEN_SECRET_FILE``, ``PARZEN_HEALTH_FILE`` (``worker/health.py``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

from celery import signals
from celery.worker.consumer import Consumer
from celery.worker.state import maybe_shutdown

from parzen.exceptions import ConfigError, StoreUnavailable
from parzen.execution.payload import key_fingerprint
from parzen.execution.run import OutcomeStatus
from parzen.store import MongoTrialStore
from parzen.store.uri import redact
from parzen.worker import health
from parzen.worker.celery_app import (
    DEFAULT_VISIBILITY_TIMEOUT_S,
    TASK_NAME,
    make_app,
    refusal_hint,
    refuse_tls_to_a_plain_port,
)
from parzen.worker.runtime import WorkerConfig, WorkerRuntime, worker_name
from parzen.worker.trial_log import node_name, quiet_celery, trial_line
from parzen.worker.wakeup import FinishedSignal

log = logging.getLogger("parzen.worker")

# Back-off between reconnections after the broker refused a command, doubling from the first
# to the last; a refusal after a quiet spell of REFUSAL_RESET_S starts again from the first.
REFUSAL_BACKOFF_S = (1.0, 30.0)
REFUSAL_RESET_S = 120.0


def _int_env(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = env.get(name, "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} must be an integer") from None
    if value < 1:
        raise ConfigError(f"{name}={raw!r} must be >= 1")
    return value


class BackoffConsumer(Consumer):  # type: ignore[misc]  # Celery is untyped
    """Celery's consumer, backing off when the broker refuses a command.

    Redis refuses commands while it stays connected: OOM at ``maxmemory``, MISCONF when it
    cannot save, READONLY after a failover. kombu calls these channel errors; Celery stopped
    the worker on them ("Unrecoverable error", exit status 0, so nothing restarted it) or,
    told to retry, reconnected several times a second. This consumer reconnects as after a
    lost connection, waiting longer each time and saying why; running trials go on (their
    results go to MongoDB), and the coordinator republishes any message Redis dropped.
    """

    _refusal_delay = 0.0
    _last_refusal = float("-inf")

    def _refused(self, exc: BaseException) -> bool:
        return isinstance(exc, self.channel_errors) \
            and not isinstance(exc, self.connection_errors)

    def on_connection_error_before_connected(self, exc: BaseException) -> None:
        if self._refused(exc):
            self._back_off(exc)
        else:
            super().on_connection_error_before_connected(exc)

    def on_connection_error_after_connected(self, exc: BaseException) -> None:
        super().on_connection_error_after_connected(exc)  # closes the connection
        if self._refused(exc):
            self._back_off(exc)

    def _back_off(self, exc: BaseException) -> None:
        now = time.monotonic()
        first, most = REFUSAL_BACKOFF_S
        if now - self._last_refusal > REFUSAL_RESET_S:
            self._refusal_delay = 0.0
        self._refusal_delay = min(most, max(first, 2 * self._refusal_delay))
        self._last_refusal = now
        log.error("the broker at %s refused a command: %s: %s. %sThe worker keeps its "
                  "running trials and reconnects in %g s", redact(self.app.conf.broker_url),
                  type(exc).__name__, str(exc).rstrip("."), refusal_hint(exc),
                  self._refusal_delay)
        deadline = now + self._refusal_delay
        while (left := deadline - time.monotonic()) > 0:
            maybe_shutdown()  # SIGTERM during the wait stops the worker as usual
            time.sleep(min(0.2, left))
        self._last_refusal = time.monotonic()


class WorkerApp:
    """One worker process: its Celery app, its task and its lifecycle signal handlers.

    Built once per process by ``build``; ``parzen worker`` builds it after reading its
    command line, ``celery -A parzen.worker.app`` on its first look at ``app``.
    """

    def __init__(self, config: WorkerConfig, concurrency: int | None,
                 visibility_timeout_s: float) -> None:
        self.config = config
        self.celery = make_app(config.broker_url, queue=config.queue, concurrency=concurrency,
                               visibility_timeout_s=visibility_timeout_s)
        self.celery.conf.update(worker_consumer=BackoffConsumer)
        # The worker's exit status, as Celery decided it (Celery's worker_main drops it).
        self.exit_status = 0
        self._shutdown = threading.Event()
        self._finished = FinishedSignal.from_url(config.broker_url)
        self._runtime_lock = threading.Lock()
        self._runtime: WorkerRuntime | None = None
        self._register()

    @property
    def node_name(self) -> str:
        """This worker's Celery node name (``parzen worker`` passes it as --hostname)."""
        return node_name(worker_name(self.config.name), socket.gethostname())

    def runtime(self) -> WorkerRuntime:
        """The process's runtime, connecting to MongoDB on first use.

        Raises:
            StoreUnavailable: MongoDB cannot be reached (the task retries with backoff).
        """
        with self._runtime_lock:
            if self._runtime is None:
                store = MongoTrialStore.from_url(self.config.mongo_url)
                self._runtime = WorkerRuntime(store, self.config.secret, self.config.name,
                                              self._shutdown)
            return self._runtime

    def _republish(self, exp_key: str, tid: int) -> None:
        try:
            self.celery.send_task(TASK_NAME, args=[exp_key, tid], queue=self.config.queue)
        except Exception as exc:  # kombu/redis errors: the broker is down or flapping
            # The trial is NEW in the store; the coordinator republishes it after its
            # dispatch_timeout, so a failed republish only delays it.
            log.warning("could not republish trial %s of %r to %s: %s", tid, exp_key,
                        redact(self.config.broker_url), exc)

    def _register(self) -> None:
        worker = self
        config = self.config

        @self.celery.task(name=TASK_NAME, bind=True, acks_late=True, ignore_result=True,
                          max_retries=None)
        def evaluate_trial(self: Any, exp_key: str, tid: int) -> None:
            """Evaluate one trial. Safe to deliver twice: the store's claim decides who runs
            it."""
            try:
                outcome = worker.runtime().evaluate_trial(exp_key, int(tid),
                                                          republish=worker._republish)
            except StoreUnavailable as exc:
                delay = min(60, 2 ** min(self.request.retries, 6))
                log.warning("trial %s of %r: %s; retrying in %ds", tid, exp_key, exc, delay)
                raise self.retry(countdown=delay, exc=exc) from exc
            if outcome.status in (OutcomeStatus.DONE, OutcomeStatus.ERROR,
                                  OutcomeStatus.PRUNED) \
                    and worker._finished is not None:
                worker._finished.push(exp_key, int(tid))  # wakes the coordinator now
            line = trial_line(exp_key, int(tid), outcome)
            if line is not None:
                log.info("%s", line)

        @signals.after_setup_logger.connect(weak=False)
        def _quiet(loglevel: int | str = logging.INFO, **_: Any) -> None:
            quiet_celery(loglevel)

        @signals.worker_ready.connect(weak=False)
        def _ready(**_: Any) -> None:
            # MongoDB first: "ready" followed by an error buries the error among Celery's
            # own lines.
            try:
                worker.runtime().siblings.start(worker._republish, worker._shutdown)
            except StoreUnavailable as exc:
                log.error("parzen worker NOT ready, it cannot evaluate trials: %s. It keeps "
                          "listening on queue %s (broker %s) and retries MongoDB when trials "
                          "arrive", exc, config.queue, redact(config.broker_url))
                return
            log.info("parzen worker ready: mongo=%s broker=%s queue=%s key fingerprint=%s",
                     redact(config.mongo_url), redact(config.broker_url), config.queue,
                     key_fingerprint(config.secret))

        @signals.worker_shutting_down.connect(weak=False)
        def _shutting_down(**_: Any) -> None:
            # Running trials are released to NEW (not failed) and their messages
            # republished, so the rest of the cluster picks them up without waiting out the
            # lease.
            worker._shutdown.set()

        @signals.worker_shutdown.connect(weak=False)
        def _closed(sender: Any = None, **_: Any) -> None:
            # 1 after "Unrecoverable error": a supervisor (systemd's Restart=on-failure)
            # restarts a worker that failed, and only one that exits non-zero.
            worker.exit_status = int(getattr(sender, "exitcode", 0) or 0)
            if worker._runtime is not None:
                worker._runtime.close()


def build(env: Mapping[str, str] | None = None) -> WorkerApp:
    """The worker, configured from ``env`` (default: the process environment). A
    misconfigured worker fails here, at start, with the fix, not at its first trial.

    Raises:
        ConfigError: a variable is missing or malformed; the message names it.
    """
    e = os.environ if env is None else env
    concurrency = _int_env(e, "PARZEN_CONCURRENCY", None)
    visibility = _int_env(e, "PARZEN_VISIBILITY_TIMEOUT", DEFAULT_VISIBILITY_TIMEOUT_S)
    config = WorkerConfig.from_env(e)
    # Before Celery starts: it would sit silent in the TLS handshake, even through SIGTERM.
    refuse_tls_to_a_plain_port(config.broker_url)
    built = WorkerApp(config, concurrency, visibility or DEFAULT_VISIBILITY_TIMEOUT_S)
    if e.get("PARZEN_HEALTH_FILE"):
        health.install(built.celery, e["PARZEN_HEALTH_FILE"], config.name)
    return built


_built: WorkerApp | None = None


def __getattr__(name: str) -> Any:
    # ``celery -A parzen.worker.app worker`` looks up ``app``: build it from the environment
    # then, and only then, so importing this module has no side effect.
    global _built
    if name in ("app", "celery"):
        if _built is None:
            _built = build()
        return _built.celery
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
