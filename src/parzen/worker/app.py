"""The worker's Celery app, configured from the environment:

    PARZEN_MONGO_URL=mongodb://db:27017/parzen PARZEN_BROKER_URL=redis://q:6379/0 \\
    PARZEN_SECRET=... celery -A parzen.worker.app worker

``parzen worker --mongo ... --broker ...`` sets the same variables and starts the same app.
Optional: ``PARZEN_QUEUE``, ``PARZEN_CONCURRENCY``, ``PARZEN_VISIBILITY_TIMEOUT``,
``PARZEN_WORKER_NAME``, ``PARZEN_SECRET_FILE``.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from celery import signals

from parzen.exceptions import ConfigError, StoreUnavailable
from parzen.store.uri import redact
from parzen.worker.celery_app import DEFAULT_VISIBILITY_TIMEOUT_S, TASK_NAME, make_app
from parzen.worker.runtime import WorkerConfig, WorkerRuntime
from parzen.worker.wakeup import FinishedSignal

log = logging.getLogger("parzen.worker")


def _int_env(name: str, default: int | None) -> int | None:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} must be an integer") from None
    if value < 1:
        raise ConfigError(f"{name}={raw!r} must be >= 1")
    return value


# Read at import: a misconfigured worker fails at start with the fix, not at its first trial.
config = WorkerConfig.from_env()
app = make_app(
    config.broker_url, queue=config.queue,
    concurrency=_int_env("PARZEN_CONCURRENCY", None),
    visibility_timeout_s=_int_env("PARZEN_VISIBILITY_TIMEOUT", DEFAULT_VISIBILITY_TIMEOUT_S)
    or DEFAULT_VISIBILITY_TIMEOUT_S,
)

_shutdown = threading.Event()
_finished = FinishedSignal.from_url(config.broker_url)
_runtime_lock = threading.Lock()
_runtime: WorkerRuntime | None = None


def runtime() -> WorkerRuntime:
    """The process's runtime, connecting to MongoDB on first use.

    Raises:
        StoreUnavailable: MongoDB cannot be reached (the task retries with backoff).
    """
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            from parzen.store._mongo import MongoTrialStore

            store = MongoTrialStore.from_url(config.mongo_url)
            _runtime = WorkerRuntime(store, config.secret, config.name, _shutdown)
        return _runtime


def _republish(exp_key: str, tid: int) -> None:
    try:
        app.send_task(TASK_NAME, args=[exp_key, tid], queue=config.queue)
    except Exception as exc:  # kombu/redis errors: the broker is down or flapping
        # The trial is NEW in the store; the coordinator republishes it after its
        # dispatch_timeout, so a failed republish only delays it.
        log.warning("could not republish trial %s of %r to %s: %s", tid, exp_key,
                    redact(config.broker_url), exc)


@app.task(name=TASK_NAME, bind=True, acks_late=True, ignore_result=True, max_retries=None)
def evaluate_trial(self: Any, exp_key: str, tid: int) -> None:
    """Evaluate one trial. Safe to deliver twice: the store's claim decides who runs it."""
    try:
        outcome = runtime().evaluate_trial(exp_key, int(tid), republish=_republish)
    except StoreUnavailable as exc:
        delay = min(60, 2 ** min(self.request.retries, 6))
        log.warning("trial %s of %r: %s; retrying in %ds", tid, exp_key, exc, delay)
        raise self.retry(countdown=delay, exc=exc) from exc
    if outcome.status in ("done", "error") and _finished is not None:
        _finished.push(exp_key, int(tid))  # wakes the coordinator now (wakeup.py)


@signals.worker_ready.connect
def _ready(**_: Any) -> None:
    # MongoDB first: "ready" followed by an error buries the error among Celery's own lines.
    try:
        runtime()
    except StoreUnavailable as exc:
        log.error("parzen worker NOT ready, it cannot evaluate trials: %s. It keeps listening "
                  "on queue %s (broker %s) and retries MongoDB when trials arrive", exc,
                  config.queue, redact(config.broker_url))
        return
    log.info("parzen worker ready: mongo=%s broker=%s queue=%s", redact(config.mongo_url),
             redact(config.broker_url), config.queue)


@signals.worker_shutting_down.connect
def _shutting_down(**_: Any) -> None:
    # Running trials are released to NEW (not failed) and their messages republished, so
    # the rest of the cluster picks them up without waiting out the lease.
    _shutdown.set()


@signals.worker_shutdown.connect
def _closed(**_: Any) -> None:
    if _runtime is not None:
        _runtime.close()
