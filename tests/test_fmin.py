"""fmin end to end: stopping rules, points_to_evaluate, objective failures, resuming from
``trials_save_file``, queueing, seeded determinism and a loose regret bound."""

from __future__ import annotations

import functools
import pickle
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from parzen import (
    JOB_STATE_CANCEL,
    JOB_STATE_DONE,
    JOB_STATE_ERROR,
    STATUS_FAIL,
    STATUS_OK,
    AllTrialsFailed,
    InvalidLoss,
    InvalidResultStatus,
    InvalidTrial,
    Trials,
    anneal,
    fmin,
    grid,
    hp,
    no_progress_loss,
    rand,
    space_eval,
    tpe,
)

SPACE = {"x": hp.uniform("x", -5, 5), "kind": hp.choice("kind", ["a", "b", "c"])}


def _loss(p: dict[str, Any]) -> float:
    return p["x"] ** 2 + {"a": 0.0, "b": 1.0, "c": 2.0}[p["kind"]]


def _run(fn: Callable[[Any], Any] = _loss, trials: Trials | None = None, **kw: Any) -> Trials:
    trials = Trials() if trials is None else trials
    kw.setdefault("algo", rand.suggest)
    kw.setdefault("rstate", np.random.default_rng(0))
    kw.setdefault("space", SPACE)
    fmin(fn, trials=trials, show_progressbar=False, **kw)
    return trials


# ---- early_stop_fn -------------------------------------------------------------------------

def test_early_stop_fn_threads_its_state_and_stops() -> None:
    calls: list[tuple[int, tuple[Any, ...]]] = []

    def stop_after_four(trials: Trials, *state: Any) -> tuple[bool, list[Any]]:
        calls.append((len(trials.results), state))
        n = state[0] + 1 if state else 1
        return n >= 4, [n, "token"]

    trials = _run(trials=None, max_evals=50, early_stop_fn=stop_after_four)
    assert len(trials) == 4
    assert calls[0] == (1, ())  # called once a trial finished, with no state yet
    assert calls[1:] == [(2, (1, "token")), (3, (2, "token")), (4, (3, "token"))]


def test_early_stop_fn_alone_is_a_stopping_rule() -> None:
    trials = _run(max_evals=None, early_stop_fn=lambda t, *s: (len(t) >= 3, []))
    assert len(trials) == 3


def test_no_progress_loss_stops_after_n_trials_without_improvement() -> None:
    trials = _run(lambda p: 1.0, max_evals=100, early_stop_fn=no_progress_loss(5))
    # As in hyperopt, the first trial counts as one without progress; four more fail to
    # beat it.
    assert len(trials) == 5


def test_no_progress_loss_resets_on_improvement() -> None:
    losses = iter([5.0, 4.0, 4.5, 4.5, 3.0, 3.5, 3.5, 3.5, 9.0])
    trials = _run(lambda p: next(losses), max_evals=9, early_stop_fn=no_progress_loss(3))
    assert trials.losses() == [5.0, 4.0, 4.5, 4.5, 3.0, 3.5, 3.5, 3.5]


def test_no_progress_loss_percent_increase() -> None:
    # Each trial improves by 1%, less than the 5% required to count as progress.
    losses = iter(100.0 * 0.99 ** i for i in range(100))
    trials = _run(lambda p: next(losses), max_evals=100,
                  early_stop_fn=no_progress_loss(4, percent_increase=5.0))
    assert len(trials) == 4
    losses2 = iter(100.0 * 0.99 ** i for i in range(100))
    trials2 = _run(lambda p: next(losses2), max_evals=30, early_stop_fn=no_progress_loss(4))
    assert len(trials2) == 30


def test_no_progress_loss_ignores_failed_trials() -> None:
    results = iter([{"loss": 2.0, "status": STATUS_OK}] + [{"status": STATUS_FAIL}] * 5
                   + [{"loss": 2.0, "status": STATUS_OK}] * 5)
    trials = _run(lambda p: next(results), max_evals=11, early_stop_fn=no_progress_loss(2))
    assert len(trials) == 7  # the first ok trial counts one, the next ok one stops the run


# ---- loss_threshold and timeout ----------------------------------------------------------

