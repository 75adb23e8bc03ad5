"""Every bad input we know of, with the message fragment the user sees.

One row per input: what was passed, the exception class and a fragment that names the value or
the fix. Space-construction errors live in ``tests/space/test_validation.py``.
"""

from __future__ import annotations

import functools
import math
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
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
    ("max_evals-negative", {"max_evals": -1}, ConfigError,
     "max_evals must be an int >= 0, got max_evals=-1"),
    ("no-stopping-rule", {"max_evals": None}, ConfigError, "needs a stopping condition"),
    # hyperopt's messages for timeout and loss_threshold, which its tests compare exactly.
    ("timeout-zero", {"timeout": 0}, ConfigError,
     "The timeout argument should be None or a positive value. Given value: 0"),
    ("timeout-negative", {"timeout": -1.0}, ConfigError, "Given value: -1.0"),
    ("timeout-inf", {"timeout": math.inf}, ConfigError, "timeout must be a finite number"),
    ("timeout-str", {"timeout": "5"}, ConfigError,
     "The timeout argument should be None or a positive value. Given value: 5"),
    ("loss_threshold-nan", {"loss_threshold": math.nan}, ConfigError,
     "loss_threshold must be a finite number"),
    ("loss_threshold-str", {"loss_threshold": "0.1"}, ConfigError,
     "The loss_threshold argument should be None or a numeric value. Given value: 0.1"),
    ("max_queue_len-zero", {"max_queue_len": 0}, ConfigError,
     "max_queue_len must be an int >= 1, got max_queue_len=0"),
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
     ConfigError, "avg_best_idx must be a finite number > 0, got avg_best_idx=0"),
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
    ("dict-without-loss", {"fn": _returning({"status": STATUS_OK})}, InvalidLoss,
     "result for trial 0 has status ok but no 'loss' key"),
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
    # MongoTrials / ParallelTrials / `parzen worker` rows live in the distributed section at
    # the end of this file.
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
     "iteration_stop_count must be an int >= 1, got iteration_stop_count=0"),
    ("no_progress_loss-float", lambda: no_progress_loss(2.5), ConfigError,
     "iteration_stop_count must be an int >= 1, got iteration_stop_count=2.5"),
    ("anneal-shrink", lambda: anneal.AnnealSampler(shrink_coef=-1), ConfigError,
     "shrink_coef must be a finite number >= 0, got shrink_coef=-1"),
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


# ==========================================================================================
# Distributed inputs: MongoTrials, ParallelTrials and `parzen worker`
# ==========================================================================================
# Every row is refused at MongoTrials(...) or fmin(...), or when `parzen worker` starts,
# before anything is written: each MongoTrials row runs on an empty database of the wire
# test server and checks it is still empty afterwards. URLs carry the password "hunter2",
# which no message may show.

from parzen import ParallelTrials  # noqa: E402
from parzen.exceptions import (  # noqa: E402
    AllTrialsFailed,
    DuplicateLabel,
    ObjectiveNotPicklable,
    ObjectiveUnloadable,
    PayloadTooLarge,
    StoreUnavailable,
)
from parzen.mongoexp import MongoTrials  # noqa: E402
from parzen.trial import TrialState  # noqa: E402
from tests.support import mongo as mf  # noqa: E402

PASSWORD = "hunter2"
KEY = "bad-input-signing-key-" + "0" * 16
LOCK = threading.Lock()


