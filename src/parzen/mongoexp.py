"""``MongoTrials``: trials stored in MongoDB and evaluated by Celery workers over Redis.

hyperopt keeps its MongoTrials in ``hyperopt.mongoexp``; so does parzen. This module is the
read side and the settings: the coordinator (the user's fmin) writes NEW trials, publishes
``evaluate_trial(exp_key, tid)`` messages, and reads back only the trials it has in flight,
through ``parzen.runners.celery``, which also reaps expired leases, republishes NEW trials
whose message may have been lost, and renews the driver lease that keeps a second
coordinator off the same experiment.
"""

from __future__ import annotations

import os
import weakref
from typing import Any

from parzen import validation
from parzen.backends import CeleryBackend
from parzen.exceptions import ConfigError
from parzen.settings import DEFAULT_MAX_PAYLOAD_BYTES, TrialSettings
from parzen.store import MongoTrialStore, TrialStore
from parzen.store.uri import check_broker_url, redact
from parzen.trials import Trials

BROKER_SCHEMES = ("redis://", "rediss://", "amqp://", "amqps://")


class MongoTrials(Trials):
    """Trials in MongoDB, evaluated by ``parzen worker`` processes on any number of machines.

    Args:
        url: ``mongodb://``/``mongodb+srv://`` URI (TLS, authSource, replicaSet pass through)
            or hyperopt's ``mongo://host:port/db/jobs``.
        exp_key: the experiment's name; rerunning with the same name resumes it.
        broker: the Celery broker, e.g. ``redis://host:6379/0`` (default
            ``$PARZEN_BROKER_URL``).
        parallelism: how many trials are queued or running at once.
        secret: the signing key shared with the workers (default ``$PARZEN_SECRET`` or the
            file named by ``$PARZEN_SECRET_FILE``).
        objective: ``"package.module:function"`` to have workers import the objective
            instead of unpickling it; the function given to fmin must be the same one.
        lease: seconds without a heartbeat after which a trial's worker is presumed dead.
        heartbeat: seconds between a worker's heartbeats (at most ``lease / 3``).
        trial_timeout: hard time limit of one evaluation, in seconds.
        max_attempts: attempts per trial before a crashing trial fails for good.
        dispatch_timeout: republish a NEW trial's message after this many seconds.
        poll_interval: seconds between the coordinator's refreshes while no trial
            finishes; with a Redis broker, a worker finishing a trial wakes it at once
            (``parzen.worker.wakeup``; Redis's timer can add up to 0.1 s to a wait without one).
        allow_space_change: resume even if the space or objective changed.
        queue: the Celery queue to publish to (default ``$PARZEN_QUEUE``, else ``parzen``).
        max_payload_bytes: refuse objectives that pickle to more than this.
        store: an existing store (tests); ``url`` is then only used in messages.
    """

    asynchronous = True

    def __init__(self, url: str, exp_key: str | None = None, *, broker: str | None = None,
                 parallelism: int = 8, secret: str | bytes | None = None,
                 objective: str | None = None, lease: float = 60.0, heartbeat: float = 10.0,
                 trial_timeout: float | None = None, max_attempts: int = 3,
                 dispatch_timeout: float = 60.0, poll_interval: float = 0.1,
                 allow_space_change: bool = False, queue: str | None = None,
                 max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
                 store: TrialStore | None = None, connect_timeout: float = 5.0) -> None:
        self.parallelism = validation.integer("parallelism", parallelism, 1)
        self.trial_settings = TrialSettings(lease, heartbeat, trial_timeout, max_attempts)
        self.dispatch_timeout = validation.seconds(
            "dispatch_timeout", dispatch_timeout, allow_none=True) or 60.0
        self.poll_interval = validation.seconds(
            "poll_interval", poll_interval, allow_none=True) or 0.1
        self.max_payload_bytes = validation.integer("max_payload_bytes", max_payload_bytes, 1)
        self.broker = broker or os.environ.get("PARZEN_BROKER_URL") or None
        if self.broker is not None and (not isinstance(self.broker, str) or not
                                        self.broker.startswith(BROKER_SCHEMES)):
            raise ConfigError(
                f"broker {redact(str(self.broker))!r} is not a redis:// (or rediss://, "
                "amqp://) URL; pass e.g. broker='redis://host:6379/0'"
            )
        if self.broker is not None:
            check_broker_url(self.broker, "broker")  # an unencoded password, a bad port
        self.secret = secret
        self.objective = objective
        self.allow_space_change = bool(allow_space_change)
        self.queue = queue or os.environ.get("PARZEN_QUEUE") or "parzen"
        self.url = url
        owned = store is None
        if store is None:
            store = MongoTrialStore.from_url(url, connect_timeout_s=connect_timeout)
        super().__init__(exp_key=exp_key, store=store)
        # Close the client we opened when this object goes away, even without close().
        self._finalizer = weakref.finalize(self, store.close) if owned else None

    def close(self) -> None:
        """Close the MongoDB connection this object opened (it cannot be used afterwards)."""
        if self._finalizer is not None:
            self._finalizer()

    def __enter__(self) -> MongoTrials:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError("MongoTrials lives in MongoDB and cannot be pickled; reconnect with "
                        "MongoTrials(url, exp_key) instead of using trials_save_file")

    def backend(self) -> CeleryBackend:
        """Celery workers over this store, with this object's settings."""
        return CeleryBackend(
            url=self.url, broker=self.broker, queue=self.queue, parallelism=self.parallelism,
            secret=self.secret, objective=self.objective, trial_settings=self.trial_settings,
            dispatch_timeout=self.dispatch_timeout, poll_interval=self.poll_interval,
            allow_space_change=self.allow_space_change,
            max_payload_bytes=self.max_payload_bytes)
