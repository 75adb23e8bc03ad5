"""A timeout that comes before any trial finished ends fmin with ``NoTrialFinished``, whose
message says what the trials were doing; code that catches hyperopt's ``AllTrialsFailed``
still catches it (issue 18 item 2). The distributed case (no worker on the queue) is in
``tests/distributed/test_idle_queue.py``."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from parzen import ParallelTrials, Trials, hp, tpe
from parzen.coordinator import nothing_finished, unfinished
from parzen.exceptions import AllTrialsFailed, NoTrialFinished
from parzen.fmin import fmin
from parzen.trial import Owner, TrialState

OWNER = Owner(worker="w1/slot-1", host="h", pid=1)

SPACE = {"x": hp.uniform("x", -1, 1)}


def _slow(p: dict[str, Any]) -> float:
    time.sleep(30)
    return float(p["x"])


def test_parallel_trials_still_running_at_the_timeout() -> None:
    trials = ParallelTrials(parallelism=2)
    with pytest.raises(NoTrialFinished) as info:
        fmin(_slow, SPACE, algo=tpe.suggest, max_evals=10, timeout=1.0, trials=trials,
             show_progressbar=False, rstate=np.random.default_rng(0))
    assert isinstance(info.value, AllTrialsFailed), "hyperopt's catch must keep working"
    assert str(info.value) == (
        "timeout after 1 s: no trial finished; 2 trials were still running and cancelled: "
        "raise the timeout if a trial takes longer than 1 s")
    assert trials.state_counts()[TrialState.CANCEL] == 2


def test_the_counts_name_queued_trials_never_claimed_and_given_back() -> None:
    trials = Trials(exp_key="e")
    trials.insert_points([0, 1, 2, 3], [{"x": 0.1}, {"x": 0.2}, {"x": 0.3}, {"x": 0.4}], "t")
    store = trials.store
    claimed = store.claim("e", 1, owner=OWNER, lease_s=60)
    assert claimed is not None and claimed.claim_token is not None
    store.release("e", 1, claimed.claim_token, "objective unloadable: ImportError: x")
    running = store.claim("e", 2, owner=OWNER, lease_s=60)
    assert running is not None
    trials.refresh()
    assert unfinished(trials) == (2, 1), "tids 0 and 3 never claimed; 1 given back"
    hint = "on queue 'gpu': start a worker"
    assert str(nothing_finished("timeout after 70 s", running=0, never=2, returned=1,
                                 hint=hint, timeout=70)) == (
        "timeout after 70 s: no trial finished; 2 queued trials were never picked up on "
        "queue 'gpu': start a worker; 1 queued trial was picked up and given back by workers "
        "that could not run them (their history says why: parzen trials EXP)")
    # Busy evaluators, not missing ones: no advice to start one.
    assert str(nothing_finished("timeout after 70 s", running=1, never=2, returned=0,
                                 hint=hint, timeout=70)) == (
        "timeout after 70 s: no trial finished; 1 trial was still running and cancelled: "
        "raise the timeout if a trial takes longer than 70 s; 2 queued trials were waiting "
        "for a free one")
    assert trials.known(1).history[0].outcome.startswith("objective unloadable")


def test_a_timeout_after_some_trials_finished_returns_the_best() -> None:
    trials = Trials()
    best = fmin(lambda p: time.sleep(0.05) or p["x"], SPACE, algo=tpe.suggest,
                max_evals=1000, timeout=0.5, trials=trials, show_progressbar=False,
                rstate=np.random.default_rng(0))
    assert set(best) == {"x"} and trials.state_counts()[TrialState.DONE] >= 1
