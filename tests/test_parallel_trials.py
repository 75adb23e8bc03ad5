"""ParallelTrials: the fmin loop over local worker processes, with no server."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from parzen import fmin, hp, tpe
from parzen.exceptions import ConfigError, ObjectiveNotPicklable, PayloadTooLarge
from parzen.parallel import ParallelTrials
from parzen.trial import TrialState

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SPACE = {"x": hp.uniform("x", -1, 1), "k": hp.choice("k", [0, 1])}


def quadratic(p):
    return (p["x"] - 0.3) ** 2 + p["k"]


def sleepy(p):
    time.sleep(0.2)
    return (p["x"] - 0.3) ** 2 + p["k"]


def test_runs_max_evals_in_parallel():
    trials = ParallelTrials(parallelism=3)
    best = fmin(sleepy, SPACE, algo=tpe.suggest, max_evals=12, trials=trials,
                show_progressbar=False, rstate=np.random.default_rng(0))
    assert trials.state_counts()[TrialState.DONE] == 12
    assert best["k"] in (0, 1)
    pids = {d["owner"][1] for d in trials.trials}
    assert len(pids) == 1  # one coordinator process owns the slots
    # In parallel, not one at a time: some trials ran at the same time. Read from the
    # trials' own claim and end times, not the wall clock of a shared machine.
    spans = sorted((d["book_time"], d["refresh_time"]) for d in trials.trials)
    assert max(_overlapping(spans, i) for i in range(len(spans))) >= 2


def _overlapping(spans, i):
    start, end = spans[i]
    return sum(1 for s, e in spans if s < end and e > start)


def raises_for_positive(p):
    if p["x"] > 0:
        raise ValueError(f"x={p['x']:.3f} is positive")
    return p["x"] ** 2


def test_objective_errors_are_in_dynamic_trials():
    trials = ParallelTrials(parallelism=2)
    fmin(raises_for_positive, SPACE, algo=tpe.suggest, max_evals=10, trials=trials,
         show_progressbar=False, rstate=np.random.default_rng(3))
    errors = [d for d in trials._dynamic_trials if d["state"] == TrialState.ERROR]
    assert errors, "some x > 0 trials should have failed"
    e = errors[0]["error"]
    assert e["type"] == "ValueError" and "is positive" in e["message"]
    assert "raises_for_positive" in e["traceback"]
    assert trials.state_counts()[TrialState.DONE] + len(errors) == 10


def exits_for_positive(p):
    if p["x"] > 0:
        os._exit(7)
    return p["x"] ** 2


def test_crashing_objective_is_retried_then_failed_with_the_exit_named():
    trials = ParallelTrials(parallelism=2, max_attempts=2)
    fmin(exits_for_positive, SPACE, algo=tpe.suggest, max_evals=8, trials=trials,
         show_progressbar=False, rstate=np.random.default_rng(3))
    crashed = [t for t in trials.all_trials() if t.state is TrialState.ERROR]
    assert crashed
    for t in crashed:
        assert t.attempts == 2
        assert t.error is not None and "exited with code 7" in t.error.message
        assert [a.outcome for a in t.history] == ["crashed: the objective's process exited "
                                                  "with code 7"]


def hangs_for_positive(p):
    if p["x"] > 0:
        time.sleep(600)
    return p["x"] ** 2


def test_hard_timeout_ends_a_hanging_trial():
    trials = ParallelTrials(parallelism=2, trial_timeout=0.5)
    fmin(hangs_for_positive, SPACE, algo=tpe.suggest, max_evals=6, trials=trials,
         show_progressbar=False, rstate=np.random.default_rng(3))
    timed_out = [t for t in trials.all_trials() if t.state is TrialState.ERROR]
    assert timed_out
    assert all(t.error is not None and t.error.message == "timeout after 0.5 s"
               for t in timed_out)
    assert trials.state_counts()[TrialState.DONE] == 6 - len(timed_out)


def test_bad_settings_and_objectives_are_refused_before_running():
    with pytest.raises(ConfigError, match="parallelism"):
        ParallelTrials(parallelism=0)
    with pytest.raises(ConfigError, match="trial_timeout"):
        ParallelTrials(trial_timeout=-1)
    import threading

    lock = threading.Lock()
    with pytest.raises(ObjectiveNotPicklable, match="lock"):
        fmin(lambda p: lock and 0.0, SPACE, max_evals=2, show_progressbar=False,
             trials=ParallelTrials(parallelism=1))
    big = np.zeros(3_000_000)  # 24 MB captured by the closure
    with pytest.raises(PayloadTooLarge, match=r"24\.\d MB.*inside the objective"):
        fmin(lambda p: float(big[0]), SPACE, max_evals=2, show_progressbar=False,
             trials=ParallelTrials(parallelism=1, max_payload_bytes=10_000_000))


def constant(p):
    return 1.0


def test_no_progress_loss_stops_parallel_runs():
    """Results arrive after their trials were first seen; each must still be counted."""
    from parzen import no_progress_loss

    trials = ParallelTrials(parallelism=4)
    fmin(constant, SPACE, algo=tpe.suggest, max_evals=60, trials=trials,
         early_stop_fn=no_progress_loss(5), show_progressbar=False,
         rstate=np.random.default_rng(0))
    assert trials.state_counts()[TrialState.DONE] < 20
