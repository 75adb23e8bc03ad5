"""hyperopt code keeps working with ``from parzen import ...``: fmin's signature and
semantics, the objective's return shapes, ``Trials``' attributes and the algorithm protocol."""

from __future__ import annotations

import functools
import inspect
import time
from typing import Any

import numpy as np
import pytest

import parzen
from parzen import (
    JOB_STATE_CANCEL,
    JOB_STATE_DONE,
    JOB_STATE_ERROR,
    JOB_STATE_NEW,
    JOB_STATE_RUNNING,
    STATUS_FAIL,
    STATUS_OK,
    AllTrialsFailed,
    ConfigError,
    Domain,
    Trials,
    anneal,
    fmin,
    generate_trials_to_calculate,
    grid,
    hp,
    rand,
    space_eval,
    tpe,
)
from parzen.pyll import scope

HYPEROPT_FMIN_PARAMS = [
    "fn", "space", "algo", "max_evals", "timeout", "loss_threshold", "trials", "rstate",
    "allow_trials_fmin", "pass_expr_memo_ctrl", "catch_eval_exceptions", "verbose",
    "return_argmin", "points_to_evaluate", "max_queue_len", "show_progressbar",
    "early_stop_fn", "trials_save_file",
]


def _space() -> dict[str, Any]:
    return {
        "x": hp.uniform("x", -5, 5),
        "act": hp.choice("act", ["relu", "tanh", "sigmoid"]),
        "n": scope.int(hp.quniform("n", 1, 10, 1)),
    }


def _loss(p: dict[str, Any]) -> float:
    return (p["x"] - 1) ** 2 + {"relu": 0.0, "tanh": 1.0, "sigmoid": 2.0}[p["act"]] + p["n"]


def _fmin(fn: Any = _loss, space: Any = None, **kw: Any) -> Any:
    kw.setdefault("algo", rand.suggest)
    kw.setdefault("max_evals", 10)
    kw.setdefault("rstate", np.random.default_rng(0))
    kw.setdefault("show_progressbar", False)
    return fmin(fn, _space() if space is None else space, **kw)


# ---- fmin's signature and return value -----------------------------------------------------