def test_loss_threshold_stops_at_the_first_good_enough_loss() -> None:
    trials = _run(lambda p: p["x"], max_evals=200, loss_threshold=-3.5)
    losses = trials.losses()
    assert losses[-1] <= -3.5
    assert all(loss > -3.5 for loss in losses[:-1])
    assert len(trials) < 200


def test_loss_threshold_is_inclusive() -> None:
    trials = _run(lambda p: 1.0, max_evals=10, loss_threshold=1.0)
    assert len(trials) == 1


def test_timeout_ends_the_run_near_the_deadline() -> None:
    started = time.monotonic()
    trials = _run(lambda p: time.sleep(0.1) or 1.0, timeout=0.5, max_evals=None)
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 1.3
    assert 3 <= len(trials) <= 6
    assert trials.count_by_state_synced(JOB_STATE_DONE) == len(trials)


def test_max_evals_wins_before_timeout() -> None:
    started = time.monotonic()
    trials = _run(max_evals=5, timeout=30)
    assert len(trials) == 5 and time.monotonic() - started < 5


# ---- points_to_evaluate --------------------------------------------------------------------

def test_points_to_evaluate_run_first_in_order() -> None:
    seen: list[dict[str, Any]] = []
    points = [{"x": 1.5, "kind": 2}, {"x": -0.5, "kind": 0}, {"x": 0.0, "kind": 1}]
    trials = _run(lambda p: seen.append(p) or _loss(p), max_evals=6, points_to_evaluate=points)
    assert len(trials) == 6  # max_evals counts the given points
    assert seen[:3] == [{"x": 1.5, "kind": "c"}, {"x": -0.5, "kind": "a"},
                        {"x": 0.0, "kind": "b"}]
    for doc, point in zip(trials.trials[:3], points, strict=True):
        assert {k: v[0] for k, v in doc["misc"]["vals"].items()} == point
        assert doc["misc"]["origin"] == "points_to_evaluate"
    assert [d["misc"]["origin"] for d in trials.trials[3:]] == ["random"] * 3


def test_points_to_evaluate_in_a_conditional_space() -> None:
    space = {"m": hp.choice("m", [{"u": hp.uniform("u", 0, 1)}, {"r": hp.randint("r", 3)}])}
    seen: list[Any] = []
    _run(lambda p: seen.append(p) or 0.0, space=space, max_evals=2,
         points_to_evaluate=[{"m": 1, "r": 2}, {"m": 0, "u": 0.25, "r": 1}])
    assert seen == [{"m": {"r": 2}}, {"m": {"u": 0.25}}]


def test_point_outside_the_space_names_the_point_and_value() -> None:
    calls: list[Any] = []
    with pytest.raises(InvalidTrial) as info:
        _run(lambda p: calls.append(p) or 0.0, max_evals=3,
             points_to_evaluate=[{"x": 0.0, "kind": 1}, {"x": 7.25, "kind": 1}])
    msg = str(info.value)
    assert "points_to_evaluate[1]" in msg and "7.25" in msg and "uniform('x')" in msg
    assert calls == []


# ---- objective failures ------------------------------------------------------------------

class _Boom(RuntimeError):
    pass


def test_objective_exception_propagates_and_is_recorded() -> None:
    # As in hyperopt, trials.trials holds queued, running and done trials; those that raised
    # are in trials._dynamic_trials.
    def objective(p: dict[str, Any]) -> float:
        if len(calls) == 2:
            raise _Boom("third trial fails")
        calls.append(p)
        return _loss(p)

    calls: list[Any] = []
    trials = Trials()
    with pytest.raises(_Boom, match="third trial fails"):
        _run(objective, trials=trials, max_evals=10)
    assert len(trials._dynamic_trials) == 3
    assert [d["state"] for d in trials._dynamic_trials] == [JOB_STATE_DONE, JOB_STATE_DONE,
                                                   JOB_STATE_ERROR]
    err = trials._dynamic_trials[2]["error"]
    assert err["type"] == "_Boom" and err["message"] == "third trial fails"
    assert "raise _Boom" in err["traceback"]


