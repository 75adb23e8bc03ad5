"""The trial: one evaluation of the objective at one point, and its lifecycle state.

``Trial`` is a frozen dataclass; stores return new instances instead of mutating. Raw dicts
(BSON, hyperopt documents) exist only at the edges: ``store/_documents.py`` and ``trials.py``.
"""

from __future__ import annotations

import enum
import math
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from parzen import processes
from parzen.exceptions import ConfigError

STATUS_OK = "ok"
STATUS_FAIL = "fail"
STATUS_NEW = "new"
STATUS_RUNNING = "running"
STATUS_STRINGS = (STATUS_NEW, STATUS_RUNNING, "suspended", STATUS_OK, STATUS_FAIL)


class TrialState(enum.IntEnum):
    """Lifecycle state; the numbers equal hyperopt's ``JOB_STATE_*`` so stored trials stay
    readable by both."""

    NEW = 0
    RUNNING = 1
    DONE = 2
    ERROR = 3
    CANCEL = 4
    # parzen's own: stopped early by a pruner (``parzen.report``). Not a hyperopt number:
    # hyperopt documents show a pruned trial as DONE with status fail (``trials.py``).
    PRUNED = 5

    def is_finished(self) -> bool:
        """True once the trial can never change again."""
        return self in (TrialState.DONE, TrialState.ERROR, TrialState.CANCEL,
                        TrialState.PRUNED)

    def is_pending(self) -> bool:
        """True while a result may still come (new or running)."""
        return self in (TrialState.NEW, TrialState.RUNNING)

    @property
    def word(self) -> str:
        """The state's one name: stored in trial documents, shown and accepted by the CLI,
        used in the docs (``new``, ``running``, ``done``, ``error``, ``cancel``, ``pruned``)."""
        return self.name.lower()

    @classmethod
    def parse(cls, word: str) -> TrialState:
        """The state a person typed: its name, or a common other word for it (``queued``,
        ``failed``, ``cancelled``, ``canceled``, ``ok``), in any case.

        Raises:
            ConfigError: ``word`` names no state; the message lists the names.
        """
        key = word.strip().lower()
        for state in cls:
            if key == state.word:
                return state
        if key in STATE_ALIASES:
            return cls[STATE_ALIASES[key].upper()]
        aliases = ", ".join(f"{a} = {n}" for a, n in STATE_ALIASES.items())
        raise ConfigError(f"{word!r} is not a trial state: use one of "
                          f"{', '.join(s.word for s in cls)} (also accepted: {aliases})")


# Other words people use for the states, accepted wherever a state is typed (the CLI's
# --state) and mapped to the one name; nothing shows or stores them.
STATE_ALIASES = {"queued": "new", "failed": "error", "cancelled": "cancel",
                 "canceled": "cancel", "ok": "done"}


@dataclass(frozen=True)
class Owner:
    """Who runs a trial.

    Attributes:
        worker: the worker's name (``parzen worker --name``, default ``<host>-<pid>``), the
            same for all its slots, so a query on it finds everything the worker ran.
        host: the host name.
        pid: the worker's process id.
        slot: which of the worker's concurrent slots ran it (1, 2, ...); None where there
            are none (the in-process runner) or the document does not say (hyperopt's).
        pid_ns: the pid namespace ``pid`` belongs to (``processes.pid_namespace``: the
            kernel's boot id and the namespace), ``""`` when unknown.
        pid_start: when ``pid`` started (``processes.start_ticks``), 0 when unknown; with
            ``pid_ns`` it tells a reused pid from the owner's.
    """

    worker: str
    host: str
    pid: int
    slot: int | None = None
    pid_ns: str = ""
    pid_start: int = 0

    @classmethod
    def here(cls, worker: str, slot: int | None = None) -> Owner:
        """This process, as the owner of the trials it claims."""
        pid = os.getpid()
        return cls(worker=worker, host=socket.gethostname(), pid=pid, slot=slot,
                   pid_ns=processes.pid_namespace(), pid_start=processes.start_ticks(pid))

    def known_dead(self) -> bool:
        """True when this owner's process has certainly ended, as seen from this process:
        it ran in this pid namespace (the same host, and not another container on it) and
        its pid is gone or now names a process started since. False whenever that cannot
        be told here: then only the trial's lease running out says the owner is dead."""
        return processes.gone(self.pid_ns, self.pid, self.pid_start)

    def __str__(self) -> str:
        slot = "" if self.slot is None else f" slot {self.slot}"
        return f"{self.worker}{slot} (pid {self.pid} on {self.host})"


class ErrorOrigin(enum.Enum):
    """Whose failure an ERROR trial records, which decides whether samplers learn from it.

    ``OBJECTIVE``: the objective failed at this point (it raised, timed out, or its process
    died on every attempt). That is a verdict on the point: samplers avoid its neighbourhood
    (``Trial.failed_here``). ``SYSTEM``: the system failed around it (the worker was lost on
    every attempt, the store refused the result); the point itself says nothing, and samplers
    ignore the trial as if it had never run.
    """

    OBJECTIVE = "objective"
    SYSTEM = "system"


