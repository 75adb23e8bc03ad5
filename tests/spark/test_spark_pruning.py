"""Pruning with SparkTrials on a real local Spark: ``parzen.report`` and the
second-parameter handle in objectives that run on the executors, judged in the driver."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from parzen import SparkTrials, fmin, hp, rand, tpe
from parzen.exceptions import AllTrialsFailed
from parzen.pruners import AshaPruner, HyperbandPruner, MedianPruner
from parzen.trial import TrialState
from parzen.trials import JOB_STATE_DONE
from tests.spark import pruning_objectives as objectives
from tests.spark.pruning_objectives import STEPS, loss_at
from tests.support.processes import alive

pytestmark = [pytest.mark.spark, pytest.mark.timeout(300)]

SPACE = {"x": hp.uniform("x", 0, 1)}
N_TRIALS = 30


def run(spark: Any, fn: Any, pruner: Any, n: int = N_TRIALS, algo: Any = tpe.suggest
        ) -> SparkTrials:
    trials = SparkTrials(parallelism=2, spark_session=spark)
    fmin(fn, SPACE, algo=algo, max_evals=n, trials=trials, pruner=pruner,
         show_progressbar=False, rstate=np.random.default_rng(0))
    return trials


def check_pruned_run(trials: SparkTrials, n: int) -> None:
    """Hopeless trials stopped before the last step, with their curves and last report
    kept; the others ran every step; the best is a finished trial."""
    every = trials.all_trials()
    pruned = [t for t in every if t.state is TrialState.PRUNED]
    done = [t for t in every if t.state is TrialState.DONE]
    assert pruned and done and len(pruned) + len(done) == n == len(every)
    for t in pruned:
        last = t.curve()[-1]
        assert 1 <= last.step < STEPS
        assert t.result == {"status": "fail", "pruned": {"step": last.step, "loss": last.loss}}
    assert all(len(t.curve()) == STEPS for t in done)
    assert {t.owner.worker for t in every if t.owner is not None} == {"spark"}
    assert trials.best_trial["tid"] in {t.tid for t in done}


def test_asha_prunes_hopeless_trials_on_the_executors(spark: Any) -> None:
    # Random points: most of them are far from x=0.3, and their curves say so from the
    # first report on (the TPE would soon propose only good ones).
    trials = run(spark, objectives.learning,
                 AshaPruner(min_resource=1, reduction_factor=3, max_resource=STEPS),
                 algo=rand.suggest)
    check_pruned_run(trials, N_TRIALS)
    every = trials.all_trials()
    pruned = [t for t in every if t.state is TrialState.PRUNED]
    # Here 25 of 30 stop at the rungs 1, 3 and 9, for 184 steps of 810; the order the two
    # slots finish in moves that a little.
    assert len(pruned) >= N_TRIALS // 2, trials.state_counts()
    total_steps = sum(len(t.curve()) for t in every)
    assert total_steps <= N_TRIALS * STEPS // 2, total_steps
    # hyperopt's documents: a pruned trial is DONE with status fail, where it stopped, and
    # the curve the objective reported on the executor, value for value.
    docs = {d["tid"]: d for d in trials.trials}
    assert len(docs) == N_TRIALS
    for t in every:
        doc = docs[t.tid]
        x = doc["misc"]["vals"]["x"][0]
        last = t.curve()[-1].step
        assert doc["intermediate"] == [{"step": s, "loss": loss_at(x, s)}
                                       for s in range(1, last + 1)]
        if t.state is TrialState.PRUNED:
            assert doc["state"] == JOB_STATE_DONE
            assert doc["result"] == {"status": "fail",
                                     "pruned": {"step": last, "loss": loss_at(x, last)}}
        else:
            assert doc["result"]["status"] == "ok" and doc["result"]["loss"] == loss_at(x, STEPS)
    assert "fail" in trials.statuses()


@pytest.mark.parametrize("pruner", [HyperbandPruner(min_resource=1, max_resource=STEPS,
                                                    reduction_factor=3),
                                    MedianPruner(n_startup_trials=3)],
                         ids=["hyperband", "median"])
def test_the_trial_handle_form_is_pruned_too(spark: Any, pruner: Any) -> None:
    """``def objective(params, trial)``: ``trial.report`` never raises; the objective asks
    ``trial.should_prune()`` and raises ``TrialPruned`` itself."""
    n = 16
    trials = run(spark, objectives.learning_with_handle, pruner, n=n)
    check_pruned_run(trials, n)


def test_a_non_finite_report_is_an_error_naming_the_value(spark: Any) -> None:
    """As in ParallelTrials and on the workers: the report is refused in the objective's
    process, and the trial is ERROR with ``InvalidReport`` naming the value."""
    trials = SparkTrials(parallelism=2, spark_session=spark)
    with pytest.raises(AllTrialsFailed, match=r"InvalidReport: parzen.report\(loss=nan"):
        fmin(objectives.reports_nan, SPACE, algo=tpe.suggest, max_evals=2, trials=trials,
             pruner=AshaPruner(min_resource=1, reduction_factor=3, max_resource=STEPS),
             show_progressbar=False, rstate=np.random.default_rng(0))
    every = trials.all_trials()
    assert len(every) == 2
    for t in every:
        assert t.state is TrialState.ERROR and t.error is not None
        assert t.error.type == "InvalidReport"
        assert f"parzen.report(loss=nan, step=1) in trial {t.tid}" in t.error.message
        assert "the loss must be a finite number" in t.error.message
        assert "reports_nan" in t.error.traceback
        assert not t.intermediate  # nothing reached the judge


def test_reports_from_the_executors_cost_a_round_trip_of_well_under_a_few_ms(
        spark: Any) -> None:
    """200 reports in a tight loop, timed in the objective's process on the executor: each
    one goes to the driver's judge and back. About 0.3 ms on the 2-core test machine; the
    bound is loose for a loaded box."""
    trials = SparkTrials(parallelism=1, spark_session=spark)
    fmin(objectives.timed_reports, {"n": 200, "x": hp.uniform("x", 0, 1)},
         algo=tpe.suggest, max_evals=3, trials=trials,
         pruner=AshaPruner(min_resource=1, reduction_factor=3, max_resource=STEPS),
         show_progressbar=False, rstate=np.random.default_rng(0))
    per_report_ms = min(r["per_report_ms"] for r in trials.results)
    assert per_report_ms < 5.0, per_report_ms
    assert all(len(t.curve()) == 200 for t in trials.all_trials())


def test_a_stopped_run_stops_a_trial_that_reports_in_a_tight_loop(
        spark: Any, tmp_path: Path) -> None:
    """While a trial reports, its link is never idle: the driver still sees the run stop
    (here early_stop_fn) between two reports, and the trial's process is gone when fmin
    returns."""
    trials = SparkTrials(parallelism=2, spark_session=spark)

    def early_stop(t: SparkTrials, *state: Any) -> tuple[bool, list[Any]]:
        running = [r for r in t.all_trials() if r.state is TrialState.RUNNING]
        return bool(list(tmp_path.glob("started-*")) and t.count_successful_trials() >= 1
                    and running and running[0].intermediate), []

    best = fmin(functools.partial(objectives.reports_until_stopped, marks=str(tmp_path)),
                SPACE, algo=tpe.suggest, max_evals=2, trials=trials, show_progressbar=False,
                pruner=MedianPruner(n_startup_trials=5), early_stop_fn=early_stop,
                points_to_evaluate=[{"x": 0.0}, {"x": 0.5}])
    assert best == {"x": 0.0}
    assert trials.count_successful_trials() == 1 and trials.count_cancelled_trials() == 1
    started = list(tmp_path.glob("started-*"))
    assert len(started) == 1, started
    pid = int(started[0].read_text())
    assert not alive(pid)
    assert not (tmp_path / "finished").exists()

