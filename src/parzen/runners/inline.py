"""``InlineRunner``: evaluates in the calling process, one trial after another, as
hyperopt's ``Trials`` does."""

from __future__ import annotations

from collections.abc import Sequence

from parzen.domain import Domain
from parzen.exceptions import ExpressionError
from parzen.execution.run import run_trial
from parzen.pruners import Pruner
from parzen.runners.base import Closing, cancel_queued
from parzen.trial import Owner, TrialState
from parzen.trials import Trials


class InlineRunner:
    """Evaluates each dispatched trial in this process, in tid order.

    Args:
        catch_eval_exceptions: when False, the objective's exception propagates out of
            ``wait`` (after the trial is recorded as ERROR), as in hyperopt; an
            ``ExpressionError`` (the space's own expression failed) never does.
    """

    def __init__(self, domain: Domain, trials: Trials, catch_eval_exceptions: bool,
                 pruner: Pruner | None = None) -> None:
        self._pruner = pruner
        self._domain = domain
        self._trials = trials
        self._catch = catch_eval_exceptions
        self._queue: list[int] = []
        self._owner = Owner.here("inline")

    def start(self) -> None:
        return None

    def dispatch(self, tids: Sequence[int]) -> None:
        self._queue.extend(tids)

    def wait(self, timeout_s: float) -> None:
        queue, self._queue = self._queue, []
        store, exp_key = self._trials.store, self._trials.exp_key
        for i, tid in enumerate(queue):
            outcome = run_trial(store, exp_key, tid, self._owner,
                                lambda params, tid, _abort: self._domain.evaluate(params, tid),
                                pruner=self._pruner)
            # An expression of the space that failed for this sample is the trial's error,
            # not the objective's: the run goes on.
            if outcome.exception is not None and not self._catch \
                    and not isinstance(outcome.exception, ExpressionError):
                self._queue = queue[i + 1:]
                raise outcome.exception

    def maintain(self) -> None:
        return None

    def stop_requested(self) -> str | None:
        return None  # a run in this process is stopped with Ctrl-C

    def queue_hint(self) -> str:
        return ""

    def close(self, closing: Closing) -> None:
        self._queue.clear()
        if closing is not Closing.HANDS_OFF:
            cancel_queued(self._trials.store, self._trials.exp_key, (TrialState.NEW,))