def _dead_port() -> int:
    """A local port nobody listens on (bound once, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


DEAD = _dead_port()


def _captures_lock() -> Callable[[Any], float]:
    lock = threading.Lock()
    return lambda p: float(p["x"]) if lock else 0.0


def _captures(nbytes: int) -> Callable[[Any], float]:
    data = np.ones(nbytes // 8)
    return lambda p: float(p["x"] + data[0])


# (id, what to pass, exception, message fragment). "trials": MongoTrials keywords (over
# working defaults: the wire server, the test Redis, a valid key); "url": the store URL;
# "fmin": fmin keywords; "env": environment variables to set (None: unset).
def _no_packaging(*args: Any, **kwargs: Any) -> None:
    """kombu's Redis transport on a machine without its extra's packages."""
    raise ModuleNotFoundError("No module named 'packaging'")


MONGO_CASES: list[tuple[str, dict[str, Any], type[BaseException], str]] = [
    # ---- MongoTrials settings ------------------------------------------------------------
    ("mongo-parallelism-zero", {"trials": {"parallelism": 0}}, ConfigError,
     "parallelism must be an int >= 1, got parallelism=0"),
    ("mongo-parallelism-float", {"trials": {"parallelism": 2.5}}, ConfigError,
     "parallelism must be an int >= 1, got parallelism=2.5"),
    ("mongo-parallelism-str", {"trials": {"parallelism": "4"}}, ConfigError,
     "parallelism must be an int >= 1, got parallelism='4'"),
    ("mongo-parallelism-bool", {"trials": {"parallelism": True}}, ConfigError,
     "parallelism must be an int >= 1, got parallelism=True"),
    ("lease-under-three-heartbeats", {"trials": {"lease": 1.0, "heartbeat": 0.5}},
     ConfigError, "lease=1s is shorter than three heartbeats (heartbeat=0.5s); a single slow "
     "heartbeat would lose the lease. Use lease >= 1.5 or a shorter heartbeat"),
    ("lease-negative", {"trials": {"lease": -1}}, ConfigError,
     "lease must be a number of seconds > 0, got lease=-1"),
    ("heartbeat-str", {"trials": {"heartbeat": "10"}}, ConfigError,
     "heartbeat must be a number of seconds > 0, got heartbeat='10'"),
    ("trial_timeout-zero", {"trials": {"trial_timeout": 0}}, ConfigError,
     "trial_timeout must be a number of seconds > 0 or None, got trial_timeout=0"),
    ("max_attempts-zero", {"trials": {"max_attempts": 0}}, ConfigError,
     "max_attempts must be an int >= 1, got max_attempts=0"),
    ("dispatch_timeout-negative", {"trials": {"dispatch_timeout": -1}}, ConfigError,
     "dispatch_timeout must be a number of seconds > 0 or None, got dispatch_timeout=-1"),
    ("max_payload_bytes-zero", {"trials": {"max_payload_bytes": 0}}, ConfigError,
     "max_payload_bytes must be an int >= 1, got max_payload_bytes=0"),
    # ---- store URL -----------------------------------------------------------------------
    ("mongo-url-scheme", {"url": f"http://user:{PASSWORD}@db:27017/x"}, ConfigError,
     "store URL 'http://user:***@db:27017/x': expected mongodb://, mongodb+srv:// or "
     "hyperopt's mongo://host:port/db/jobs"),
    ("mongo-url-database", {"url": f"mongodb://user:{PASSWORD}@127.0.0.1:{DEAD}/a.b"},
     ConfigError, "'a.b' is not a valid MongoDB database name"),
    ("mongo-url-no-host", {"url": "mongodb:///db"}, ConfigError,
     "store URL 'mongodb:///db' names no host"),
    ("mongo-unreachable", {"url": f"mongodb://user:{PASSWORD}@127.0.0.1:{DEAD}/db",
                           "trials": {"connect_timeout": 0.5}}, StoreUnavailable,
     f"MongoDB unreachable at mongodb://user:***@127.0.0.1:{DEAD}/db (server selection "
     "timeout 0.5 s)"),
    # ---- broker URL ----------------------------------------------------------------------
    ("broker-scheme", {"trials": {"broker": f"http://user:{PASSWORD}@q:6379/0"}}, ConfigError,
     "broker 'http://user:***@q:6379/0' is not a redis:// (or rediss://, amqp://) URL"),
    ("broker-unreachable", {"trials": {"broker": f"redis://:{PASSWORD}@127.0.0.1:{DEAD}/0"}},
     ConfigError, f"cannot reach the broker at redis://:***@127.0.0.1:{DEAD}/0"),
    ("broker-transport-missing",
     {"patch": {"kombu.connection.Connection.ensure_connection": _no_packaging}}, ConfigError,
     "ModuleNotFoundError: No module named 'packaging'. Install it: pip install "
     "'celery[redis]'"),
    ("broker-missing", {"trials": {"broker": None}, "env": {"PARZEN_BROKER_URL": None}},
     ConfigError, "MongoTrials needs a broker to reach the workers: pass "
     "broker='redis://host:6379/0' or set PARZEN_BROKER_URL"),
    # ---- signing key ---------------------------------------------------------------------
    ("secret-missing", {"trials": {"secret": None},
                        "env": {"PARZEN_SECRET": None, "PARZEN_SECRET_FILE": None}},
     ConfigError, "no signing key: distributed runs sign the pickled objective"),
    ("secret-both", {"trials": {"secret": None},
                     "env": {"PARZEN_SECRET": KEY, "PARZEN_SECRET_FILE": "/etc/parzen/key"}},
     ConfigError, "both PARZEN_SECRET and PARZEN_SECRET_FILE are set; keep one"),
    ("secret-short", {"trials": {"secret": "abc"}}, ConfigError,
     "the signing key is 3 bytes; use at least 16"),
    ("secret-file-unreadable", {"trials": {"secret": None},
                                "env": {"PARZEN_SECRET": None,
                                        "PARZEN_SECRET_FILE": "/nonexistent/parzen.key"}},
     ConfigError, "PARZEN_SECRET_FILE='/nonexistent/parzen.key' cannot be read"),
    # ---- the objective -------------------------------------------------------------------
    ("objective-path-malformed", {"trials": {"objective": "mymodule.fn"}}, ConfigError,
     "objective import path 'mymodule.fn' must look like 'package.module:function'"),
    ("objective-path-missing", {"trials": {"objective": "no_such_module_xyz:fn"}},
     ObjectiveUnloadable, "module 'no_such_module_xyz' is not installed on "),
    ("objective-path-other-function", {"trials": {"objective": "math:sqrt"}}, ConfigError,
     "objective='math:sqrt' imports <built-in function sqrt>, but fmin was given"),
    ("unpicklable-closure", {"fmin": {"fn": _captures_lock()}}, ObjectiveNotPicklable,
     "cannot pickle '_thread.lock' object (the objective -> closure variable 'lock' is a "
     "_thread.lock, which cannot be pickled)"),
    ("unpicklable-global", {"fmin": {"fn": lambda p: float(p["x"]) if LOCK else 0.0}},
     ObjectiveNotPicklable, "(the objective -> global 'LOCK' is a _thread.lock"),
    ("unpicklable-space", {"fmin": {"space": {"x": hp.uniform("x", -1, 1),
                                              "conn": threading.Lock()}}},
     ObjectiveNotPicklable, "(the space -> ['conn'] is a _thread.lock"),
    ("payload-too-large", {"trials": {"max_payload_bytes": 100_000},
                           "fmin": {"fn": _captures(400_000)}}, PayloadTooLarge,
     "the pickled objective is 0.4 MB, over the 0.1 MB limit (max_payload_bytes=100000)"),
    # ---- fmin arguments, checked before the coordinator writes anything ------------------
    ("mongo-points-outside-space", {"fmin": {"points_to_evaluate": [{"x": 5.0, "kind": 0}]}},
     InvalidTrial, "points_to_evaluate[0]: value 5.0 for uniform('x') is outside the space"),
    ("mongo-max_evals-negative", {"fmin": {"max_evals": -1}}, ConfigError,
     "max_evals must be an int >= 0, got max_evals=-1"),
    ("mongo-timeout-negative", {"fmin": {"timeout": -1.0}}, ConfigError,
     "Given value: -1.0"),
    ("mongo-loss_threshold-str", {"fmin": {"loss_threshold": "0.1"}}, ConfigError,
     "should be None or a numeric value. Given value: 0.1"),
    ("mongo-max_queue_len-zero", {"fmin": {"max_queue_len": 0}}, ConfigError,
     "max_queue_len must be an int >= 1, got max_queue_len=0"),
    ("mongo-rstate-int", {"fmin": {"rstate": 42}}, ConfigError,
     "rstate=np.random.default_rng(42)"),
    ("mongo-rstate-RandomState", {"fmin": {"rstate": np.random.RandomState(0)}}, ConfigError,
     "legacy numpy RandomState"),
    ("mongo-algo-module", {"fmin": {"algo": tpe}}, ConfigError, "algo=tpe.suggest"),
    ("mongo-space-duplicate-label", {"fmin": {"space": {"a": hp.uniform("x", 0, 1),
                                                        "b": hp.normal("x", 0, 1)}}},
     DuplicateLabel, "'x'"),
]


@pytest.fixture
def empty_db(wire_server: Any) -> Iterator[str]:
    """A URL of a fresh database on the wire test server; checked empty after the test."""
    base, _, query = wire_server.url.partition("/?")
    name = mf.unique_db_name()
    yield f"{base}/{name}?{query}"
    client = mf.connect(wire_server.url)
    try:
        db = client[name]
        for coll in ("experiments", "trials", "payloads.files", "payloads.chunks"):
            assert db[coll].count_documents({}) == 0, f"something was written to {coll}"
    finally:
        client.close()


@pytest.mark.integration
@pytest.mark.timeout(60)
@pytest.mark.parametrize(("spec", "exc", "fragment"),
                         [pytest.param(s, e, f, id=i) for i, s, e, f in MONGO_CASES])
def test_mongo_trials_reject_bad_input_before_writing(
        spec: dict[str, Any], exc: type[BaseException], fragment: str, empty_db: str,
        redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PARZEN_SECRET_FILE", raising=False)
    for name, value in spec.get("env", {}).items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    for target, value in spec.get("patch", {}).items():
        monkeypatch.setattr(target, value)
    kw: dict[str, Any] = {"broker": redis_url, "secret": KEY, "parallelism": 2, "lease": 3.0,
                          "heartbeat": 0.5, "connect_timeout": 2.0, "queue": "bad-input"}
    kw.update(spec.get("trials", {}))
    fmin_kw: dict[str, Any] = {"fn": lambda p: float(p["x"]) ** 2, "space": _space(),
                               "algo": rand.suggest, "max_evals": 2, "show_progressbar": False,
                               "rstate": np.random.default_rng(0),
                               "timeout": 5}  # if a row is wrongly accepted: no hang
    fmin_kw.update(spec.get("fmin", {}))
    started = time.monotonic()
    with pytest.raises(exc) as info:
        trials = MongoTrials(spec.get("url", empty_db), exp_key="bad", **kw)
        try:
            fmin(trials=trials, **fmin_kw)
        finally:
            trials.close()
    assert fragment in str(info.value)
    assert PASSWORD not in str(info.value), "the message shows a password"
    assert time.monotonic() - started < 15, "a connection timeout, not a hang"


# (id, ParallelTrials keywords, exception, fragment)
PARALLEL_CASES: list[tuple[str, dict[str, Any], type[BaseException], str]] = [
    ("parallel-parallelism-zero", {"parallelism": 0}, ConfigError,
     "parallelism must be an int >= 1, got parallelism=0"),
    ("parallel-parallelism-bool", {"parallelism": True}, ConfigError,
     "parallelism must be an int >= 1, got parallelism=True"),
    ("parallel-trial_timeout-negative", {"trial_timeout": -1}, ConfigError,
     "trial_timeout must be a number of seconds > 0 or None, got trial_timeout=-1"),
    ("parallel-max_attempts-float", {"max_attempts": 1.5}, ConfigError,
     "max_attempts must be an int >= 1, got max_attempts=1.5"),
]


@pytest.mark.parametrize(("kw", "exc", "fragment"),
                         [pytest.param(k, e, f, id=i) for i, k, e, f in PARALLEL_CASES])
def test_parallel_trials_reject_bad_settings(kw: dict[str, Any], exc: type[BaseException],
                                             fragment: str) -> None:
    with pytest.raises(exc) as info:
        ParallelTrials(**kw)
    assert fragment in str(info.value)


# (id, objective, fragment): what an objective evaluated in a worker process returns.
# The trial becomes ERROR with this message; all trials failing, fmin raises AllTrialsFailed.
RESULT_CASES: list[tuple[str, Callable[[Any], Any], str]] = [
    ("worker-result-str", _returning("abc"),
     "InvalidResult: the objective returned str 'abc' for trial 0"),
    ("worker-result-none", _returning(None),
     "InvalidResult: the objective returned NoneType None for trial 0"),
    ("worker-result-list", _returning([0.1]),
     "InvalidResult: the objective returned list [0.1] for trial 0"),
    ("worker-dict-without-loss", _returning({"status": STATUS_OK}),
     "InvalidLoss: the objective's result for trial 0 has status ok but no 'loss' key"),
    ("worker-dict-unstorable",
     lambda p: {"status": STATUS_OK, "loss": 1.0, "handle": threading.Lock()},
     "InvalidResult: result[\"handle\"]: cannot store a _thread.lock"),
]


@pytest.mark.integration
@pytest.mark.timeout(60)
@pytest.mark.parametrize(("fn", "fragment"),
                         [pytest.param(f, m, id=i) for i, f, m in RESULT_CASES])
def test_bad_results_from_worker_processes_fail_the_trial(fn: Callable[[Any], Any],
                                                          fragment: str) -> None:
    trials = ParallelTrials(parallelism=1)
    with pytest.raises(AllTrialsFailed) as info:
        _call(fn=fn, trials=trials, max_evals=1)
    assert fragment in str(info.value)
    assert trials.state_counts()[TrialState.ERROR] == 1


# (id, `parzen worker` arguments, environment (None: unset), fragment of its error). Each
# worker must exit with status 2 at start, before it connects to anything.
WORKER_CASES: list[tuple[str, list[str], dict[str, str | None], str]] = [
    ("worker-no-mongo", ["--broker", "redis://127.0.0.1:1/0"], {"PARZEN_MONGO_URL": None},
     "--mongo (or $PARZEN_MONGO_URL) is required"),
    ("worker-no-broker", ["--mongo", "mongodb://127.0.0.1:1/db"], {"PARZEN_BROKER_URL": None},
     "--broker (or $PARZEN_BROKER_URL) is required"),
    ("worker-mongo-scheme", ["--mongo", f"http://user:{PASSWORD}@db/x", "--broker",
                             "redis://127.0.0.1:1/0"], {},
     "store URL 'http://user:***@db/x': expected mongodb://"),
    ("worker-broker-scheme", ["--mongo", "mongodb://127.0.0.1:1/db", "--broker",
                              f"http://:{PASSWORD}@q:6379"], {},
     "--broker http://:***@q:6379 is not a redis:// (or amqp://) URL"),
    ("worker-concurrency-zero", ["--concurrency", "0"], {},
     "--concurrency must be >= 1, got 0"),
    ("worker-concurrency-env", [], {"PARZEN_CONCURRENCY": "many"},
     "PARZEN_CONCURRENCY='many' must be an integer"),
    ("worker-no-secret", [], {"PARZEN_SECRET": None}, "no signing key"),
    ("worker-short-secret", [], {"PARZEN_SECRET": "abc"},
     "the signing key is 3 bytes; use at least 16"),
    # The message names what the person used: the option, or the variable.
    ("worker-secret-file-unreadable", ["--secret-file", "/nonexistent/parzen.key"],
     {"PARZEN_SECRET": None}, "--secret-file '/nonexistent/parzen.key' cannot be read"),
    ("worker-secret-file-env-unreadable", [],
     {"PARZEN_SECRET": None, "PARZEN_SECRET_FILE": "/nonexistent/parzen.key"},
     "PARZEN_SECRET_FILE='/nonexistent/parzen.key' cannot be read"),
    ("worker-two-secrets", ["--secret-file", "/nonexistent/parzen.key"], {},
     "both PARZEN_SECRET and a secret file"),
    ("worker-visibility-timeout", [], {"PARZEN_VISIBILITY_TIMEOUT": "0"},
     "PARZEN_VISIBILITY_TIMEOUT='0' must be >= 1"),
]


@pytest.mark.integration
@pytest.mark.timeout(60)
@pytest.mark.parametrize(("args", "env", "fragment"),
                         [pytest.param(a, e, f, id=i) for i, a, e, f in WORKER_CASES])
def test_worker_refuses_bad_configuration_at_start(args: list[str], env: dict[str, str | None],
                                                   fragment: str, tmp_path: Path) -> None:
    full = dict(os.environ)
    full.pop("PARZEN_SECRET_FILE", None)
    full.update(PARZEN_SECRET=KEY, PARZEN_MONGO_URL=f"mongodb://127.0.0.1:{DEAD}/db",
                PARZEN_BROKER_URL=f"redis://127.0.0.1:{DEAD}/0")
    for name, value in env.items():
        if value is None:
            full.pop(name, None)
        else:
            full[name] = value
    proc = subprocess.run([sys.executable, "-m", "parzen", "worker", "--queue", "bad-input",
                           *args], env=full, capture_output=True, text=True, timeout=30,
                          cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert fragment in proc.stderr
    assert PASSWORD not in proc.stdout + proc.stderr


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_a_worker_without_mongodb_says_not_ready_and_never_ready(
        redis_url: str, tmp_path: Path) -> None:
    full = dict(os.environ)
    full.pop("PARZEN_SECRET_FILE", None)
    full.update(PARZEN_SECRET=KEY)
    proc = subprocess.Popen(
        [sys.executable, "-m", "parzen", "worker", "--queue", "bad-input-not-ready",
         "--mongo", f"mongodb://alice:{PASSWORD}@127.0.0.1:{DEAD}/db", "--broker", redis_url],
        env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # Celery's own "ready." comes after our line
            lines.append(line)
            if "@" in line and line.rstrip().endswith(" ready."):  # parzen-NAME@host ready.
                break
    finally:
        proc.terminate()
        proc.wait(20)
        if proc.stdout is not None:
            proc.stdout.close()
    text = "".join(lines)
    assert "parzen worker NOT ready, it cannot evaluate trials: MongoDB unreachable at " \
           f"mongodb://alice:***@127.0.0.1:{DEAD}/db" in text
    assert "Is mongod up there, and the URL right?" in text
    assert "retries MongoDB when trials arrive" in text
    assert "parzen worker ready" not in text
    assert PASSWORD not in text