def test_exception_with_a_queue_cancels_the_queued_trials() -> None:
    def objective(p: dict[str, Any]) -> float:
        raise _Boom("first")

    trials = Trials()
    with pytest.raises(_Boom):
        _run(objective, trials=trials, max_evals=10, max_queue_len=3)
    assert [d["state"] for d in trials._dynamic_trials] == [JOB_STATE_ERROR, JOB_STATE_CANCEL,
                                                   JOB_STATE_CANCEL]


def test_catch_eval_exceptions_keeps_going() -> None:
    def objective(p: dict[str, Any]) -> float:
        if p["kind"] == "b":
            raise _Boom(f"x={p['x']:.3f}")
        return _loss(p)

    trials = _run(objective, max_evals=15, catch_eval_exceptions=True)
    assert len(trials._dynamic_trials) == 15
    errors = [d for d in trials._dynamic_trials if d["state"] == JOB_STATE_ERROR]
    assert 0 < len(errors) < 15
    assert all(d["misc"]["vals"]["kind"] == [1] for d in errors)
    assert all(d["error"]["message"].startswith("x=") for d in errors)
    assert space_eval(SPACE, trials.argmin)["kind"] != "b"


@pytest.mark.parametrize(("bad", "exc", "fragment"), [
    ({"loss": "0.1", "status": STATUS_OK}, InvalidLoss, "result for trial 3 has status ok "
                                                         "and loss='0.1'"),
    ({"status": STATUS_OK, "accuracy": 0.9}, InvalidLoss, "result for trial 3 has status ok "
                                                           "but no 'loss' key"),
    ({"loss": 0.1, "status": "succeeded"}, InvalidResultStatus,
     "result for trial 3 has status 'succeeded'"),
], ids=["str-loss", "missing-loss", "bad-status"])
def test_invalid_results_name_the_trial(bad: Any, exc: type[Exception], fragment: str) -> None:
    def objective(p: dict[str, Any]) -> Any:
        n[0] += 1
        return bad if n[0] == 4 else 1.0

    n = [0]
    trials = Trials()
    with pytest.raises(exc, match=fragment.replace("(", r"\(")):
        _run(objective, trials=trials, max_evals=10)
    assert trials._dynamic_trials[3]["state"] == JOB_STATE_ERROR
    assert trials._dynamic_trials[3]["error"]["type"] == exc.__name__

    n[0] = 0
    caught = _run(objective, max_evals=6, catch_eval_exceptions=True)
    assert [d["state"] for d in caught._dynamic_trials].count(JOB_STATE_ERROR) == 1
    assert fragment in caught._dynamic_trials[3]["error"]["message"]


def test_all_trials_failed_reports_n_of_n_and_the_first_traceback() -> None:
    def objective(p: dict[str, Any]) -> float:
        raise _Boom(f"broken objective #{len(trials)}")

    trials = Trials()
    with pytest.raises(AllTrialsFailed) as info:
        _run(objective, trials=trials, max_evals=4, catch_eval_exceptions=True)
    msg = str(info.value)
    assert "4 of 4" in msg
    assert "the first (trial 0)" in msg and "_Boom: broken objective #1" in msg
    assert "Traceback (most recent call last)" in msg and "raise _Boom" in msg
    assert len(trials._dynamic_trials) == 4


def test_all_trials_failed_stops_early_on_a_broken_objective() -> None:
    def objective(p: dict[str, Any]) -> float:
        raise _Boom("always")

    trials = Trials()
    with pytest.raises(AllTrialsFailed) as info:
        _run(objective, trials=trials, max_evals=1000, catch_eval_exceptions=True)
    assert len(trials._dynamic_trials) == 10  # gives up instead of burning the budget
    assert "10 of 10 trials failed" in str(info.value)
    assert "raise _Boom" in str(info.value)


def test_one_success_prevents_the_early_give_up() -> None:
    def objective(p: dict[str, Any]) -> float:
        if len(trials) > 1:
            raise _Boom("later ones fail")
        return 1.0

    trials = Trials()
    best = _run(objective, trials=trials, max_evals=25, catch_eval_exceptions=True).argmin
    assert len(trials._dynamic_trials) == 25 and len(trials) == 1
    assert trials.count_by_state_unsynced(JOB_STATE_ERROR) == 24
    assert best == trials.argmin


# ---- trials_save_file ----------------------------------------------------------------------

