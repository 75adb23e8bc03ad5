"""``parzen.report``: an objective's intermediate losses, and the pruner's answer.

An objective written for hyperopt takes only ``params``; it reports with the context
function::

    def objective(params):
        model = build(params)
        for epoch in range(1, 51):
            loss = model.train_one_epoch()
            parzen.report(loss, epoch)  # raises TrialPruned when the trial should stop
        return loss

``report`` **raises** ``TrialPruned`` rather than returning a flag. A hyperopt-style
objective then needs one added line and no new control flow; the exception unwinds through
the objective's own ``with`` blocks and ``finally`` clauses, so what the trial holds (a GPU, a
file) is freed; and an objective that forgets to check a flag cannot run on for hours after
the pruner gave up on it. ``TrialPruned`` is an ``Exception`` (a ``ParzenError``), as
``optuna.TrialPruned`` is one: an objective that catches every exception and returns a
result instead is recorded as done.

An objective that declares a second parameter (``def objective(params, trial)``) gets a
``TrialHandle`` instead, with ``report`` that only records and ``should_prune`` to ask, for
code that wants to save a checkpoint before it stops; it then raises ``TrialPruned`` itself.

Where the report goes depends on where the objective runs: in the calling process the
session talks to the judge of ``parzen.execution.judge`` directly; in a sandbox child it
sends the report to its supervisor and waits for the answer. Either way the objective sees
the same two calls.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import math
import numbers
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from parzen.exceptions import InvalidReport, ParzenError, ReportOutsideTrial


class TrialPruned(ParzenError):  # noqa: N818 (the name optuna and Ray users know)
    """The pruner stopped this trial: raised by ``parzen.report``; let it propagate.

    An objective may raise it itself (after ``TrialHandle.should_prune``); the trial is
    then recorded as pruned with its last reported loss and step.
    """


class Sink(Protocol):
    """Where a running trial's reports go; answers whether the trial should stop."""

    def report(self, step: int, loss: float) -> bool:
        """Record ``loss`` at ``step``; True when the trial should stop now."""


class Session:
    """The reports of one evaluation: checks each one, forwards it, keeps the answer.

    Args:
        sink: where checked reports go.
        tid: the trial's id, for messages and ``TrialHandle.tid``.
    """

    def __init__(self, sink: Sink, tid: int | None) -> None:
        self._sink = sink
        self.tid = tid
        self.last_step: int | None = None
        self.pruned = False

    def report(self, loss: Any, step: Any) -> bool:
        """Check and forward one report; True once the trial should stop (and ever after).

        Raises:
            InvalidReport: ``loss`` is not a finite number, or ``step`` is not an integer
                greater than the previous one.
        """
        who = f"trial {self.tid}" if self.tid is not None else "the trial"
        if isinstance(loss, bool) or not isinstance(loss, numbers.Real) \
                or not math.isfinite(float(loss)):
            raise InvalidReport(
                f"parzen.report(loss={loss!r}, step={step!r}) in {who}: the loss must be a "
                "finite number; report only finite losses (a diverged run can raise, or "
                "return {'status': STATUS_FAIL})")
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or int(step) < 0:
            raise InvalidReport(
                f"parzen.report(loss={loss!r}, step={step!r}) in {who}: the step must be an "
                "integer >= 0 (an epoch number, a count of samples seen)")
        if self.last_step is not None and int(step) <= self.last_step:
            raise InvalidReport(
                f"parzen.report(loss={loss!r}, step={step!r}) in {who}: the step must "
                f"increase, and the previous report was at step {self.last_step}; count "
                "steps from the start of the trial (epoch 1, 2, 3, ...)")
        self.last_step = int(step)
        if self._sink.report(int(step), float(loss)):
            self.pruned = True
        return self.pruned


_session: contextvars.ContextVar[Session | None] = contextvars.ContextVar(
    "parzen_report_session", default=None)


@contextlib.contextmanager
def reporting_to(sink: Sink, tid: int | None) -> Iterator[Session]:
    """Make ``parzen.report`` in this thread (and context) go to ``sink`` while the block
    runs: the evaluation of trial ``tid``."""
    session = Session(sink, tid)
    token = _session.set(session)
    try:
        yield session
    finally:
        _session.reset(token)


def _current(what: str) -> Session:
    session = _session.get()
    if session is None:
        raise ReportOutsideTrial(
            f"{what} was called outside a trial: call it from the objective while fmin "
            "runs it (in the objective's own thread; a thread it starts does not carry the "
            "trial)")
    return session


def report(loss: float, step: int) -> None:
    """Report the running trial's ``loss`` at ``step``; raise ``TrialPruned`` if it should
    stop.

    Args:
        loss: the loss so far (lower is better), a finite number.
        step: how far the trial is (an epoch, a number of samples): an integer >= 0 that
            increases from one report to the next.
    Raises:
        TrialPruned: the pruner decided this trial should stop; let it propagate.
        InvalidReport: a non-finite loss, or a step that does not increase.
        ReportOutsideTrial: no trial is running in this thread.
    """
    session = _current("parzen.report")
    if session.report(loss, step):
        raise TrialPruned(f"trial {session.tid} pruned at step {step} (loss {float(loss):g})")


class TrialHandle:
    """What an objective with a second parameter receives: ``objective(params, trial)``.

    Attributes:
        tid: the trial's id.
    """

    def __init__(self, session: Session) -> None:
        self._session = session
        self.tid = session.tid

    def report(self, loss: float, step: int) -> None:
        """Record ``loss`` at ``step`` (same checks as ``parzen.report``), without raising
        ``TrialPruned``: ask ``should_prune`` afterwards."""
        self._session.report(loss, step)

    def should_prune(self) -> bool:
        """True when the pruner decided this trial should stop; raise ``TrialPruned``."""
        return self._session.pruned


class _Detached:
    """The sink of a handle made outside a trial: keeps nothing, never prunes."""

    def report(self, step: int, loss: float) -> bool:
        return False


def handle_for(tid: int | None) -> TrialHandle:
    """The running trial's handle, for an objective that declares a second parameter; when
    no trial runs (``Domain.evaluate`` called directly, as hyperopt's tools do), a detached
    handle whose reports are checked and dropped."""
    session = _session.get()
    return TrialHandle(session if session is not None else Session(_Detached(), tid))


def wants_handle(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` declares a second positional parameter without a default: then it is
    called as ``fn(params, trial)``. A hyperopt objective (``fn(params)``, or with
    ``*args`` or defaults) is called as before."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins and some C callables have no signature
        return False
    positional = [p for p in sig.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 and positional[1].default is inspect.Parameter.empty
