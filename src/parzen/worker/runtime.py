"""What a worker process does for one trial delivery, without Celery.

A worker process holds one store connection, one sandbox (objective child process) per
concurrent slot, and a cache of verified objectives per experiment. ``evaluate_trial`` is the
whole task: load the experiment, claim, evaluate in the sandbox while heartbeating, finish.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from parzen.exceptions import (
    ConfigError,
    ObjectiveUnloadable,
    PayloadSignatureError,
    StoreError,
    StoreUnavailable,
    TrialNotFound,
)
from parzen.execution import payload
from parzen.execution.messages import ObjectiveRef
from parzen.execution.run import Outcome, OutcomeStatus, run_trial
from parzen.execution.sandbox import AbortCheck, Sandbox
from parzen.pruners import Pruner, pruner_from_dict
from parzen.settings import TrialSettings
from parzen.store import Experiment, ObjectiveKind, TrialStore
from parzen.store.uri import check_broker_url, parse_mongo_url
from parzen.trial import Owner
from parzen.worker.refusals import Refusals, objective_id
from parzen.worker.siblings import SiblingWatch

log = logging.getLogger("parzen.worker")


@dataclass(frozen=True)
class WorkerConfig:
    """A worker's settings, read from the environment by ``from_env``.

    Attributes:
        mongo_url: ``PARZEN_MONGO_URL``.
        broker_url: ``PARZEN_BROKER_URL``.
        secret: the signing key (``PARZEN_SECRET`` or ``PARZEN_SECRET_FILE``).
        queue: ``PARZEN_QUEUE`` (default ``parzen``).
        name: ``PARZEN_WORKER_NAME`` (default ``<host>-<pid>``).
    """

    mongo_url: str
    broker_url: str
    secret: bytes
    queue: str = "parzen"
    name: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WorkerConfig:
        e = os.environ if env is None else env
        missing = [k for k in ("PARZEN_MONGO_URL", "PARZEN_BROKER_URL") if not e.get(k)]
        if missing:
            raise ConfigError(
                f"the worker needs {' and '.join(missing)}: set them in the environment or "
                "pass --mongo and --broker to `parzen worker`"
            )
        # celery -A parzen.worker.app reads the URLs here, not through `parzen worker`'s
        # option checks: refuse a malformed one with the same redacted message.
        parse_mongo_url(e["PARZEN_MONGO_URL"])
        check_broker_url(e["PARZEN_BROKER_URL"], "$PARZEN_BROKER_URL")
        key = payload.load_secret(environ=e)
        assert key is not None
        return cls(mongo_url=e["PARZEN_MONGO_URL"], broker_url=e["PARZEN_BROKER_URL"],
                   secret=key, queue=e.get("PARZEN_QUEUE", "parzen") or "parzen",
                   name=e.get("PARZEN_WORKER_NAME", ""))


def _skew(theirs: Any) -> str:
    """Version differences between the coordinator that pickled the objective and us."""
    if not isinstance(theirs, Mapping):
        return ""
    mine = payload.stamp()
    diffs = [f"{k} {theirs.get(k)} on the coordinator vs {mine[k]} here" for k in sorted(mine)
             if theirs.get(k) != mine[k]]
    return (". Version skew: " + "; ".join(diffs)) if diffs else ""


def _pruner(exp: Experiment) -> Pruner | None:
    """The experiment's pruner, rebuilt from its settings; None (trials run to their end)
    when this worker cannot rebuild it, with the reason logged."""
    try:
        return pruner_from_dict(exp.settings.get("pruner"))  # type: ignore[arg-type]
    except (ConfigError, TypeError) as exc:
        log.error("experiment %r: cannot use its pruner (%s); running its trials without "
                  "pruning", exp.exp_key, exc)
        return None


class _Objective:
    """A verified objective, ready to send to a sandbox."""

    def __init__(self, ref: ObjectiveRef, settings: TrialSettings) -> None:
        self.ref = ref
        self.settings = settings


def worker_name(name: str = "") -> str:
    """The worker's name in trial owners and in its Celery node name: ``name`` (``--name``,
    ``PARZEN_WORKER_NAME``), else ``<host>-<pid>``."""
    return name or f"{socket.gethostname()}-{os.getpid()}"


class WorkerRuntime:
    """Per-process state shared by the worker's concurrent slots.

    Args:
        store: the trial store.
        secret: the signing key shared with the coordinator.
        name: this worker's name in trial owners.
        shutdown: set when the worker is asked to stop; running trials are released.
    """

    def __init__(self, store: TrialStore, secret: bytes, name: str = "",
                 shutdown: threading.Event | None = None) -> None:
        self.store = store
        self._secret = secret
        self.host = socket.gethostname()
        self.name = worker_name(name)
        self.shutdown = shutdown or threading.Event()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._objectives: dict[tuple[str, str], _Objective] = {}
        self._sandboxes: list[Sandbox] = []
        self._slots = 0
        self._refusals = Refusals(store, self.name, self.host, os.getpid(), self.shutdown)
        self.siblings = SiblingWatch(store, self.name)

    def _slot(self) -> int:
        """This thread's slot number (1, 2, ...), fixed for the thread's life: a trial's
        ``owner.slot``, rather than the executor's thread names."""
        slot: int | None = getattr(self._local, "slot", None)
        if slot is None:
            with self._lock:
                self._slots += 1
                slot = self._slots
            self._local.slot = slot
        return slot

    def _sandbox(self) -> Sandbox:
        sb: Sandbox | None = getattr(self._local, "sandbox", None)
        if sb is None:
            sb = Sandbox()
            self._local.sandbox = sb
            with self._lock:
                self._sandboxes.append(sb)
        return sb

    def close(self) -> None:
        """Stop every sandbox child."""
        with self._lock:
            boxes, self._sandboxes = self._sandboxes, []
        for sb in boxes:
            sb.close()

    def _objective(self, exp: Experiment) -> _Objective:
        """The experiment's objective, verified; cached by its payload hash.

        Raises:
            PayloadSignatureError: the payload was not signed with our key.
            ObjectiveUnloadable: the experiment has no objective this worker can use, or its
                code was pickled by value on another Python minor version.
        """
        obj = exp.objective
        if obj is None:
            raise ObjectiveUnloadable(
                f"experiment {exp.exp_key!r} has no objective; was it created by a parzen "
                "coordinator?")
        fingerprint = objective_id(exp)
        key = (exp.exp_key, fingerprint)
        with self._lock:
            cached = self._objectives.get(key)
        if cached is not None:
            return cached
        settings = TrialSettings.from_dict(exp.settings)
        if obj.kind is ObjectiveKind.PICKLE:
            data = obj.inline
            if data is None:
                if obj.payload_id is None:
                    raise ObjectiveUnloadable(
                        f"experiment {exp.exp_key!r} names no objective payload")
                data = self.store.get_payload(obj.payload_id)
            # Both raise before anything is unpickled.
            header, body = payload.verify(bytes(data), self._secret)
            payload.refuse_python_skew(header, "objective")
            ref = ObjectiveRef(key=fingerprint, pickle=body)
        else:  # ObjectiveKind.IMPORT
            if obj.space_inline is None or obj.path is None:
                raise ObjectiveUnloadable(f"experiment {exp.exp_key!r} has no space payload")
            header, space_body = payload.verify(obj.space_inline, self._secret)
            payload.refuse_python_skew(header, "space")
            ref = ObjectiveRef(key=fingerprint, import_path=obj.path, space_pickle=space_body)
        loaded = _Objective(ref, settings)
        with self._lock:
            self._objectives[key] = loaded
        self._refusals.loaded(exp)
        return loaded

    def evaluate_trial(self, exp_key: str, tid: int,
                       republish: Callable[[str, int], None] | None = None) -> Outcome:
        """Run one delivery of trial ``tid``. Safe to call twice: the claim decides."""
        exp = self.store.get_experiment(exp_key)
        if exp is None:
            log.warning("trial %s: experiment %r does not exist (deleted?); dropping the "
                        "message", tid, exp_key)
            return Outcome(OutcomeStatus.NOT_CLAIMED)
        if self._refusals.refuses(exp):
            # This worker cannot load the objective: the trial is for the other workers.
            self._refusals.pass_on(exp, tid, republish)
            return Outcome(OutcomeStatus.NOT_CLAIMED)
        settings = TrialSettings.from_dict(exp.settings)
        self.siblings.watch(exp_key, settings.max_attempts)
        pruner = _pruner(exp)
        sandbox = self._sandbox()
        owner = Owner.here(self.name, slot=self._slot())

        def evaluate(params: Mapping[str, Any], tid: int,
                     abort: AbortCheck) -> dict[str, Any]:
            try:
                objective = self._objective(exp)
            except PayloadSignatureError as exc:
                # This worker's key (or the payload) is wrong, not the trial: an ERROR would
                # burn a trial per delivery, and a misconfigured worker fails them fastest.
                # Released uncounted; this worker then refuses the experiment (below).
                raise ObjectiveUnloadable(f"PayloadSignatureError: {exc}") from exc
            except StoreError as exc:
                if isinstance(exc, StoreUnavailable):
                    raise
                # A missing or unreadable GridFS payload is this experiment's problem, not the
                # trial's: release it uncounted and let the coordinator fail fast with why.
                raise ObjectiveUnloadable(f"cannot read the objective payload: {exc}") from exc
            try:
                return sandbox.evaluate(objective.ref, params, tid,
                                        timeout_s=settings.trial_timeout_s, abort=abort)
            except ObjectiveUnloadable as exc:
                versions = exp.objective.versions if exp.objective is not None else None
                raise ObjectiveUnloadable(f"{exc}{_skew(versions)}") from exc

        try:
            outcome = run_trial(self.store, exp_key, tid, owner, evaluate,
                                lease_s=settings.lease_s, heartbeat_s=settings.heartbeat_s,
                                max_attempts=settings.max_attempts, shutdown=self.shutdown,
                                pruner=pruner)
        except TrialNotFound:
            # A replayed or stale message whose trial was deleted (or never existed): like
            # the missing experiment above, drop it instead of failing the task noisily.
            log.warning("trial %s of %r does not exist (deleted by hand, or withdrawn by a "
                        "coordinator that had lost the driver lease); dropping the message",
                        tid, exp_key)
            return Outcome(OutcomeStatus.NOT_CLAIMED)
        if outcome.status is OutcomeStatus.CRASHED and republish is not None:
            republish(exp_key, tid)  # back to NEW with an attempt counted: run it again now
        if outcome.status is OutcomeStatus.RELEASED and republish is not None:
            republish(exp_key, tid)  # shutdown: let another worker take it at once
        if outcome.status is OutcomeStatus.UNLOADABLE:
            # Released uncounted: this worker stops taking the experiment's trials, records
            # that it cannot load it, and gives this one to the other workers.
            self._refusals.refuse(exp, outcome.exception)
            self._refusals.pass_on(exp, tid, republish)
        return outcome
