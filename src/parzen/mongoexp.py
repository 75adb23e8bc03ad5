"""``MongoTrials``: trials stored in MongoDB and evaluated by Celery workers over Redis.

The coordinator (the user's fmin) writes NEW trials, publishes ``evaluate_trial(exp_key,
tid)`` messages, and reads back only the trials it has in flight. Each loop it also reaps
expired leases, republishes NEW trials whose message may have been lost, and renews its
driver lease, which keeps a second coordinator off the same experiment.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import socket
import time
import uuid
import weakref
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from parzen import validation
from parzen.domain import Domain
from parzen.exceptions import (
    ConfigError,
    ExperimentLocked,
    ObjectiveUnloadable,
    SpaceChanged,
    StoreUnavailable,
)
from parzen.execution import payload
from parzen.execution.run import UNLOADABLE
from parzen.processes import pid_alive
from parzen.settings import TrialSettings
from parzen.space import describe
from parzen.store import Experiment, TrialStore
from parzen.store.uri import redact
from parzen.trial import TrialState
from parzen.trials import Trials
from parzen.worker.wakeup import MIN_SHARE, FinishedSignal

log = logging.getLogger("parzen.mongoexp")

DRIVER_LEASE_S = 30.0
# A cluster with no worker on the queue is said to be so at once, then every ten minutes: a
# warning per republish (every dispatch timeout) would bury the rest of the log.
IDLE_REPEAT_S = 600.0
BROKER_SCHEMES = ("redis://", "rediss://", "amqp://", "amqps://")


def objective_fingerprint(fn: Any) -> str:
    """A hash of the objective's code, stable across runs of the same source."""
    code = getattr(fn, "__code__", None)
    if code is None and callable(fn):
        code = getattr(fn.__call__, "__code__", None)
    if code is None:
        return hashlib.sha256(repr(fn).encode()).hexdigest()[:16]
    h = hashlib.sha256()
    h.update(getattr(fn, "__qualname__", "").encode())
    h.update(code.co_code)
    h.update(repr(code.co_consts).encode())
    h.update(repr(code.co_names).encode())
    return h.hexdigest()[:16]


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
                 max_payload_bytes: int = payload.DEFAULT_MAX_BYTES,
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
        self.secret = secret
        self.objective = objective
        self.allow_space_change = bool(allow_space_change)
        self.queue = queue or os.environ.get("PARZEN_QUEUE") or "parzen"
        self.url = url
        owned = store is None
        if store is None:
            from parzen.store._mongo import MongoTrialStore

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

    def _make_runner(self, domain: Domain, *, catch_eval_exceptions: bool,
                     settings: Any) -> CeleryRunner:
        return CeleryRunner(self, domain, settings)


