"""The trial: one evaluation of the objective at one point, and its lifecycle state.

``Trial`` is a frozen dataclass; stores return new instances instead of mutating. Raw dicts
(BSON, hyperopt documents) exist only at the edges: ``store/_documents.py`` and ``trials.py``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

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
        """True while a result may still come (queued or running)."""
        return self in (TrialState.NEW, TrialState.RUNNING)


@dataclass(frozen=True)
class Owner:
    """Who runs a trial: the worker's name, its host and process id."""

    worker: str
    host: str
    pid: int

    def __str__(self) -> str:
        return f"{self.worker} (pid {self.pid} on {self.host})"


@dataclass(frozen=True)
class ErrorInfo:
    """Why a trial ended in ERROR."""

    type: str
    message: str
    traceback: str = ""


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
        """The loss when the trial finished with status ok, else None."""
        if self.state is TrialState.DONE and self.result.get("status") == STATUS_OK:
            loss = self.result.get("loss")
            return float(loss) if loss is not None else None
        return None

    @property
    def duration(self) -> float | None:
        """Seconds from claim to end of a DONE or ERROR trial; None for any other (a
        cancelled trial's evaluation did not finish)."""
        if self.state not in (TrialState.DONE, TrialState.ERROR) \
                or self.book_time is None or self.end_time is None:
            return None
        return (self.end_time - self.book_time).total_seconds()
