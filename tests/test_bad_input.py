"""Every bad input we know of, with the message fragment the user sees.

One row per input: what was passed, the exception class and a fragment that names the value or
the fix. Space-construction errors live in ``tests/space/test_validation.py``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from parzen import (
    STATUS_OK,
    ConfigError,
    InvalidLoss,
    InvalidResult,
    InvalidResultStatus,
    InvalidTrial,
    ParzenError,
    Trials,
    UnsupportedExpression,
    anneal,
    fmin,
    grid,
    hp,
    no_progress_loss,
    rand,
    tpe,
)


def _space() -> dict[str, Any]:
    return {"x": hp.uniform("x", -1, 1), "kind": hp.choice("kind", ["a", "b"])}


def _returning(value: Any) -> Callable[[Any], Any]:
    return lambda _params: value


def _call(**overrides: Any) -> Any:
    kwargs: dict[str, Any] = {
        "fn": lambda p: p["x"] ** 2,
        "space": _space(),
        "algo": rand.suggest,
        "max_evals": 3,
        "rstate": np.random.default_rng(0),
        "show_progressbar": False,
    }
    kwargs.update(overrides)
    return fmin(**kwargs)


# (id, fmin keyword overrides, exception, message fragment)
FMIN_CASES: list[tuple[str, dict[str, Any], type[BaseException], str]] = [
    # ---- stopping and queueing settings ------------------------------------------------
    ("max_evals-str", {"max_evals": "10"}, ConfigError, "max_evals must be an int >= 0"),
    ("max_evals-float", {"max_evals": 2.5}, ConfigError, "max_evals must be an int"),
    ("max_evals-bool", {"max_evals": True}, ConfigError, "max_evals must be an int"),
    ("max_evals-negative", {"max_evals": -1}, ConfigError, "max_evals must be >= 0"),
    ("no-stopping-rule", {"max_evals": None}, ConfigError, "needs a stopping condition"),
    ("timeout-zero", {"timeout": 0}, ConfigError, "timeout must be a finite number > 0"),
    ("timeout-negative", {"timeout": -1.0}, ConfigError, "timeout=-1.0"),
    ("timeout-inf", {"timeout": math.inf}, ConfigError, "timeout must be a finite number"),
    ("timeout-str", {"timeout": "5"}, ConfigError, "timeout must be a number or None"),
    ("loss_threshold-nan", {"loss_threshold": math.nan}, ConfigError,
     "loss_threshold must be a finite number"),
    ("loss_threshold-str", {"loss_threshold": "0.1"}, ConfigError,
     "loss_threshold must be a number or None"),
    ("max_queue_len-zero", {"max_queue_len": 0}, ConfigError, "max_queue_len must be >= 1"),
    ("max_queue_len-float", {"max_queue_len": 1.5}, ConfigError,
     "max_queue_len must be an int >= 1"),
    ("max_queue_len-none", {"max_queue_len": None}, ConfigError,
     "max_queue_len must be an int >= 1"),
    # ---- random state ------------------------------------------------------------------
    ("rstate-int", {"rstate": 42}, ConfigError, "rstate=np.random.default_rng(42)"),
    ("rstate-numpy-int", {"rstate": np.int64(7)}, ConfigError, "np.random.default_rng(7)"),
    ("rstate-RandomState", {"rstate": np.random.RandomState(0)}, ConfigError,
     "legacy numpy RandomState; pass a Generator instead: rstate=np.random.default_rng"),
    ("rstate-str", {"rstate": "seed"}, ConfigError, "rstate must be a numpy Generator"),
    # ---- algorithm -----------------------------------------------------------------------
    ("algo-tpe-module", {"algo": tpe}, ConfigError, "algo=tpe.suggest"),
    ("algo-anneal-module", {"algo": anneal}, ConfigError, "algo=anneal.suggest"),
    ("algo-grid-module", {"algo": grid}, ConfigError, "algo=grid.suggest"),
    ("algo-str", {"algo": "tpe"}, ConfigError, "algo must be callable like tpe.suggest"),
    ("tpe-unknown-setting", {"algo": functools.partial(tpe.suggest, n_startup=3)}, TypeError,
     "n_startup"),
    ("anneal-bad-setting", {"algo": functools.partial(anneal.suggest, avg_best_idx=0)},
     ConfigError, "avg_best_idx must be > 0"),
    ("grid-bad-seed", {"algo": functools.partial(grid.suggest, grid_seed="a")}, ConfigError,
     "grid: seed must be an int"),
    # ---- points_to_evaluate ------------------------------------------------------------
    ("points-dict", {"points_to_evaluate": {"x": 0.5, "kind": 0}}, ConfigError,
     "points_to_evaluate must be a list of dicts"),
    ("points-str", {"points_to_evaluate": "x"}, ConfigError,
     "points_to_evaluate must be a list of dicts"),
    ("points-of-numbers", {"points_to_evaluate": [0.5]}, ConfigError,
     "points_to_evaluate must be a list of dicts"),
    ("points-out-of-range", {"points_to_evaluate": [{"x": 5.0, "kind": 0}]}, InvalidTrial,
     "points_to_evaluate[0]: value 5.0 for uniform('x') is outside the space"),
    ("points-second-bad", {"points_to_evaluate": [{"x": 0.0, "kind": 0},
                                                  {"x": 0.0, "kind": 2}]},
     InvalidTrial, "points_to_evaluate[1]: value 2 for choice('kind')"),
    ("points-choice-value", {"points_to_evaluate": [{"x": 0.0, "kind": "b"}]}, InvalidTrial,
     "a choice takes the option *index* 0..1"),
    ("points-unknown-label", {"points_to_evaluate": [{"x": 0.0, "kind": 0, "y": 1}]},
     InvalidTrial, "labels not in the space: ['y']"),
    ("points-missing-label", {"points_to_evaluate": [{"kind": 0}]}, InvalidTrial,
     "missing the active label 'x'"),
    ("points-nan", {"points_to_evaluate": [{"x": math.nan, "kind": 0}]}, InvalidTrial,
     "expected a finite number"),
    # ---- the objective and what it returns ---------------------------------------------
    ("fn-not-callable", {"fn": 42}, TypeError, "the objective must be callable, got 42"),
    ("result-str", {"fn": _returning("abc")}, InvalidResult,
     "the objective returned str 'abc' for trial 0"),
    ("result-none", {"fn": _returning(None)}, InvalidResult,
     "the objective returned NoneType None for trial 0"),
    ("result-list", {"fn": _returning([0.1])}, InvalidResult, "returned list [0.1] for trial 0"),
    ("result-bool", {"fn": _returning(True)}, InvalidResult,
     "the objective returned True for trial 0"),
    ("result-nan", {"fn": _returning(math.nan)}, InvalidLoss, "non-finite loss nan for trial 0"),
    ("result-inf", {"fn": _returning(np.float64(np.inf))}, InvalidLoss,
     "non-finite loss inf for trial 0"),
    ("dict-without-loss", {"fn": _returning({"status": STATUS_OK})}, InvalidLoss,
     "result for trial 0 has status ok but no 'loss' key"),
    ("dict-loss-nan", {"fn": _returning({"status": STATUS_OK, "loss": math.nan})},
     InvalidLoss, "trial 0 has status ok and loss=nan"),
    ("dict-loss-str", {"fn": _returning({"status": STATUS_OK, "loss": "0.1"})}, InvalidLoss,
     "loss='0.1'"),
    ("dict-without-status", {"fn": _returning({"loss": 0.1})}, InvalidResultStatus,
     "result for trial 0 has status None"),
    ("dict-bad-status", {"fn": _returning({"loss": 0.1, "status": "done"})},
     InvalidResultStatus, "has status 'done'; use 'status': STATUS_OK or STATUS_FAIL"),
    # ---- other arguments ---------------------------------------------------------------
    ("early_stop_fn-not-callable", {"early_stop_fn": 5}, ConfigError,
     "early_stop_fn must be callable, got 5"),
    ("trials-list", {"trials": []}, ConfigError, "trials must be a parzen Trials"),
    ("trials-str", {"trials": "mongo://localhost/db"}, ConfigError,
     "trials must be a parzen Trials"),
    ("pass_expr_memo_ctrl", {"pass_expr_memo_ctrl": True}, UnsupportedExpression,
     "pass_expr_memo_ctrl is not supported"),
    # ---- distributed inputs --------------------------------------------------------------
    # Rows for MongoTrials / Redis URIs, the payload signing key, lease vs heartbeat
    # intervals and unpicklable objectives are appended here by the distributed work.
]


@pytest.mark.parametrize(("overrides", "exc", "fragment"),
                         [pytest.param(o, e, f, id=i) for i, o, e, f in FMIN_CASES])
def test_fmin_rejects_bad_input(overrides: dict[str, Any], exc: type[BaseException],
                                fragment: str) -> None:
    with pytest.raises(exc) as info:
        _call(**overrides)
    assert fragment in str(info.value)


def test_case_ids_are_unique() -> None:
    ids = [row[0] for row in FMIN_CASES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(("id_", "exc"), [(row[0], row[2]) for row in FMIN_CASES])
def test_user_errors_are_parzen_errors_and_builtin_errors(id_: str,
                                                          exc: type[BaseException]) -> None:
    # hyperopt code catches ValueError/TypeError; parzen code catches ParzenError.
    assert issubclass(exc, (ValueError, TypeError)), id_
    if id_ not in ("fn-not-callable", "tpe-unknown-setting"):
        assert issubclass(exc, ParzenError), id_


def test_bad_input_leaves_no_trials_behind() -> None:
    trials = Trials()
    with pytest.raises(ConfigError):
        _call(trials=trials, rstate=3)
    with pytest.raises(InvalidTrial):
        _call(trials=trials, points_to_evaluate=[{"x": 9.0, "kind": 0}])
    assert len(trials) == 0


# (id, factory, exception, fragment): helpers that validate their own arguments.
HELPER_CASES: list[tuple[str, Callable[[], Any], type[BaseException], str]] = [
    ("no_progress_loss-zero", lambda: no_progress_loss(0), ConfigError,
     "iteration_stop_count must be an int >= 1, got 0"),
    ("no_progress_loss-float", lambda: no_progress_loss(2.5), ConfigError,
     "iteration_stop_count must be an int >= 1, got 2.5"),
    ("anneal-shrink", lambda: anneal.AnnealSampler(shrink_coef=-1), ConfigError,
     "shrink_coef must be >= 0"),
    ("anneal-startup", lambda: anneal.AnnealSampler(n_startup_jobs=-2), ConfigError,
     "n_startup_jobs must be an int >= 0"),
    ("grid-seed", lambda: grid.GridSampler(seed=1.5), ConfigError, "grid: seed must be an int"),
]


@pytest.mark.parametrize(("factory", "exc", "fragment"),
                         [pytest.param(f, e, m, id=i) for i, f, e, m in HELPER_CASES])
def test_helpers_reject_bad_settings(factory: Callable[[], Any], exc: type[BaseException],
                                     fragment: str) -> None:
    with pytest.raises(exc) as info:
        factory()
    assert fragment in str(info.value)