def test_fmin_signature_matches_hyperopt() -> None:
    params = inspect.signature(fmin).parameters
    # parzen's own arguments come after hyperopt's, keyword-only, so no hyperopt call
    # (positional or not) can reach them.
    own = [k for k, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    assert own == ["pruner"]
    assert [k for k in params if k not in own] == HYPEROPT_FMIN_PARAMS
    positional = [p.name for p in params.values()
                  if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    assert positional == HYPEROPT_FMIN_PARAMS  # hyperopt code passes some positionally
    defaults = {k: p.default for k, p in params.items()}
    assert defaults["max_queue_len"] == 1
    assert defaults["catch_eval_exceptions"] is False
    assert defaults["return_argmin"] is True


def test_fmin_positional_call_like_hyperopt() -> None:
    trials = Trials()
    best = fmin(_loss, _space(), rand.suggest, 6, None, None, trials,
                np.random.default_rng(0), show_progressbar=False)
    assert len(trials) == 6
    assert set(best) == {"x", "act", "n"}


def test_argmin_holds_choice_indices_and_space_eval_maps_back() -> None:
    trials = Trials()
    best = _fmin(trials=trials, max_evals=30)
    assert isinstance(best["act"], int) and best["act"] in (0, 1, 2)
    assert isinstance(best["x"], float)
    assert best["n"] == float(int(best["n"]))  # raw quniform value, cast only by space_eval
    assert best == trials.argmin
    value = space_eval(_space(), best)
    assert value["act"] == ["relu", "tanh", "sigmoid"][best["act"]]
    assert type(value["n"]) is int and 1 <= value["n"] <= 10
    assert _loss(value) == min(trials.losses())


def test_return_argmin_false_returns_the_best_point_value() -> None:
    # hyperopt: space_eval(space, trials.argmin) instead of the raw argmin.
    trials = Trials()
    value = _fmin(trials=trials, max_evals=15, return_argmin=False)
    assert value == space_eval(_space(), trials.argmin)
    assert value["act"] in ("relu", "tanh", "sigmoid")
    assert _fmin(max_evals=0, return_argmin=False) is None


def test_objective_may_return_a_float_or_numpy_number() -> None:
    trials = Trials()
    _fmin(lambda p: np.float32(p["x"] ** 2), trials=trials, max_evals=4)
    assert all(type(loss) is float for loss in trials.losses())
    assert trials.statuses() == [STATUS_OK] * 4
    assert trials.results[0] == {"loss": trials.losses()[0], "status": STATUS_OK}


def test_objective_dict_keeps_extra_keys() -> None:
    def objective(p: dict[str, Any]) -> dict[str, Any]:
        return {"loss": p["x"] ** 2, "status": STATUS_OK, "eval_time": time.time(),
                "attachments": {"note": "x"}, "model": {"act": p["act"]},
                "true_loss": np.float64(0.5), "n_iter": np.int64(3)}

    trials = Trials()
    _fmin(objective, trials=trials, max_evals=5)
    for r in trials.results:
        assert set(r) == {"loss", "status", "eval_time", "attachments", "model", "true_loss",
                          "n_iter"}
        assert isinstance(r["eval_time"], float) and r["eval_time"] > 1e9
        assert type(r["true_loss"]) is float and type(r["n_iter"]) is int  # numpy unwrapped
    assert trials.best_trial["result"]["model"]["act"] in ("relu", "tanh", "sigmoid")


def test_status_fail_trials_are_kept_and_never_best() -> None:
    def objective(p: dict[str, Any]) -> dict[str, Any]:
        if p["act"] == "relu":
            return {"status": STATUS_FAIL, "reason": "diverged"}
        return {"loss": _loss(p), "status": STATUS_OK}

    trials = Trials()
    _fmin(objective, trials=trials, max_evals=20)
    failed = [d for d in trials.trials if d["result"]["status"] == STATUS_FAIL]
    assert failed and all(d["state"] == JOB_STATE_DONE for d in failed)
    assert failed[0]["result"]["reason"] == "diverged"
    assert trials.argmin["act"] != 0
    assert trials.losses().count(None) == len(failed)


# ---- Trials' attributes --------------------------------------------------------------------

def test_trials_attributes() -> None:
    trials = Trials()
    _fmin(trials=trials, max_evals=8)
    assert len(trials) == 8 and len(list(trials)) == 8
    assert [d["tid"] for d in trials] == trials.tids == list(range(8))
    assert trials[3] is trials.trials[3]
    assert [d["result"] for d in trials.trials] == trials.results
    assert [d["misc"] for d in trials.trials] == trials.miscs
    assert trials.losses() == [r["loss"] for r in trials.results]
    assert trials.statuses() == ["ok"] * 8
    best_i = int(np.argmin(trials.losses()))
    assert trials.best_trial["tid"] == best_i
    assert trials.best_trial["result"]["loss"] == min(trials.losses())
    assert trials.argmin == {k: v[0] for k, v in trials.trials[best_i]["misc"]["vals"].items()}
    assert trials.average_best_error() == min(trials.losses())
    assert set(trials.vals) == set(trials.idxs) == {"x", "act", "n"}
    assert trials.idxs["x"] == list(range(8))
    assert trials.vals["x"] == [d["misc"]["vals"]["x"][0] for d in trials.trials]
    assert trials.idxs_vals == (trials.idxs, trials.vals)
    assert trials.count_by_state_synced(JOB_STATE_DONE) == 8
    assert trials.count_by_state_synced([JOB_STATE_NEW, JOB_STATE_RUNNING]) == 0
    assert trials.count_by_state_unsynced(JOB_STATE_DONE) == 8
    assert trials.count_by_state_unsynced([JOB_STATE_ERROR]) == 0
    doc = trials.trials[0]
    assert {"state", "tid", "spec", "result", "misc", "exp_key", "owner", "book_time",
            "refresh_time"} <= set(doc)
    assert {"tid", "cmd", "idxs", "vals"} <= set(doc["misc"])
    assert doc["misc"]["tid"] == doc["tid"] == 0
    assert doc["misc"]["idxs"] == {"x": [0], "act": [0], "n": [0]}


def test_job_states_and_statuses_equal_hyperopts() -> None:
    assert (JOB_STATE_NEW, JOB_STATE_RUNNING, JOB_STATE_DONE, JOB_STATE_ERROR,
            JOB_STATE_CANCEL) == (0, 1, 2, 3, 4)
    assert parzen.JOB_STATES == [0, 1, 2, 3, 4]
    assert (STATUS_OK, STATUS_FAIL, parzen.STATUS_NEW, parzen.STATUS_RUNNING) == (
        "ok", "fail", "new", "running")
    assert parzen.STATUS_STRINGS == ("new", "running", "suspended", "ok", "fail")


def test_error_trials_leave_trials_for_dynamic_trials() -> None:
    # hyperopt's rule: trials.trials holds queued, running and done trials; one that raised
    # is in trials._dynamic_trials, with what it raised.
    def objective(p: dict[str, Any]) -> float:
        if p["act"] == "tanh":
            raise ZeroDivisionError(f"bad act {p['act']}")
        return _loss(p)

    trials = Trials()
    _fmin(objective, trials=trials, max_evals=20, catch_eval_exceptions=True)
    assert len(trials._dynamic_trials) == 20
    errors = [d for d in trials._dynamic_trials if d["state"] == JOB_STATE_ERROR]
    assert errors, "the seed must draw 'tanh' at least once"
    assert len(trials) == 20 - len(errors)
    assert all(d["state"] != JOB_STATE_ERROR for d in trials.trials)
    for d in errors:
        assert d["misc"]["vals"]["act"] == [1]
        assert d["error"]["type"] == "ZeroDivisionError"
        assert d["error"]["message"] == "bad act tanh"
        assert "Traceback (most recent call last)" in d["error"]["traceback"]
        assert 'raise ZeroDivisionError(f"bad act' in d["error"]["traceback"]
        assert d["misc"]["error"] == ("ZeroDivisionError", "bad act tanh")
        assert d["result"]["status"] == STATUS_FAIL
    assert trials.count_by_state_unsynced(JOB_STATE_ERROR) == len(errors)
    assert [tid for tid, _ in trials.errors()] == [d["tid"] for d in errors]
    assert trials.argmin["act"] != 1
    assert all("error" not in d for d in trials.trials)


# ---- the algorithm protocol ------------------------------------------------------------------

def test_partial_tpe_suggest_with_settings() -> None:
    def run(algo: Any) -> list[float]:
        trials = Trials()
        _fmin(lambda p: (p["x"] - 1) ** 2, space={"x": hp.uniform("x", -5, 5)}, algo=algo,
              trials=trials, max_evals=12)
        return [v for v in trials.vals["x"]]

    early = run(functools.partial(tpe.suggest, n_startup_jobs=3))
    late = run(functools.partial(tpe.suggest, n_startup_jobs=12))
    assert early[:3] == late[:3]  # the same prior draws before modelling starts
    assert early[3:] != late[3:]  # the setting reached the sampler
    with pytest.raises(TypeError, match="no_such_setting"):
        run(functools.partial(tpe.suggest, no_such_setting=1))


@pytest.mark.parametrize("algo", [tpe.suggest, rand.suggest, anneal.suggest, grid.suggest],
                         ids=["tpe", "rand", "anneal", "grid"])
def test_suggest_called_with_hyperopts_call_shape(algo: Any) -> None:
    space = {"act": hp.choice("act", ["a", "b"]), "n": hp.quniform("n", 0, 4, 1)}
    domain = Domain(lambda p: 0.0, space)
    trials = Trials()
    for round_ in range(2):
        new_ids = trials.new_trial_ids(3)
        docs = algo(new_ids, domain, trials, 123 + round_)
        assert [d["tid"] for d in docs] == new_ids
        for d in docs:
            assert d["state"] == JOB_STATE_NEW
            assert d["misc"]["idxs"] == {"act": [d["tid"]], "n": [d["tid"]]}
            assert d["misc"]["vals"]["act"][0] in (0, 1)
            assert space_eval(space, d["misc"]["vals"])["act"] in ("a", "b")
        assert trials.insert_trial_docs(docs) == new_ids
        trials.refresh()
    assert len(trials) == 6
    assert trials.count_by_state_unsynced(JOB_STATE_NEW) == 6
    # Same seed, same history: same points.
    again = algo(trials.new_trial_ids(2), domain, trials, 7)
    assert [d["misc"]["vals"] for d in again] == [
        d["misc"]["vals"] for d in algo(trials.new_trial_ids(2), domain, trials, 7)]


def test_algo_module_names_its_suggest() -> None:
    with pytest.raises(ConfigError, match=r"algo=tpe\.suggest"):
        _fmin(algo=tpe)


@pytest.mark.parametrize("rstate", [42, np.random.RandomState(42)], ids=["int", "RandomState"])
def test_legacy_rstate_says_how_to_convert(rstate: Any) -> None:
    with pytest.raises(ConfigError, match=r"rstate=np\.random\.default_rng\(42\)"
                       if isinstance(rstate, int) else r"rstate=np\.random\.default_rng"):
        _fmin(rstate=rstate)


# ---- repeated runs ---------------------------------------------------------------------------

def test_repeated_fmin_calls_continue_the_same_trials() -> None:
    trials = Trials()
    _fmin(trials=trials, max_evals=5)
    assert len(trials) == 5
    _fmin(trials=trials, max_evals=12, rstate=np.random.default_rng(1))
    assert len(trials) == 12  # max_evals counts the total, not this call's trials
    assert trials.tids == list(range(12))
    calls: list[Any] = []
    _fmin(lambda p: calls.append(p) or 0.0, trials=trials, max_evals=12)
    assert calls == [] and len(trials) == 12


def test_trials_fmin_method() -> None:
    trials = Trials()
    best = trials.fmin(_loss, _space(), algo=rand.suggest, max_evals=7,
                       rstate=np.random.default_rng(0), show_progressbar=False)
    assert len(trials) == 7
    assert best == trials.argmin
    again = Trials()
    _fmin(trials=again, max_evals=7)
    assert again.vals == trials.vals  # same as fmin(..., trials=trials)


@pytest.mark.timeout(30)  # a trial nobody dispatches would hang the loop
def test_generate_trials_to_calculate_is_evaluated_first() -> None:
    trials = generate_trials_to_calculate([{"x": 1.0, "act": 0, "n": 1.0},
                                           {"x": -2.0, "act": 2, "n": 3.0}])
    seen: list[Any] = []
    best = _fmin(lambda p: seen.append(p) or _loss(p), trials=trials, max_evals=5)
    assert len(trials) == 5
    assert seen[:2] == [{"x": 1.0, "act": "relu", "n": 1}, {"x": -2.0, "act": "sigmoid", "n": 3}]
    assert best == {"x": 1.0, "act": 0, "n": 1.0}  # loss 1.0 is the minimum of the space


def test_all_trials_failed_is_hyperopts_exception_name() -> None:
    trials = Trials()
    with pytest.raises(AllTrialsFailed):
        _fmin(lambda p: {"status": STATUS_FAIL}, trials=trials, max_evals=3)
    assert len(trials) == 3
    with pytest.raises(AllTrialsFailed):
        _ = trials.best_trial


# ---- hyperopt.base's module path and its document rules ------------------------------------

def test_base_module_documents_and_tids_of_any_kind() -> None:
    from parzen.base import (
        TRIAL_KEYS,
        TRIAL_MISC_KEYS,
        InvalidTrial,
        SONify,
        miscs_to_idxs_vals,
        trials_from_docs,
    )
    from parzen.base import Trials as BaseTrials

    def doc(tid: Any) -> dict[str, Any]:
        return {"tid": tid, "spec": None, "result": {"status": "new"}, "state": 0,
                "misc": {"tid": tid, "cmd": None, "idxs": {"z": [tid]}, "vals": {"z": [1]}},
                "owner": None, "book_time": None, "refresh_time": None, "exp_key": None}

    trials = BaseTrials()
    assert len(trials) == 0
    assert trials.insert_trial_docs([doc("a"), doc(5)]) == ["a", 5]
    assert len(trials) == 0  # as in hyperopt: inserted documents show after refresh()
    trials.refresh()
    assert trials.tids == ["a", 5]  # in insertion order
    assert {d["misc"]["idxs"]["z"][0] for d in trials.trials} == {"a", 5}
    trials.trial_attachments(trials.trials[0])["note"] = "hi"
    assert trials.trial_attachments(trials.trials[0])["note"] == "hi"
    for key in TRIAL_KEYS:
        bad = doc(9)
        del bad[key]
        with pytest.raises(InvalidTrial, match=key):
            trials.insert_trial_doc(bad)
    for key in TRIAL_MISC_KEYS:
        bad = doc(9)
        del bad["misc"][key]
        with pytest.raises(InvalidTrial, match=key):
            trials.insert_trial_doc(bad)
    idxs, vals = miscs_to_idxs_vals(trials_from_docs([doc(1), doc(2)]).miscs)
    assert idxs == {"z": [1, 2]} and vals == {"z": [1, 1]}
    assert SONify({"a": np.arange(2), "b": np.float64(1.5)}) == {"a": [0, 1], "b": 1.5}
