"""The coordinator warns when most recent trials fail (issue 17): once, with the count, the
most common error and where to read the tracebacks; then at most once every ten minutes."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from parzen import Trials, fmin, hp
from parzen.failure_watch import REPEAT_S, WINDOW, FailureWatch
from parzen.trial import ErrorInfo, Trial, TrialState


def _ok(tid: int) -> Trial:
    return Trial("e", tid, TrialState.DONE, {}, result={"status": "ok", "loss": 1.0})


def _raised(tid: int, message: str = "CUDA out of memory") -> Trial:
    return Trial("e", tid, TrialState.ERROR, {}, result={"status": "fail"},
                 error=ErrorInfo("RuntimeError", message))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_more_than_half_failed_gives_one_warning_with_what_to_do(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    watch = FailureWatch(where="`parzen errors rf`", clock=clock)
    recent = [_ok(i) for i in range(9)] + [_raised(i) for i in range(9, 17)] + [
        Trial("e", 17, TrialState.DONE, {}, result={"status": "fail"}),
        _raised(18, "shape mismatch"), _raised(19)]
    with caplog.at_level(logging.WARNING, logger="parzen.fmin"):
        message = watch.check(recent)
    assert message is not None
    assert "11 of the last 20 finished trials failed" in message
    assert "(9 of them): RuntimeError: CUDA out of memory" in message
    assert "`parzen errors rf`" in message
    assert [r.getMessage() for r in caplog.records] == [message]
    # Still failing: quiet until ten minutes have passed, then once more.
    clock.now += REPEAT_S - 1
    assert watch.check(recent) is None
    clock.now += 1
    assert watch.check(recent) is not None


def test_half_or_fewer_or_too_few_trials_say_nothing() -> None:
    watch = FailureWatch(where="x", clock=Clock())
    half = [_ok(i) for i in range(10)] + [_raised(i) for i in range(10, 20)]
    assert watch.check(half) is None
    assert watch.check([_raised(i) for i in range(WINDOW - 1)]) is None
    # Only the last WINDOW count: old failures followed by 20 good trials are history.
    assert watch.check([_raised(i) for i in range(30)] + [_ok(i) for i in range(30, 50)]) \
        is None


def test_fmin_warns_when_the_objective_fails_in_most_of_the_space(
        caplog: pytest.LogCaptureFixture) -> None:
    def objective(p: dict[str, float]) -> float:
        if p["x"] > 0.1:
            raise MemoryError("the model does not fit")
        return p["x"]

    trials = Trials()
    with caplog.at_level(logging.WARNING, logger="parzen.fmin"):
        fmin(objective, {"x": hp.uniform("x", 0, 1)}, max_evals=40, trials=trials,
             rstate=np.random.default_rng(0), show_progressbar=False,
             catch_eval_exceptions=True)
    warnings = [r.getMessage() for r in caplog.records if "finished trials failed" in
                r.getMessage()]
    assert len(warnings) == 1
    assert "MemoryError: the model does not fit" in warnings[0]
    assert "trials.errors()" in warnings[0]
