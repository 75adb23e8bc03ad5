"""Failed trials inform the TPE (issue 17): which failures count, how they enter the model,
and the runs that lost their budget to a crash region before."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

import mongomock
import numpy as np
import pytest

from parzen import ParallelTrials, Trials, fmin, hp, tpe
from parzen.samplers._history import History, HistoryBuilder
from parzen.samplers.tpe import TPESampler
from parzen.samplers.tpe._failures import impute
from parzen.space import compile_space
from parzen.store import InMemoryTrialStore, MongoTrialStore, TrialStore
from parzen.store._base import given_up
from parzen.store._documents import error_from_doc, error_to_doc
from parzen.trial import ErrorInfo, ErrorOrigin, Owner, Trial, TrialState

BRANIN_SPACE = {"x": hp.uniform("x", -5, 10), "y": hp.uniform("y", 0, 15)}
CLIFF_X = 9.5  # one of Branin's three optima is at x = 9.42, just inside


def branin(x: float, y: float) -> float:
    b, c = 5.1 / (4 * math.pi ** 2), 5 / math.pi
    return (y - b * x ** 2 + c * x - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x) + 10


def branin_with_a_cliff(p: dict[str, float]) -> float:
    if p["x"] > CLIFF_X:
        raise ValueError(f"diverged at x={p['x']}")
    return branin(p["x"], p["y"])


def _trial(state: TrialState, result: dict[str, Any] | None = None,
           error: ErrorInfo | None = None) -> Trial:
    return Trial("e", 1, state, {"x": 0.5}, result=result or {"status": "new"}, error=error)


# ---- which failures are the objective's verdict ----------------------------------------


@pytest.mark.parametrize(("trial", "verdict"), [
    (_trial(TrialState.ERROR, {"status": "fail"}, ErrorInfo("ValueError", "diverged")), True),
    (_trial(TrialState.DONE, {"status": "fail"}), True),
    (_trial(TrialState.DONE, {"status": "ok", "loss": float("nan")}), True),
    (_trial(TrialState.DONE, {"status": "ok", "loss": float("inf")}), True),
    (_trial(TrialState.DONE, {"status": "ok", "loss": 0.3}), False),
    (_trial(TrialState.ERROR, {"status": "fail"},
            ErrorInfo("WorkerCrashed", "SIGKILL on attempt 3 of 3")), True),
    (_trial(TrialState.ERROR, {"status": "fail"},
            ErrorInfo("OperationFailure", "the store refused", origin=ErrorOrigin.SYSTEM)), False),
    (_trial(TrialState.CANCEL), False),
    (_trial(TrialState.NEW), False),
    (_trial(TrialState.RUNNING), False),
])
def test_only_the_objectives_own_failures_are_verdicts(trial: Trial, verdict: bool) -> None:
    assert trial.failed_here is verdict


def test_a_lease_that_expired_every_time_is_the_systems_failure() -> None:
    now = datetime.now(timezone.utc)
    running = Trial("e", 4, TrialState.RUNNING, {"x": 1.0}, attempts=3,
                    owner=Owner("w1", "h", 7), claim_token="t", book_time=now)
    dead = given_up(running, now, 3)
    assert dead.state is TrialState.ERROR and dead.error is not None
    assert dead.error.origin is ErrorOrigin.SYSTEM and not dead.failed_here


def test_the_origin_is_stored_and_old_documents_are_read_by_their_type() -> None:
    for origin in ErrorOrigin:
        info = ErrorInfo("T", "m", "tb", origin=origin)
        assert error_from_doc(error_to_doc(info)) == info
    # Written before the origin was stored (or by hyperopt): only an expired lease was not
    # the objective's doing.
    old_lease = error_from_doc({"type": "LeaseExpired", "message": "lease expired"})
    old_raise = error_from_doc({"type": "ValueError", "message": "diverged"})
    assert old_lease is not None and old_lease.origin is ErrorOrigin.SYSTEM
    assert old_raise is not None and old_raise.origin is ErrorOrigin.OBJECTIVE


# ---- how failures enter the model ------------------------------------------------------


SPACE = compile_space(BRANIN_SPACE)


def test_failed_rows_take_the_worst_completed_loss() -> None:
    h = History.from_rows(SPACE, [({"x": 0.0, "y": 1.0}, 3.0, False),
                                  ({"x": 9.9, "y": 1.0}, None, False),
                                  ({"x": 1.0, "y": 1.0}, 7.0, False),
                                  ({"x": 2.0, "y": 2.0}, None, True),   # pending
                                  ({"x": 9.8, "y": 2.0}, None, False)],  # cancelled, say
                          failed=(1,))
    got = impute(h)
    assert got.losses.tolist()[:3] == [3.0, 7.0, 7.0]
    assert math.isnan(got.losses[3]) and math.isnan(got.losses[4])
    assert got.failed.tolist() == [False, True, False, False, False]
    assert got.n_done == 3


def test_failures_before_any_completed_trial_count_for_nothing() -> None:
    h = History.from_rows(SPACE, [({"x": 9.9, "y": 1.0}, None, False)] * 3, failed=(0, 1, 2))
    got = impute(h)
    assert got.n_done == 0 and not got.failed.any()


def test_history_marks_what_the_trials_say() -> None:
    b = HistoryBuilder(SPACE)
    b.add(Trial("e", 0, TrialState.DONE, {"x": 1.0, "y": 2.0},
                result={"status": "ok", "loss": 1.5}))
    b.add(Trial("e", 1, TrialState.ERROR, {"x": 9.9, "y": 2.0}, result={"status": "fail"},
                error=ErrorInfo("ValueError", "diverged")))
    b.add(Trial("e", 2, TrialState.ERROR, {"x": 3.0, "y": 2.0}, result={"status": "fail"},
                error=ErrorInfo("LeaseExpired", "lost", origin=ErrorOrigin.SYSTEM)))
    b.add(Trial("e", 3, TrialState.DONE, {"x": 4.0, "y": 2.0},
                result={"status": "ok", "loss": float("nan")}))
    assert b.view().failed_mask.tolist() == [False, True, False, True]


def _async_loop(sampler: TPESampler, k: int, evals: int, seed: int, *,
                tell_failures: bool) -> tuple[int, int]:
    """Branin with a cliff, ``k`` trials always pending (the oldest finishes first), as a
    worker pool runs it. Returns (failed trials, failed points proposed again unchanged)."""
    rng = np.random.default_rng(seed)
    b = HistoryBuilder(SPACE)
    pending: list[int] = []
    failed_points: set[tuple[float, float]] = set()
    n_failed = repeats = 0
    for tid in range(evals + k):
        if tid < evals:
            (point,) = sampler.suggest(SPACE, b.view(), 1, rng)
            key = (point["x"], point["y"])
            repeats += key in failed_points
            b.set_row(tid, point, None, True)
            pending.append(tid)
        if len(pending) > k or tid >= evals:
            if not pending:
                break
            done = pending.pop(0)
            x, y = float(b.view().values["x"][done]), float(b.view().values["y"][done])
            if x > CLIFF_X:
                n_failed += 1
                failed_points.add((x, y))
                b.set_row(done, {"x": x, "y": y}, None, False, failed=tell_failures)
            else:
                b.set_row(done, {"x": x, "y": y}, branin(x, y), False)
    return n_failed, repeats


@pytest.mark.parametrize("seed", [2, 3, 5])
def test_a_failed_point_is_not_proposed_again_unchanged(seed: int) -> None:
    failed, repeats = _async_loop(TPESampler(), 2, 60, seed, tell_failures=True)
    assert repeats == 0
    assert failed <= 10


def test_the_parallel_run_that_lost_its_budget_at_the_bound() -> None:
    # Issue 17: this run failed 48 of 60 trials, 36 of them at x = 10.0, and its best loss
    # (8.56) came from the random start-up; the optimum at x = 9.42 has loss 0.398.
    trials = ParallelTrials(parallelism=2)
    fmin(branin_with_a_cliff, BRANIN_SPACE, algo=tpe.suggest, max_evals=60, trials=trials,
         rstate=np.random.default_rng(2), show_progressbar=False)
    states = [d["state"] for d in trials._dynamic_trials]
    assert len(states) == 60
    # Two workers finish in an order the machine's load decides, so the run differs from
    # one time to the next: the count of failures is the claim, not the best loss.
    assert states.count(TrialState.ERROR) <= 10


def test_sequential_runs_keep_off_the_cliff_too() -> None:
    trials = Trials()
    fmin(branin_with_a_cliff, BRANIN_SPACE, algo=tpe.suggest, max_evals=60, trials=trials,
         rstate=np.random.default_rng(2), show_progressbar=False, catch_eval_exceptions=True)
    errors = [d for d in trials._dynamic_trials if d["state"] == TrialState.ERROR]
    assert len(errors) <= 6


@pytest.mark.parametrize("store_kind", ["memory", "mongo"])
def test_every_store_tells_the_sampler_which_trials_failed(store_kind: str) -> None:
    # MongoTrials reads through the Mongo store's documents, Trials and ParallelTrials through
    # the in-memory store: both must carry a failure's origin to the history.
    store: TrialStore = InMemoryTrialStore() if store_kind == "memory" else \
        MongoTrialStore(mongomock.MongoClient()["parzen_failures"])
    store.insert_new([Trial("e", tid, TrialState.NEW, {"x": float(tid), "y": 1.0})
                      for tid in range(4)])
    outcomes = [
        (TrialState.DONE, {"status": "ok", "loss": 1.0}, None),
        (TrialState.ERROR, {"status": "fail"}, ErrorInfo("ValueError", "diverged")),
        (TrialState.ERROR, {"status": "fail"},
         ErrorInfo("OperationFailure", "refused", origin=ErrorOrigin.SYSTEM)),
        (TrialState.DONE, {"status": "fail"}, None),
    ]
    for tid, (state, result, error) in enumerate(outcomes):
        claimed = store.claim("e", tid, Owner("w", "h", 1), 60.0)
        assert claimed is not None and claimed.claim_token is not None
        assert store.finish("e", tid, claimed.claim_token, state, result, error)
    history = Trials("e", store=store).history(SPACE)
    assert history.failed_mask.tolist() == [False, True, False, True]
