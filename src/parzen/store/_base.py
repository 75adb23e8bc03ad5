"""The trial store contract: one interface, with memory and MongoDB implementations.

The store is the single source of truth shared by the coordinator and every worker. All
coordination (who runs a trial, whether a result counts) is decided by atomic store operations,
never by the message broker, so a message delivered twice, or a worker that dies, can never
produce a second result.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from parzen import processes
from parzen.exceptions import ExperimentLocked, UnreadableDocument
from parzen.settings import TrialSettings
from parzen.trial import (
    Attempt,
    ErrorInfo,
    ErrorOrigin,
    Intermediate,
    Owner,
    Trial,
    TrialState,
)

# The lease of an experiment that records none (see ``lease_seconds``).
DEFAULT_LEASE_S = TrialSettings().lease_s


@dataclass(frozen=True)
class DriverLease:
    """The coordinator that drives an experiment: only it inserts and publishes trials.

    Attributes:
        holder: a random id, unique to one fmin call.
        host: the coordinator's host name.
        pid: the coordinator's process id.
        started: when that fmin call started (ISO 8601, the coordinator's clock).
        expires: when the lease runs out unless renewed (the store's clock); set by the store.
        pid_ns: the coordinator's pid namespace (``processes.pid_namespace``); "" unknown.
        pid_start: its process's start time (``processes.start_ticks``); 0 unknown.
    """

    holder: str
    host: str
    pid: int
    started: str
    expires: datetime | None = None
    pid_ns: str = ""
    pid_start: int = 0

    def dead_here(self) -> bool:
        """True when the holder's process has certainly ended, as seen from here: it ran in
        this pid namespace and its pid is gone (or names a process started since). Then
        nobody renews the lease, and waiting for it to run out would only delay a resume.
        Elsewhere, and for a lease written without a namespace, only the lease running out
        tells: a host name cannot, since containers on one host may share it, each with
        pids of its own, and a coordinator there would look dead to every other."""
        return processes.gone(self.pid_ns, self.pid, self.pid_start)


class ObjectiveKind(enum.Enum):
    """How workers obtain the objective."""

    PICKLE = "pickle"  # a signed cloudpickle payload, inline or in GridFS
    IMPORT = "import"  # an import path; only the space travels pickled (and signed)


@dataclass(frozen=True)
class ObjectiveSpec:
    """What the experiment document says about the objective.

    Attributes:
        kind: see ``ObjectiveKind``.
        sha256: identifies the payload (a worker caches the loaded objective under it).
        fingerprint: a hash of the objective's code (or its import path), to refuse a resume
            with another objective.
        inline: the signed payload, when small enough to sit in the document.
        payload_id: the GridFS id of a larger signed payload.
        size: the payload's size in bytes.
        versions: Python, cloudpickle and parzen versions the payload was built with.
        path: ``"package.module:function"`` for ``IMPORT``.
        space_inline: the signed, pickled space for ``IMPORT``.
    """

    kind: ObjectiveKind
    sha256: str
    fingerprint: str
    inline: bytes | None = None
    payload_id: str | None = None
    size: int | None = None
    versions: Mapping[str, str] = field(default_factory=dict)
    path: str | None = None
    space_inline: bytes | None = None


# How many refusals an experiment document keeps (the latest): enough to name every worker
# of a large cluster, bounded so a flapping fleet cannot grow the document.
MAX_REFUSALS = 200


@dataclass(frozen=True)
class Refusal:
    """A worker's record that it cannot load an experiment's objective (``record_refusal``).

    Attributes:
        worker: the worker's name (``PARZEN_WORKER_NAME``, by default ``<host>-<pid>``).
        host: its host name.
        pid: its process id.
        objective: the ``sha256`` of the objective it cannot load: a refusal holds for that
            payload only, and says nothing of a payload signed later (another key, another
            objective).
        reason: why, as the worker logged it: the error's type and message (never a key).
        at: when it was recorded (the store's clock); set by the store.
    """

    worker: str
    host: str
    pid: int
    objective: str
    reason: str
    at: datetime | None = None


@dataclass(frozen=True)
class StopRequest:
    """A request that the coordinator of one run end it, as Ctrl-C would (``parzen stop``).

    Attributes:
        holder: the driver lease holder it is addressed to, that is one fmin call: another
            run of the experiment, with another holder, ignores it, so a request never
            outlives the run it was meant for.
        by: who asked, e.g. ``"alice@laptop (pid 4242)"``.
        at: when (the store's clock); set by the store.
    """

    holder: str
    by: str
    at: datetime | None = None


@dataclass(frozen=True)
class Experiment:
    """What a store keeps about one experiment (one ``exp_key``).

    Attributes:
        exp_key: the experiment's name.
        space_fingerprint: hash of the space's structure; a resume with another space is refused.
        space: JSON description of the space (``parzen.space.describe``).
        objective: how workers load the objective (None before a coordinator wrote it).
        algo: the algorithm's name and settings.
        settings: run settings the workers need (lease, heartbeat, trial timeout, max_attempts).
        driver: the coordinator holding the driver lease, or None.
        next_tid: the next tid the counter will hand out.
        refusals: the workers that cannot load the objective, one record each, oldest first
            (``record_refusal``).
        stop_request: a request that the run of the driver lease holder it names end
            (``request_stop``), or None.
    """

    exp_key: str
    space_fingerprint: str = ""
    space: Mapping[str, object] = field(default_factory=dict)
    objective: ObjectiveSpec | None = None
    algo: Mapping[str, object] = field(default_factory=dict)
    settings: Mapping[str, object] = field(default_factory=dict)
    driver: DriverLease | None = None
    next_tid: int = 0
    created: datetime | None = None
    max_evals: int | None = None
    refusals: tuple[Refusal, ...] = ()
    stop_request: StopRequest | None = None


# The history outcome of an attempt whose worker's process was seen to have ended, and the
# error of a trial whose workers ended that way on every attempt (``worker_died``).
WORKER_DIED = "worker died"
WORKER_DIED_ERROR = "WorkerDied"


def worker_died(t: Trial, now: datetime, max_attempts: int) -> Trial:
    """``t``, whose worker's process has ended (``Owner.known_dead``), back to NEW with the
    attempt counted, or ERROR once ``max_attempts`` are used: what an expired lease does
    (``given_up``), without waiting for it. The worker, not the objective (which runs in a
    process of its own), failed: ``ErrorOrigin.SYSTEM``."""
    new = back_to_new(t, now, WORKER_DIED, True)
    if t.attempts < max_attempts:
        return new
    return dataclasses.replace(
        new, state=TrialState.ERROR, end_time=now, result={"status": "fail"},
        error=ErrorInfo(WORKER_DIED_ERROR, f"the worker running it died on attempt "
                        f"{t.attempts} of {max_attempts} ({t.owner}: its process ended); "
                        "giving up", origin=ErrorOrigin.SYSTEM))


def inserted_state(trial: Trial) -> TrialState:
    """The state ``insert_new`` stores: finished trials keep theirs, everything else is NEW
    (a RUNNING trial from elsewhere has no live worker here)."""
    return trial.state if trial.state.is_finished() else TrialState.NEW


def lease_ended(t: Trial, now: datetime, lease_s: float) -> bool:
    """Whether the attempt running ``t`` is presumed dead: the one rule of the reaper
    (``requeue_expired``), ``parzen status``, ``requeue --expired`` and ``cancel``.

    A RUNNING trial's lease is normally its ``lease_expires``. One without a lease date (the
    field removed by hand, or a document written by hyperopt, which has none) is judged by
    its last sign of life: its last heartbeat, else its book time, plus ``lease_s``; with
    neither, nothing will ever renew it, so it is expired. Other states have no lease.
    """
    if t.state is not TrialState.RUNNING:
        return False
    if t.lease_expires is not None:
        return t.lease_expires <= now
    alive = t.heartbeat_time or t.book_time
    return alive is None or alive + timedelta(seconds=lease_s) <= now


def lease_seconds(experiment: Experiment | None) -> float:
    """The trial lease of ``experiment``'s run (its ``settings.lease_s``), or the default
    lease when the experiment records none (created outside fmin) or an unusable one."""
    value = (experiment.settings if experiment is not None else {}).get("lease_s")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    return DEFAULT_LEASE_S


def back_to_new(t: Trial, now: datetime, outcome: str, count_attempt: bool) -> Trial:
    """``t`` returned to NEW, its ending attempt appended to its history as ``outcome``.

    The attempt stays counted towards ``max_attempts`` only if ``count_attempt`` (a lease that
    expired, a crash); a release on the worker's own initiative gives it back.
    """
    attempt = Attempt(attempt=t.attempts, owner=t.owner, book_time=t.book_time, end_time=now,
                      outcome=outcome)
    return dataclasses.replace(
        t, state=TrialState.NEW, owner=None, claim_token=None, lease_expires=None,
        book_time=None, heartbeat_time=None, end_time=None, result={"status": "new"},
        attempts=t.attempts if count_attempt else max(0, t.attempts - 1),
        history=(*t.history, attempt),
    )


LEASE_EXPIRED = "LeaseExpired"  # ErrorInfo.type of a trial whose lease expired every time


def given_up(t: Trial, now: datetime, max_attempts: int) -> Trial:
    """``t``, whose lease expired on its last allowed attempt, as an ERROR trial. The system
    failed (its workers died or stalled), not the objective: ``ErrorOrigin.SYSTEM``."""
    return dataclasses.replace(
        back_to_new(t, now, "lease expired", True), state=TrialState.ERROR, end_time=now,
        result={"status": "fail"},
        error=ErrorInfo(LEASE_EXPIRED, f"lease expired on attempt {t.attempts} of "
                        f"{max_attempts}; the worker died or stalled each time, giving up",
                        origin=ErrorOrigin.SYSTEM))


def lost_driver_lease(exp_key: str, now: DriverLease | None,
                      tids: Iterable[int]) -> ExperimentLocked:
    """The refusal of an insert fenced by ``TrialStore.fence_inserts`` whose holder no
    longer drives ``exp_key`` (``now`` does, or nobody)."""
    who = (f"pid {now.pid} on host {now.host!r} drives it now" if now is not None
           else "nobody drives it now")
    return ExperimentLocked(
        f"lost the driver lease on {exp_key!r} to another coordinator ({who}; this one "
        f"stalled for longer than the lease): trials {sorted(tids)} were not inserted, so "
        "the new driver alone decides how many trials the experiment runs; stopping"
    )


class TrialStore(abc.ABC):
    """History of trials, shared by the coordinator and all workers.

    Ownership: a RUNNING trial belongs to the attempt named by its ``claim_token``; only that
    attempt may heartbeat, finish or release it. Finished trials (DONE, ERROR, CANCEL) never
    change, except through an explicit operator ``requeue``. Losing an expected race returns
    None/False; breaking the contract raises. Times come from the store's clock (``now``), so
    workers with skewed clocks agree on lease expiry.
    """

    # The driver lease holder whose inserts each experiment accepts (``fence_inserts``).
    _insert_fences: dict[str, str]

    # ---- experiments -------------------------------------------------------------------

    @abc.abstractmethod
    def now(self) -> datetime:
        """The store's clock (timezone-aware UTC)."""

    @abc.abstractmethod
    def get_experiment(self, exp_key: str) -> Experiment | None:
        """The experiment document, or None if ``exp_key`` is unknown."""

    @abc.abstractmethod
    def put_experiment(self, experiment: Experiment) -> Experiment:
        """Create the experiment, or update its descriptive fields if it exists.

        The tid counter, the driver lease, the refusals and the stop request are never
        overwritten by this call.
        """

    @abc.abstractmethod
    def list_experiments(self) -> list[Experiment]:
        """Every experiment in the store."""

    @abc.abstractmethod
    def acquire_driver(self, exp_key: str, lease: DriverLease, lease_s: float) -> bool:
        """Take or renew the driver lease for ``lease.holder``, for ``lease_s`` seconds of
        the store's clock (``lease.expires`` is ignored: the store sets it).

        Returns:
            True if ``lease.holder`` now holds the lease; False if another holder's lease is
            live.
        """

    @abc.abstractmethod
    def renew_driver(self, exp_key: str, holder_id: str, lease_s: float) -> bool:
        """Extend ``holder_id``'s driver lease to ``lease_s`` seconds from now (the store's
        clock), expired or not, as long as nobody took it since.

        Unlike ``acquire_driver`` this never takes a lease that is free: a lease that another
        coordinator (or ``parzen requeue``) took and then let go is lost all the same, since
        the experiment changed behind this holder's back.

        Returns:
            False, writing nothing, when ``holder_id`` no longer holds the lease.
        """

    @abc.abstractmethod
    def release_driver(self, exp_key: str, holder_id: str) -> None:
        """Give up the driver lease if ``holder_id`` holds it, and drop a stop request
        addressed to it."""

    @abc.abstractmethod
    def request_stop(self, exp_key: str, holder_id: str, by: str) -> bool:
        """Ask the coordinator holding the driver lease ``holder_id`` to end its run
        (``Experiment.stop_request``; the store sets its time). Written only while that
        holder's lease is live.

        Returns:
            False, writing nothing, when ``holder_id`` holds no live lease on the experiment
            (the run ended, or another took over).
        """

    def fence_inserts(self, exp_key: str, holder_id: str | None) -> None:
        """From now on, let this store object insert trials of ``exp_key`` (``insert_new``)
        only while ``holder_id`` holds its driver lease; None lifts the fence.

        The coordinator checks its lease before it inserts, but it can be paused (SIGSTOP, a
        VM freeze, a long GC) between that check and the write. By then another coordinator
        may have taken the experiment over and read it: a trial written late is one the new
        driver never counts, so the experiment would run more than ``max_evals`` trials.
        A fenced ``insert_new`` raises ``ExperimentLocked`` instead and leaves no trial
        behind. Only this object's inserts are fenced (one fmin call's), not other clients'.
        """
        # A new dict each time, never changed in place: an insert_new in another thread
        # reads the one it got, whole.
        fences = dict(self._fences())
        if holder_id is None:
            fences.pop(exp_key, None)
        else:
            fences[exp_key] = holder_id
        self._insert_fences = fences

    def _fences(self) -> dict[str, str]:
        try:
            return self._insert_fences
        except AttributeError:  # subclasses need not call a base __init__
            self._insert_fences = {}
            return self._insert_fences

    @abc.abstractmethod
    def allocate_tids(self, exp_key: str, n: int) -> list[int]:
        """Atomically reserve ``n`` consecutive, never-reused tids.

        A counter found behind the stored trials (a database restored from an older dump)
        is moved past the highest tid, with one warning, rather than hand out a tid in
        use: ``insert_new`` would keep the old trial and drop the new point.
        """

    @abc.abstractmethod
    def delete_experiment(self, exp_key: str) -> int:
        """Remove the experiment and all its trials; returns the number of trials removed."""

    # ---- trial lifecycle ---------------------------------------------------------------

    @abc.abstractmethod
    def insert_new(self, trials: Sequence[Trial]) -> None:
        """Insert trials in state NEW. Re-inserting an existing (exp_key, tid) is a no-op,
        so a coordinator that crashed mid-insert can safely retry.

        A trial that is already finished (DONE, ERROR or CANCEL: a result imported from
        elsewhere, as hyperopt's ``insert_trial_docs`` allows for warm starts) keeps its state
        and result; see ``inserted_state``.

        Raises:
            ExperimentLocked: the experiment is fenced (``fence_inserts``) and its driver
                lease holder is no longer the fence's; no trial of this call is left in the
                store (one that another coordinator already handed to a worker excepted: that
                coordinator counts it).
        """

    @abc.abstractmethod
    def claim(self, exp_key: str, tid: int, owner: Owner, lease_s: float) -> Trial | None:
        """Atomically move a trial from NEW to RUNNING for ``owner``.

        Sets a fresh claim token, counts the attempt, and sets the lease expiry to
        ``now() + lease_s``.

        Returns:
            The claimed trial, or None if it was not NEW (claimed elsewhere, finished,
            cancelled).
        Raises:
            TrialNotFound: no trial ``tid`` in experiment ``exp_key``.
            StoreUnavailable: the backend could not be reached.
        """

    @abc.abstractmethod
    def heartbeat(self, exp_key: str, tid: int, claim_token: str, lease_s: float) -> bool:
        """Extend the lease of the attempt holding ``claim_token``.

        Returns:
            False if the lease was lost (the trial was requeued or finished by someone else).
        """

    @abc.abstractmethod
    def report(self, exp_key: str, tid: int, claim_token: str,
               values: Sequence[Intermediate], lease_s: float) -> bool:
        """Append ``values`` (reported by the objective) to the trial's ``intermediate`` and
        extend the lease, as one write fenced like ``heartbeat``: a batch of reports rides
        the heartbeat.

        Returns:
            False if the lease was lost; the values are then dropped.
        """

    def reported(self, exp_key: str) -> list[Trial]:
        """The trials of ``exp_key`` that have reported intermediate values, any state: what
        a pruner compares a trial with. Only ``tid``, ``state`` and ``intermediate`` are
        read (a store may leave the other fields at their defaults)."""
        return [t for t in self.find(exp_key) if t.intermediate]

    @abc.abstractmethod
    def finish(self, exp_key: str, tid: int, claim_token: str, state: TrialState,
               result: Mapping[str, object], error: ErrorInfo | None = None) -> bool:
        """Record the outcome (DONE, ERROR or PRUNED) of the attempt holding ``claim_token``.

        Returns:
            False if the lease was lost; the result is then discarded, never stored twice.
        """

    @abc.abstractmethod
    def release(self, exp_key: str, tid: int, claim_token: str, reason: str,
                count_attempt: bool = False) -> bool:
        """Put a RUNNING trial back to NEW on the worker's own initiative (shutdown, or an
        environment that cannot load the objective). The attempt is recorded in the history;
        it counts towards ``max_attempts`` only if ``count_attempt``.

        Returns:
            False if the lease was already lost.
        """

    @abc.abstractmethod
    def requeue_expired(self, exp_key: str, max_attempts: int,
                        lease_s: float | None = None) -> list[Trial]:
        """Put RUNNING trials whose lease expired back to NEW, or to ERROR (``LeaseExpired``)
        once they have used ``max_attempts`` attempts, so a poison trial cannot loop.

        Expired is ``lease_ended``: a trial without a lease date (edited by hand, or
        written by hyperopt) is judged by its last heartbeat or book time plus ``lease_s``
        (None: the experiment's own lease, ``lease_seconds``), so no state waits forever.

        Returns:
            The trials changed, in their new state.
        """

    @abc.abstractmethod
    def requeue_dead(self, exp_key: str, attempts: Mapping[int, str], max_attempts: int
                     ) -> list[Trial]:
        """Requeue RUNNING trials whose worker is known to have died (``Owner.known_dead``)
        at once, as ``requeue_expired`` would once their lease ran out: back to NEW, or to
        ERROR (``WorkerDied``) once they have used ``max_attempts`` attempts; the attempt
        ends in the history as ``"worker died"``.

        Args:
            attempts: ``{tid: claim_token}`` of the attempts seen dead. Each is fenced on its
                token: a trial finished, released or claimed again since is left alone.
        Returns:
            The trials changed, in their new state.
        """

    @abc.abstractmethod
    def cancel(self, exp_key: str, states: Iterable[TrialState] = (TrialState.NEW,)) -> int:
        """Move trials in ``states`` to CANCEL; returns how many."""

    @abc.abstractmethod
    def requeue(self, exp_key: str, states: Iterable[TrialState]) -> int:
        """Operator action: put finished trials in ``states`` back to NEW for another try.

        The previous outcome is kept in the history. Returns how many were requeued.
        """

    @abc.abstractmethod
    def record_refusal(self, exp_key: str, refusal: Refusal) -> None:
        """Record that ``refusal.worker`` cannot load the experiment's objective, replacing
        that worker's earlier record, in ``Experiment.refusals`` (the latest
        ``MAX_REFUSALS``). The store sets ``refusal.at``. A no-op for an unknown experiment.
        """

    @abc.abstractmethod
    def clear_refusal(self, exp_key: str, worker: str) -> None:
        """Forget ``worker``'s refusal (it loads the objective now); a no-op if it has none."""

    # ---- objective payloads -------------------------------------------------------------

    @abc.abstractmethod
    def put_payload(self, exp_key: str, data: bytes) -> str:
        """Store a (signed) objective payload too large for the experiment document.

        Returns:
            The payload's id, for ``get_payload``.
        """

    @abc.abstractmethod
    def get_payload(self, payload_id: str) -> bytes:
        """The bytes stored under ``payload_id``.

        Raises:
            StoreError: no such payload.
        """

    @abc.abstractmethod
    def delete_payload(self, payload_id: str) -> None:
        """Remove a payload; a missing one is not an error."""

    def close(self) -> None:
        """Release the backend's connections; the store is unusable afterwards."""
        return None

    def unreadable(self) -> list[UnreadableDocument]:
        """The trial documents reads have skipped because they cannot be read as trials.

        Only a store opened to skip them (``MongoTrialStore(..., skip_unreadable=True)``,
        what the read tools use) skips; every other read raises ``UnreadableTrials`` naming
        them. The in-memory store holds ``Trial`` objects only, so it never skips any.
        """
        return []

    # ---- reads -------------------------------------------------------------------------

    @abc.abstractmethod
    def get(self, exp_key: str, tid: int) -> Trial:
        """One trial.

        The reads (``get``, ``get_many``, ``find``, ``count_by_state``) raise
        ``UnreadableTrials`` for documents that cannot be read as trials, naming every one
        they met by ``_id``; a store that skips them (see ``unreadable``) leaves them out
        instead, and ``find`` still returns up to ``limit`` readable trials.

        Raises:
            TrialNotFound: no such trial.
        """

    @abc.abstractmethod
    def get_many(self, exp_key: str, tids: Iterable[int]) -> list[Trial]:
        """The trials among ``tids`` that exist, in tid order. Cost grows with ``len(tids)``
        only, which keeps the coordinator's refresh independent of the experiment's size."""

    @abc.abstractmethod
    def find(self, exp_key: str, states: Iterable[TrialState] | None = None,
             limit: int | None = None, sort: str = "tid", descending: bool = False
             ) -> list[Trial]:
        """Trials of ``exp_key``, optionally only in ``states``; ``sort`` is ``"tid"`` or
        ``"loss"`` (trials without a loss last, descending too; ties by tid)."""

    @abc.abstractmethod
    def count_by_state(self, exp_key: str) -> dict[TrialState, int]:
        """How many trials are in each state (every state present, zero included)."""

    @abc.abstractmethod
    def census(self, exp_key: str, states: Iterable[TrialState]
               ) -> tuple[dict[TrialState, int], list[Trial]]:
        """``count_by_state`` and the trials in ``states`` (in tid order) from one read, so
        the two agree: the trials listed are the ones counted in those states. Two reads
        would each see the trials that changed state between them once, or not at all
        (``parzen status`` said "running 6" over a table of 4 running trials).

        A document counted but unreadable as a trial (see ``get``) is not listed.
        """