class CeleryRunner:
    """Publishes trials to Celery and keeps the experiment healthy while fmin runs.

    Construction only reads and checks (signing key, payload, broker, changed space or
    objective, a live driver); the first writes (the driver lease, the payload, the
    experiment document) wait for the loop's first ``maintain()``. A run refused for any
    reason before then, a bad ``points_to_evaluate`` included, leaves nothing behind.
    """

    # close() cancels the queue itself, before it gives up the driver lease.
    cancels_on_close = True

    def __init__(self, trials: MongoTrials, domain: Domain, run_settings: Any) -> None:
        if not trials.broker:
            raise ConfigError(
                "MongoTrials needs a broker to reach the workers: pass "
                "broker='redis://host:6379/0' or set PARZEN_BROKER_URL"
            )
        self._trials = trials
        self._store = trials.store
        self._exp_key = trials.exp_key
        self._settings = trials.trial_settings
        key = payload.load_secret(trials.secret)
        assert key is not None
        self._gridfs_data: bytes | None = None
        self._domain = domain
        self._run_settings = run_settings
        self._objective = self._build_objective(domain, key)
        self._holder: dict[str, Any] = {"holder": uuid.uuid4().hex, "host": socket.gethostname(),
                        "pid": os.getpid(),
                        "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        old = self._store.get_experiment(self._exp_key)
        self._check_changes(old, domain.space.fingerprint())
        self._check_driver(old)
        if old is not None:
            n = self._store.count_by_state(self._exp_key)
            log.info("resuming experiment %r: %d done, %d failed, %d cancelled, %d queued or "
                     "running; the next trial is %d", self._exp_key, n[TrialState.DONE],
                     n[TrialState.ERROR], n[TrialState.CANCEL],
                     n[TrialState.NEW] + n[TrialState.RUNNING], old.next_tid)
        from parzen.worker.celery_app import TASK_NAME, make_app

        self._task = TASK_NAME
        self._app = make_app(trials.broker, queue=trials.queue)
        self._check_broker()
        self._finished = FinishedSignal.from_url(str(trials.broker))
        self._prepared = False
        self._dispatched: dict[int, float] = {}
        self._last_wake = time.monotonic()
        self._last_reap = 0.0
        self._last_renew = time.monotonic()
        self._republished = 0
        self._requeued = 0
        self._idle_warned = -1e18

    # ---- setup -------------------------------------------------------------------------

    def _build_objective(self, domain: Domain, key: bytes) -> dict[str, Any]:
        trials = self._trials
        if trials.objective is not None:
            fn = payload.import_objective(trials.objective)
            if fn is not domain.fn:
                raise ConfigError(
                    f"objective={trials.objective!r} imports {fn!r}, but fmin was given "
                    f"{domain.fn!r}; pass the imported function to fmin"
                )
            space = payload.build(domain.expr, key, max_bytes=trials.max_payload_bytes)
            return {"kind": "import", "path": trials.objective, "space_inline": space.data,
                    "sha256": space.sha256 + ":" + trials.objective,
                    "fingerprint": trials.objective}
        built = payload.build((domain.fn, domain.expr), key,
                              max_bytes=trials.max_payload_bytes)
        mb = built.size / 1e6
        where = "inline" if built.size <= payload.INLINE_MAX_BYTES else "GridFS"
        (log.warning if built.size > 1e6 else log.info)(
            "objective payload for %r: %.2f MB, stored %s%s", self._exp_key, mb, where,
            "; large payloads slow every worker's start, consider loading data inside the "
            "objective" if built.size > 1e6 else "")
        doc: dict[str, Any] = {"kind": "pickle", "sha256": built.sha256, "size": built.size,
                               "fingerprint": objective_fingerprint(domain.fn),
                               "versions": payload.stamp()}
        if where == "inline":
            doc["inline"] = built.data
        else:
            self._gridfs_data = built.data  # stored by _prepare_experiment
        return doc

    def _check_changes(self, old: Experiment | None, space_fp: str) -> None:
        """Refuse to resume an experiment whose trials came from another space or objective.

        Raises:
            SpaceChanged: see ``_refuse_changes``.
        """
        store, exp_key = self._store, self._exp_key
        if old is not None and old.space_fingerprint and not self._trials.allow_space_change:
            has_trials = sum(store.count_by_state(exp_key).values()) > 0
            if has_trials:
                _refuse_changes(exp_key, old, space_fp, self._domain, self._objective)

    def _prepare(self) -> None:
        """The run's first writes, once: see the class docstring."""
        if not self._prepared:
            self._prepare_experiment(self._domain, self._objective, self._run_settings)
            self._prepared = True
            self._last_renew = time.monotonic()

    def _prepare_experiment(self, domain: Domain, objective: dict[str, Any],
                            run_settings: Any) -> None:
        store, exp_key = self._store, self._exp_key
        space_fp = domain.space.fingerprint()
        old = store.get_experiment(exp_key)
        self._check_changes(old, space_fp)  # again: another run may have written meanwhile
        self._acquire_driver(old)
        try:
            self._write_experiment(domain, objective, run_settings, old, space_fp)
        except BaseException:
            # Don't keep others off an experiment this run never started.
            self._store.release_driver(exp_key, str(self._holder["holder"]))
            raise

    def _write_experiment(self, domain: Domain, objective: dict[str, Any], run_settings: Any,
                          old: Experiment | None, space_fp: str) -> None:
        store, exp_key = self._store, self._exp_key
        if self._gridfs_data is not None:
            objective["payload_id"] = store.put_payload(exp_key, self._gridfs_data)
            self._gridfs_data = None
        exp = Experiment(
            exp_key=exp_key, space_fingerprint=space_fp, space=describe(domain.expr),
            objective=objective, algo={},
            settings=self._settings.to_dict(),
            max_evals=run_settings.max_evals if run_settings.max_evals < 2**62 else None,
        )
        store.put_experiment(exp)
        old_id = old.objective.get("payload_id") if old is not None else None
        if old_id and old_id != objective.get("payload_id"):
            store.delete_payload(str(old_id))

    def _acquire_driver(self, old: Experiment | None) -> None:
        store, exp_key = self._store, self._exp_key
        if store.acquire_driver(exp_key, self._holder, DRIVER_LEASE_S):
            return
        exp = store.get_experiment(exp_key)
        cur = dict(exp.driver or {}) if exp is not None else {}
        if cur.get("host") == self._holder["host"] and isinstance(cur.get("pid"), int) \
                and not pid_alive(cur["pid"]):
            # The holder was a coordinator on this machine that died without releasing.
            log.warning("taking over %r from dead coordinator pid %s on this host", exp_key,
                        cur["pid"])
            store.release_driver(exp_key, str(cur.get("holder")))
            if store.acquire_driver(exp_key, self._holder, DRIVER_LEASE_S):
                return
        raise _locked(exp_key, cur)

    def _check_driver(self, old: Experiment | None) -> None:
        """Refuse early, without writing, when another live coordinator holds the lease (the
        acquisition in ``_prepare_experiment`` settles races)."""
        cur = dict(old.driver or {}) if old is not None else {}
        expires = cur.get("expires")
        if not cur or cur.get("holder") == self._holder["holder"] or expires is None \
                or expires <= self._store.now():
            return
        if cur.get("host") == self._holder["host"] and isinstance(cur.get("pid"), int) \
                and not pid_alive(cur["pid"]):
            return  # a dead coordinator on this host: taken over by _acquire_driver
        raise _locked(self._exp_key, cur)

    def _check_broker(self) -> None:
        try:
            with self._app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=2, interval_start=0.2, interval_step=0.5,
                                       timeout=5)
        except ImportError as exc:
            # Not the server: this machine lacks the transport's packages.
            fix = ("pip install 'celery[redis]' (a plain pip install parzen brings it)"
                   if str(self._trials.broker).startswith("redis") else
                   f"pip install the module {getattr(exc, 'name', None) or 'named above'}")
            raise ConfigError(
                f"cannot load the broker transport for {redact(str(self._trials.broker))}: "
                f"{type(exc).__name__}: {exc}. Install it: {fix}"
            ) from None
        except Exception as exc:  # kombu raises transport-specific errors
            raise ConfigError(
                f"cannot reach the broker at {redact(str(self._trials.broker))}: "
                f"{type(exc).__name__}: {exc}. Is Redis running and the URL right?"
            ) from None

    # ---- the Runner protocol -----------------------------------------------------------

    def dispatch(self, tids: Sequence[int]) -> None:
        self._prepare()
        now = time.monotonic()
        for tid in tids:
            self._publish(tid)
            self._dispatched[tid] = now

    def _publish(self, tid: int) -> None:
        try:
            self._app.send_task(self._task, args=[self._exp_key, tid],
                                queue=self._trials.queue)
        except Exception as exc:  # kombu/redis errors; the trial is republished later
            log.warning("could not publish trial %s to %s: %s; it will be republished",
                        tid, redact(str(self._trials.broker)), exc)

    def wait(self, timeout_s: float) -> None:
        # What is left of the poll interval since the last wake-up, so the loop's own work
        # does not stretch the period between refreshes; a worker finishing a trial ends it
        # early (wakeup.py), but not before MIN_SHARE of it.
        poll = self._trials.poll_interval
        now = time.monotonic()
        left = self._last_wake + poll - now
        if self._finished is None or not self._finished.wait(self._exp_key, left):
            time.sleep(max(0.0, self._last_wake + poll - time.monotonic()))
        else:
            time.sleep(max(0.0, self._last_wake + MIN_SHARE * poll - time.monotonic()))
        self._last_wake = time.monotonic()

    def maintain(self) -> None:
        self._prepare()
        now = time.monotonic()
        try:
            if now - self._last_renew > DRIVER_LEASE_S / 3:
                if not self._store.acquire_driver(self._exp_key, self._holder,
                                                  DRIVER_LEASE_S):
                    raise ExperimentLocked(
                        f"lost the driver lease on {self._exp_key!r} to another coordinator "
                        "(this one stalled for longer than the lease); stopping"
                    )
                self._last_renew = now
            if now - self._last_reap > min(1.0, self._settings.heartbeat_s):
                self._last_reap = now
                for t in self._store.requeue_expired(self._exp_key,
                                                     self._settings.max_attempts):
                    if t.state is TrialState.NEW:
                        self._requeued += 1
                        last = t.history[-1].owner if t.history else None
                        log.warning("trial %s of %r: lease expired (worker %s died or "
                                    "stalled), requeued for attempt %d", t.tid, self._exp_key,
                                    last or "?", t.attempts + 1)
                        self._publish(t.tid)
                        self._dispatched[t.tid] = now
        except StoreUnavailable as exc:
            log.warning("%s; retrying", exc)
            return
        waited = running = 0
        for tid in self._trials.in_flight:
            t = self._trials.known(tid)
            running += t.state is TrialState.RUNNING
            if t.state is TrialState.NEW and t.history \
                    and t.history[-1].outcome.startswith(UNLOADABLE):
                raise ObjectiveUnloadable(
                    f"trial {tid} of {self._exp_key!r}: worker {t.history[-1].owner} reported "
                    f"{t.history[-1].outcome}"
                )
            if t.state is TrialState.NEW and \
                    now - self._dispatched.get(tid, -1e18) > self._trials.dispatch_timeout:
                # Only a trial this coordinator published has waited: a resumed run
                # republishes what it inherited at once.
                waited += tid in self._dispatched
                self._republished += 1
                self._publish(tid)
                self._dispatched[tid] = now
        if waited and not running:
            self._warn_idle(waited, now)

    def _warn_idle(self, waited: int, now: float) -> None:
        """Say so when trials wait a whole dispatch timeout and none is running: no worker
        listens on the queue, or every one is down. Once, then every IDLE_REPEAT_S."""
        if now - self._idle_warned < IDLE_REPEAT_S:
            return
        self._idle_warned = now
        trials = self._trials
        log.warning(
            "%d trials of %r waited %g s on queue %r and no worker is running any of them: no "
            "worker listens on that queue, or all are busy with other experiments. To add "
            "one: parzen worker --mongo %s --broker %s --queue %s (passwords shown as ***). "
            "The messages are republished every %g s", waited, self._exp_key,
            trials.dispatch_timeout, trials.queue, redact(str(trials.url)),
            redact(str(trials.broker)), trials.queue, trials.dispatch_timeout)

    def close(self, cancelled: bool) -> None:
        from parzen.coordinator import CLOSE_PATIENCE_S, patiently

        if not self._prepared:
            return  # nothing was written, and the driver lease was never taken
        try:
            # While we still hold the driver lease: cancelled after releasing it, the queue
            # could already belong to a coordinator that took over.
            states = (TrialState.NEW, TrialState.RUNNING) if cancelled else (TrialState.NEW,)
            n = patiently(functools.partial(self._store.cancel, self._exp_key, states),
                          "cancelling queued trials", CLOSE_PATIENCE_S)
            if n:
                log.info("cancelled %d queued or running trials of %r", n, self._exp_key)
        finally:
            patiently(functools.partial(self._store.release_driver, self._exp_key,
                                        str(self._holder["holder"])),
                      "releasing the driver lease", CLOSE_PATIENCE_S)
            log.info("coordinator for %r: %d trials requeued after lease expiry, %d messages "
                     "republished", self._exp_key, self._requeued, self._republished)


