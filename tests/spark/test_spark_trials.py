"""SparkTrials on a real local Spark (``local[4]``): the loop's guarantees, failures,
cancellation, a lost Python worker, resume, and the article's second snippet."""

from __future__ import annotations

import functools
import logging
import pickle
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

from parzen import STATUS_OK, SparkTrials, fmin, hp, space_eval, tpe
from parzen.pyll import scope
from parzen.trial import TrialState
from tests.spark import objectives
from tests.spark.conftest import SLOTS
from tests.support.processes import alive

pytestmark = [pytest.mark.spark, pytest.mark.timeout(300)]

SPACE = {"x": hp.uniform("x", -1, 1)}


def test_the_articles_second_snippet_runs_with_the_import_changed(
        spark: Any, caplog: pytest.LogCaptureFixture) -> None:
    """The article's ``SparkTrials(parallelism=24)`` snippet, as tests/compat/test_article.py
    runs its first one: fewer evaluations, a bundled data set."""
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.20, random_state=2021)

    def objective(params, X, y):
        random_forest = RandomForestClassifier(**params, n_jobs=-1)
        random_forest.fit(X_train, y_train)
        y_pred = random_forest.predict(X_test)
        accuracy = accuracy_score(y_test, y_pred)
        return {"loss": -1 * accuracy, "status": STATUS_OK, "eval_time": time.time()}

    param_space = {
        "criterion": hp.choice("criterion", ['gini', 'entropy']),
        "n_estimators": scope.int(hp.quniform("n_estimators", 10, 100, 10)),
        "max_depth": scope.int(hp.quniform("max_depth", 2, 8, 1)),
        "max_features": hp.choice("max_features", ['sqrt', 10, 15])
    }
    max_evals = 4  # the article uses 150; four task slots run them at once
    started = time.time()
    with caplog.at_level(logging.WARNING, logger="parzen"):
        # ---- the article's code --------------------------------------------------------
        # Using the SparkTrials object you can define the parallelism
        spark_trials = SparkTrials(parallelism = 24)

        # Now pass the spark_trials object to fmin()
        results = fmin(
            functools.partial(objective, X=X, y=y),
            space=param_space,
            algo=tpe.suggest,
            trials=spark_trials,
            max_evals=max_evals,
            show_progressbar=False,
        )
        # ---- end of the article's code ---------------------------------------------------
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("parallelism=24" in w and f"the {SLOTS} task slots" in w for w in warnings), \
        warnings
    assert spark_trials.parallelism == SLOTS
    assert spark_trials.count_successful_trials() == max_evals == len(spark_trials)
    assert spark_trials.count_total_trials() == max_evals
    best = space_eval(param_space, results)
    assert best["criterion"] in ("gini", "entropy") and best["max_features"] in ("sqrt", 10, 15)
    assert type(best["n_estimators"]) is int and type(best["max_depth"]) is int
    assert -1.0 <= spark_trials.best_trial["result"]["loss"] < -0.8
    for r in spark_trials.results:
        assert started <= r["eval_time"] <= time.time()
    owners = [t.owner for t in spark_trials.all_trials() if t.owner is not None]
    assert len(owners) == max_evals and {o.worker for o in owners} == {"spark"}
    assert {o.slot for o in owners} <= set(range(1, SLOTS + 1))


def test_exactly_max_evals_distinct_points_and_errors_with_tracebacks(
        spark: Any, caplog: pytest.LogCaptureFixture) -> None:
    trials = SparkTrials(parallelism=3, spark_session=spark)
    with caplog.at_level(logging.WARNING, logger="parzen"):
        fmin(objectives.raises_for_positive, SPACE, algo=tpe.suggest, max_evals=12,
             trials=trials, show_progressbar=False, rstate=np.random.default_rng(5))
    docs = trials._dynamic_trials
    assert len(docs) == 12  # exactly max_evals, none cancelled, none extra
    assert trials.count_successful_trials() + trials.count_failed_trials() == 12
    assert trials.count_cancelled_trials() == 0
    xs = [d["misc"]["vals"]["x"][0] for d in docs]
    assert len(set(xs)) == len(xs)  # no point twice, within a batch or across
    errors = [d for d in docs if d["state"] == TrialState.ERROR]
    assert errors and len(errors) == trials.count_failed_trials()
    for d in errors:
        e = d["error"]
        assert e["type"] == "ValueError" and "is positive" in e["message"]
        assert "Traceback (most recent call last)" in e["traceback"]
        assert "raises_for_positive" in e["traceback"] and "objectives.py" in e["traceback"]
        assert d["misc"]["vals"]["x"][0] > 0
    assert not any("parallelism" in r.getMessage() for r in caplog.records)


def test_resume_from_trials_save_file(spark: Any, tmp_path: Path) -> None:
    path = str(tmp_path / "trials.pkl")
    first = SparkTrials(parallelism=2, spark_session=spark)
    fmin(objectives.quadratic, SPACE, algo=tpe.suggest, max_evals=4, trials=first,
         trials_save_file=path, show_progressbar=False, rstate=np.random.default_rng(1))
    with open(path, "rb") as f:
        saved = pickle.load(f)  # the session is not pickled; the resumed run takes it again
    assert isinstance(saved, SparkTrials) and len(saved) == 4
    before = [d["misc"]["vals"]["x"][0] for d in saved.trials]
    fmin(objectives.quadratic, SPACE, algo=tpe.suggest, max_evals=8, trials=None,
         trials_save_file=path, show_progressbar=False, rstate=np.random.default_rng(1))
    with open(path, "rb") as f:
        resumed = pickle.load(f)
    assert isinstance(resumed, SparkTrials)
    assert resumed.count_successful_trials() == 8
    assert [d["misc"]["vals"]["x"][0] for d in resumed.trials][:4] == before
    assert resumed.spark_session is spark and resumed.parallelism == 2