def _load(path: Path) -> Trials:
    with path.open("rb") as f:
        trials = pickle.load(f)
    assert isinstance(trials, Trials)
    return trials


@pytest.mark.timeout(30)  # a trial nobody dispatches would hang the loop
def test_trials_save_file_resumes(tmp_path: Path) -> None:
    path = tmp_path / "trials.pkl"
    kw: dict[str, Any] = {"algo": rand.suggest, "show_progressbar": False,
                          "trials_save_file": str(path)}
    first = fmin(_loss, SPACE, max_evals=10, rstate=np.random.default_rng(0), **kw)
    saved = _load(path)
    assert len(saved) == 10 and saved.argmin == first

    calls: list[Any] = []
    fmin(lambda p: calls.append(p) or _loss(p), SPACE, max_evals=20,
         rstate=np.random.default_rng(1), **kw)
    assert len(calls) == 10  # only the missing ten were evaluated
    resumed = _load(path)
    assert len(resumed) == 20
    assert resumed.tids == list(range(20))
    assert resumed.trials[:10] == saved.trials
    assert all(d["state"] == JOB_STATE_DONE for d in resumed.trials)


@pytest.mark.timeout(30)  # a trial nobody dispatches would hang the loop
def test_trials_save_file_resumes_an_interrupted_run(tmp_path: Path) -> None:
    path = tmp_path / "trials.pkl"
    kw: dict[str, Any] = {"algo": rand.suggest, "show_progressbar": False,
                          "trials_save_file": str(path), "rstate": np.random.default_rng(0)}

    def interrupted(p: dict[str, Any]) -> float:
        if len(calls) == 6:
            raise KeyboardInterrupt
        calls.append(p)
        return _loss(p)

    calls: list[Any] = []
    # Ctrl-C ends the run like a timeout: the best of the finished trials is returned.
    best = fmin(interrupted, SPACE, max_evals=10, **kw)
    saved = _load(path)
    assert best == saved.argmin
    assert saved.count_by_state_synced(JOB_STATE_DONE) == 6
    assert saved.count_by_state_synced([0, 1]) == 0  # nothing left queued or running

    fmin(_loss, SPACE, max_evals=20, **kw)
    resumed = _load(path)
    assert resumed.count_by_state_synced(JOB_STATE_DONE) == 20
    # The trial cancelled by Ctrl-C stays in _dynamic_trials (hyperopt hides it from .trials).
    every = [d["tid"] for d in resumed._dynamic_trials]
    assert every == list(range(len(every))) and len(resumed) == 20


def test_trials_save_file_is_ignored_when_trials_are_given(tmp_path: Path) -> None:
    path = tmp_path / "trials.pkl"
    fmin(_loss, SPACE, algo=rand.suggest, max_evals=4, trials_save_file=str(path),
         show_progressbar=False)
    fresh = _run(max_evals=3, trials_save_file=str(path))
    assert len(fresh) == 3
    assert len(_load(path)) == 3  # the given trials are what gets saved


# ---- max_queue_len -------------------------------------------------------------------------

def test_max_queue_len_suggests_batches_before_results() -> None:
    calls: list[tuple[int, int]] = []

    def algo(new_ids: list[int], domain: Any, trials: Trials, seed: int) -> Any:
        calls.append((len(new_ids), trials.count_by_state_synced(JOB_STATE_DONE)))
        return rand.suggest(new_ids, domain, trials, seed)

    trials = _run(algo=algo, max_evals=10, max_queue_len=4)
    assert calls == [(4, 0), (4, 4), (2, 8)]
    assert len(trials) == 10

    calls.clear()
    _run(algo=algo, max_evals=3)
    assert calls == [(1, 0), (1, 1), (1, 2)]


def test_algorithm_returning_nothing_ends_the_run() -> None:
    trials = Trials()
    value = fmin(_loss, SPACE, algo=lambda new_ids, domain, trials, seed: [], max_evals=5,
                 trials=trials, show_progressbar=False, return_argmin=False)
    assert value is None and len(trials) == 0


# ---- return_argmin -------------------------------------------------------------------------