@dataclass(frozen=True)
class ErrorInfo:
    """Why a trial ended in ERROR, and whose failure it was (``ErrorOrigin``)."""

    type: str
    message: str
    traceback: str = ""
    origin: ErrorOrigin = ErrorOrigin.OBJECTIVE


@dataclass(frozen=True)
class Attempt:
    """An earlier attempt at a trial that did not produce its result."""

    attempt: int
    owner: Owner | None
    book_time: datetime | None
    end_time: datetime | None
    outcome: str  # "lease expired", "released", "crashed: SIGKILL", ...


@dataclass(frozen=True)
class Intermediate:
    """One value the objective reported while it ran (``parzen.report(loss, step)``).

    Attributes:
        step: the objective's step (an epoch, a number of samples...): increases within an
            attempt.
        loss: the loss at that step (finite).
        attempt: the attempt that reported it (``Trial.attempts`` when it ran): a trial run
            again after its worker died starts its curve afresh, and the earlier attempt's
            values are kept.
    """

    step: int
    loss: float
    attempt: int


@dataclass(frozen=True)
class Trial:
    """One point of the search and, once finished, its result.

    Attributes:
        exp_key: the experiment the trial belongs to.
        tid: trial id, unique and increasing within the experiment.
        state: lifecycle state.
        params: the active parameters, ``{label: raw value}``; a choice's value is its index.
        result: the objective's result dict (``loss``, ``status`` and any extra keys).
        attempts: how many times a worker has claimed the trial.
        owner: the worker running (or that finished) the trial.
        claim_token: fences heartbeats and results to the current attempt.
        lease_expires: when the current attempt is presumed dead (store's clock).
        error: set when ``state`` is ERROR.
        history: earlier attempts that ended without a result.
        intermediate: the values the objective reported while it ran, every attempt's, in
            the order reported (see ``curve``).
    """

    exp_key: str
    tid: int
    state: TrialState
    params: Mapping[str, Any]
    result: Mapping[str, Any] = field(default_factory=lambda: {"status": STATUS_NEW})
    attempts: int = 0
    owner: Owner | None = None
    claim_token: str | None = None
    lease_expires: datetime | None = None
    created: datetime | None = None
    book_time: datetime | None = None
    heartbeat_time: datetime | None = None
    end_time: datetime | None = None
    error: ErrorInfo | None = None
    history: tuple[Attempt, ...] = ()
    origin: str = ""
    intermediate: tuple[Intermediate, ...] = ()

    def curve(self) -> tuple[Intermediate, ...]:
        """The reported values of the latest attempt that reported any (its learning curve)."""
        if not self.intermediate:
            return ()
        last = max(r.attempt for r in self.intermediate)
        return tuple(r for r in self.intermediate if r.attempt == last)

    @property
    def loss(self) -> float | None:
        """The loss when the trial finished with status ok and a finite loss, else None.

        A NaN or infinite loss stays in ``result`` as the objective returned it (hyperopt
        records it so too), but it ranks nowhere: it is never the best, and sorting by loss
        puts the trial with those without a loss.
        """
        if self.state is TrialState.DONE and self.result.get("status") == STATUS_OK:
            loss = self.result.get("loss")
            if loss is None:
                return None
            value = float(loss)
            return value if math.isfinite(value) else None
        return None

    @property
    def failed_here(self) -> bool:
        """True when the objective's own verdict on this point is "not here": the trial ended
        in ERROR by the objective's doing (``ErrorOrigin.OBJECTIVE``: it raised, timed out or
        its process died on every attempt), or finished with status ``fail``, or returned a
        loss that is not a finite number. Samplers treat such a point as worse than any that
        finished (``samplers/tpe``). Cancelled trials and failures of the system (a lost
        worker, a refused result, an objective the worker could not load) are not verdicts.
        """
        if self.state is TrialState.ERROR:
            return self.error is None or self.error.origin is ErrorOrigin.OBJECTIVE
        if self.state is not TrialState.DONE:
            return False
        if self.result.get("status") != STATUS_OK:
            return True
        loss = self.result.get("loss")
        try:
            return loss is None or not math.isfinite(float(loss))
        except (TypeError, ValueError):
            return True

    @property
    def duration(self) -> float | None:
        """Seconds from claim to end of a DONE, ERROR or PRUNED trial (the time a pruned
        trial used before its pruner stopped it); None for any other (a cancelled trial's
        evaluation did not finish)."""
        if self.state not in (TrialState.DONE, TrialState.ERROR, TrialState.PRUNED) \
                or self.book_time is None or self.end_time is None:
            return None
        return (self.end_time - self.book_time).total_seconds()