def test_parallelism_defaults_to_the_task_slots_and_warns_above_max_evals(
        spark: Any, caplog: pytest.LogCaptureFixture) -> None:
    assert SparkTrials().parallelism == SLOTS  # the active session's slots
    assert SparkTrials(parallelism=-1).parallelism == SLOTS  # hyperopt's rule
    trials = SparkTrials(parallelism=3)
    with caplog.at_level(logging.WARNING, logger="parzen"):
        fmin(objectives.quadratic, SPACE, max_evals=2, trials=trials,
             show_progressbar=False)
    assert any("SparkTrials(parallelism=3) is more than max_evals=2" in r.getMessage()
               for r in caplog.records)
    assert trials.count_successful_trials() == 2
    # SparkTrials' own loss_threshold stops the run when fmin names none: every loss of
    # quadratic on [-1, 1] is under 2, so the first result ends it.
    trials = SparkTrials(parallelism=2, loss_threshold=2.0)
    fmin(objectives.quadratic, SPACE, max_evals=50, trials=trials, show_progressbar=False)
    assert 1 <= trials.count_successful_trials() <= 2
    assert trials.count_total_trials() == 2  # the second: done, or cancelled while running


# Near the end: Ctrl-C cancels every Spark job, and new Python workers replace the ones
# it stopped, which the tests after it would wait for.
@pytest.mark.parametrize("stop", ["spark-timeout", "early-stop", "ctrl-c"])
def test_a_stopped_run_cancels_its_running_trials_and_returns_the_best(
        spark: Any, tmp_path: Path, stop: str) -> None:
    """Two points: x=-0.5 returns at once, x=0.5 sleeps a minute. The run stops (the
    SparkTrials' timeout, early_stop_fn, or Ctrl-C) while the second runs: it is cancelled,
    its process is gone when fmin returns, and fmin returns the first."""
    marks = tmp_path
    kwargs: dict[str, Any] = {}
    if stop == "spark-timeout":
        # The time limit counts from fmin's start, Spark's start-up included: a first run
        # warms two Python workers and their sandbox children, so that x=-0.5 is done well
        # within it even on a loaded box.
        fmin(objectives.quadratic, SPACE, max_evals=2, show_progressbar=False,
             trials=SparkTrials(parallelism=2, spark_session=spark))
        trials = SparkTrials(parallelism=2, timeout=8, spark_session=spark)
    else:
        trials = SparkTrials(parallelism=2, spark_session=spark)

        def early_stop(t: SparkTrials, *state: Any) -> tuple[bool, list[Any]]:
            started = list(marks.glob("started-*"))
            if not started or t.count_successful_trials() < 1:
                return False, []
            if stop == "ctrl-c":
                signal.raise_signal(signal.SIGINT)  # pyspark's handler: cancel jobs, interrupt
            return True, []

        kwargs["early_stop_fn"] = early_stop
    best = fmin(functools.partial(objectives.slow_for_positive, marks=str(marks)), SPACE,
                algo=tpe.suggest, max_evals=2, trials=trials, show_progressbar=False,
                points_to_evaluate=[{"x": -0.5}, {"x": 0.5}], **kwargs)
    assert best == {"x": -0.5}
    assert trials.count_successful_trials() == 1
    assert trials.count_cancelled_trials() == 1
    assert trials.count_total_trials() == 2
    started = list(marks.glob("started-*"))
    assert len(started) == 1, started
    pid = int(started[0].read_text())
    if stop == "ctrl-c":
        # pyspark's handler cancels every job first, and Spark may kill the task's Python
        # worker before the task kills the evaluation; the evaluation then follows its
        # supervisor within half a second.
        deadline = time.monotonic() + 10
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    assert not alive(pid)  # killed before fmin returned (Ctrl-C: right after)
    assert not (marks / "finished").exists()



# Last: new Python workers replace the killed ones, which the tests after it would wait for.
def test_a_killed_python_worker_costs_an_attempt_then_fails_the_trial_naming_it(
        spark: Any, tmp_path: Path) -> None:
    """x=0.1 kills the executor's Python worker on its first attempt only: it is run again
    and succeeds. x=0.9 kills it every time: after max_attempts it fails, naming Spark's
    error."""
    trials = SparkTrials(parallelism=2, spark_session=spark, max_attempts=2)
    fmin(functools.partial(objectives.kills_its_worker, marks=str(tmp_path)), SPACE,
         algo=tpe.suggest, max_evals=2, trials=trials, show_progressbar=False,
         points_to_evaluate=[{"x": 0.1}, {"x": 0.9}])
    by_x = {t.params["x"]: t for t in trials.all_trials()}
    retried, failed = by_x[0.1], by_x[0.9]
    assert retried.state is TrialState.DONE and retried.attempts == 2
    assert [a.outcome.split(":")[0] for a in retried.history] == ["crashed"]
    assert "Spark task running it" in retried.history[0].outcome
    assert failed.state is TrialState.ERROR and failed.attempts == 2
    assert failed.error is not None and failed.error.type == "WorkerCrashed"
    assert "Python worker exited unexpectedly" in failed.error.message
    assert "attempt 2 of 2" in failed.error.message