def _locked(exp_key: str, cur: dict[str, Any]) -> ExperimentLocked:
    return ExperimentLocked(
        f"experiment {exp_key!r} is being driven by another coordinator: pid "
        f"{cur.get('pid')} on host {cur.get('host')!r} (started {cur.get('started')}, "
        f"lease until {cur.get('expires')}). Stop it first, or wait for its lease to "
        f"expire ({DRIVER_LEASE_S:g} s after it stops renewing)"
    )


def _refuse_changes(exp_key: str, old: Experiment, space_fp: str, domain: Domain,
                    objective: dict[str, Any]) -> None:
    problems = []
    if old.space_fingerprint != space_fp:
        old_labels = _labels(old.space)
        new_labels = set(domain.space.labels)
        diff = []
        if old_labels - new_labels:
            diff.append(f"removed {sorted(old_labels - new_labels)}")
        if new_labels - old_labels:
            diff.append(f"added {sorted(new_labels - old_labels)}")
        if not diff:
            diff.append("same labels, different distributions or options")
        problems.append(f"space fingerprint {old.space_fingerprint} -> {space_fp} "
                        f"({'; '.join(diff)})")
    old_obj = old.objective.get("fingerprint")
    if old_obj and old_obj != objective.get("fingerprint"):
        problems.append(f"objective fingerprint {old_obj} -> {objective.get('fingerprint')}")
    if problems:
        raise SpaceChanged(
            f"experiment {exp_key!r} already has trials from a different setup: "
            + "; ".join(problems)
            + ". Use a new exp_key, or pass MongoTrials(..., allow_space_change=True) to "
            "resume anyway"
        )


def _labels(desc: Any) -> set[str]:
    out: set[str] = set()

    def walk(d: Any) -> None:
        if isinstance(d, dict):
            if "label" in d and "kind" in d:
                out.add(str(d["label"]))
            for v in d.values():
                walk(v)
        elif isinstance(d, list):
            for v in d:
                walk(v)

    walk(desc)
    return out