def test_return_argmin_false_gives_the_value_not_the_indices() -> None:
    trials = Trials()
    value = fmin(_loss, SPACE, algo=rand.suggest, max_evals=10, trials=trials,
                 rstate=np.random.default_rng(0), show_progressbar=False, return_argmin=False)
    assert value["kind"] in ("a", "b", "c")
    assert value == space_eval(SPACE, trials.argmin)
    assert _loss(value) == min(trials.losses())


# ---- seeded determinism --------------------------------------------------------------------

ALGOS = {"rand": rand.suggest, "anneal": anneal.suggest, "tpe": tpe.suggest,
         "grid": grid.suggest}
FINITE = {"n": hp.quniform("n", 0, 20, 1), "kind": hp.choice("kind", ["a", "b", "c"]),
          "r": hp.randint("r", 4)}


def _history(algo: Any, seed: int, space: Any) -> list[Any]:
    trials = Trials()
    fmin(lambda p: float(zlib.crc32(repr(sorted(p.items())).encode()) % 1000), space, algo=algo,
         max_evals=25, trials=trials, rstate=np.random.default_rng(seed),
         show_progressbar=False)
    return [(d["misc"]["vals"], d["result"]) for d in trials.trials]


@pytest.mark.parametrize("name", list(ALGOS))
def test_same_seed_gives_identical_trials(name: str) -> None:
    space = FINITE if name == "grid" else {**SPACE, **FINITE}
    first = _history(ALGOS[name], 7, space)
    assert len(first) == 25
    assert _history(ALGOS[name], 7, space) == first
    if name != "grid":
        assert _history(ALGOS[name], 8, space) != first


def test_grid_order_comes_from_grid_seed() -> None:
    first = _history(grid.suggest, 0, FINITE)
    assert _history(grid.suggest, 1, FINITE) == first  # rstate does not reorder the grid
    assert _history(functools.partial(grid.suggest, grid_seed=5), 0, FINITE) != first


def test_hyperopt_fmin_seed_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYPEROPT_FMIN_SEED", "11")
    runs = []
    for _ in range(2):
        trials = Trials()
        fmin(_loss, SPACE, algo=rand.suggest, max_evals=5, trials=trials,
             show_progressbar=False)
        runs.append(trials.vals)
    assert runs[0] == runs[1]


# ---- a loose regret bound ------------------------------------------------------------------

QUADRATIC_SPACE = {"x": hp.uniform("x", -5, 5), "y": hp.uniform("y", -5, 5)}
REGRET_BOUND = 0.3  # random search's median regret with 60 evaluations is about 0.5


def _quadratic(p: dict[str, float]) -> float:
    return (p["x"] - 1.0) ** 2 + (p["y"] + 2.0) ** 2


def _median_regret(algo: Any, objective: Callable[[dict[str, float]], float]) -> float:
    """Median over five seeds of the true regret at the point each run reports as best."""
    regrets = []
    for seed in range(5):
        trials = Trials()
        best = fmin(objective, QUADRATIC_SPACE, algo=algo, max_evals=60, trials=trials,
                    rstate=np.random.default_rng(seed), show_progressbar=False)
        regrets.append(_quadratic(best))
    return float(np.median(regrets))


@pytest.mark.parametrize("name", ["tpe", "anneal"])
def test_regret_bound_on_a_quadratic(name: str) -> None:
    regret = _median_regret(ALGOS[name], _quadratic)
    random_regret = _median_regret(rand.suggest, _quadratic)
    assert regret < REGRET_BOUND
    assert regret < random_regret
    # Control: with an uninformative objective the same check fails, so it can fail.
    noise = np.random.default_rng(123)
    uninformed = _median_regret(ALGOS[name], lambda p: float(noise.uniform(0, 50)))
    assert uninformed > REGRET_BOUND


@pytest.mark.parametrize(("kw", "shown"), [({}, True), ({"verbose": False}, False),
                                           ({"show_progressbar": False}, False)])
def test_verbose_false_hides_the_progress_bar_as_in_hyperopt(
        kw: dict[str, Any], shown: bool, capsys: pytest.CaptureFixture[str]) -> None:
    fmin(lambda p: float(p) ** 2, hp.uniform("x", -1, 1), algo=rand.suggest, max_evals=3,
         rstate=np.random.default_rng(0), **kw)
    assert ("best loss" in capsys.readouterr().err) is shown
