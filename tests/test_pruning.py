"""Pruning: ``parzen.report``, the pruners' rules, and pruned trials in Trials and
ParallelTrials."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import parzen
from parzen import ParallelTrials, Trials, coordinator, failure_watch, fmin, hp
from parzen.exceptions import ConfigError, InvalidReport, ReportOutsideTrial
from parzen.execution.judge import Judge
from parzen.progress import Progress
from parzen.pruners import (
    AshaPruner,
    Curve,
    HyperbandPruner,
    MedianPruner,
    pruner_from_dict,
)
from parzen.reporting import TrialHandle, TrialPruned
from parzen.samplers.tpe._failures import impute
from parzen.store import InMemoryTrialStore
from parzen.trial import Intermediate, Owner, Trial, TrialState
from parzen.trials import JOB_STATE_DONE

SPACE = {"x": hp.uniform("x", 0, 1)}
STEPS = 27


def curve(tid: int, *losses: float, start: int = 1) -> Curve:
    return Curve(tid, tuple(range(start, start + len(losses))), tuple(losses))


def learning(params: dict[str, Any]) -> float:
    """A curve that falls towards (x - 0.3)**2: the final loss ranks trials by x."""
    x = params["x"]
    loss = 0.0
    for step in range(1, STEPS + 1):
        loss = (x - 0.3) ** 2 + 1.0 / step
        parzen.report(loss, step)
    return loss


def run(trials: Trials, pruner: Any, fn: Any = learning, n: int = 30) -> Trials:
    fmin(fn, SPACE, max_evals=n, trials=trials, pruner=pruner, show_progressbar=False,
         rstate=np.random.default_rng(0))
    return trials


# ---- bad input -----------------------------------------------------------------------------

def test_report_outside_a_trial_is_an_error() -> None:
    with pytest.raises(ReportOutsideTrial, match="outside a trial"):
        parzen.report(0.5, 1)


@pytest.mark.parametrize("loss", [math.nan, math.inf, -math.inf, "0.3", True])
def test_a_non_finite_loss_is_an_error(loss: Any) -> None:
    def fn(params: dict[str, Any]) -> float:
        parzen.report(loss, 1)
        return 0.0

    with pytest.raises(InvalidReport, match="finite number"):
        run(Trials(), None, fn, n=1)


@pytest.mark.parametrize("steps", [(3, 2), (3, 3), (-1,), (1.5,)])
def test_a_step_that_does_not_increase_is_an_error(steps: tuple[Any, ...]) -> None:
    def fn(params: dict[str, Any]) -> float:
        for s in steps:
            parzen.report(0.5, s)
        return 0.0

    with pytest.raises(InvalidReport, match="step must"):
        run(Trials(), None, fn, n=1)


@pytest.mark.parametrize("make, named", [
    (lambda: AshaPruner(reduction_factor=1), "reduction_factor=1"),
    (lambda: AshaPruner(reduction_factor=0.5), "reduction_factor=0.5"),
    (lambda: AshaPruner(min_resource=10, max_resource=5), "min_resource=10"),
    (lambda: HyperbandPruner(min_resource=100, max_resource=81), "min_resource=100"),
    (lambda: HyperbandPruner(reduction_factor=1), "reduction_factor=1"),
    # A first rung at or past the last step: a pruner that could never prune.
    (lambda: AshaPruner(1, 3, 9, min_early_stopping_rate=5), "min_early_stopping_rate"),
    (lambda: AshaPruner(min_resource=9, max_resource=9), "max_resource=9"),
    (lambda: MedianPruner(n_startup_trials=0), "n_startup_trials=0"),
])
def test_impossible_pruner_settings_fail_at_fmin_start_naming_the_value(
        make: Any, named: str) -> None:
    calls: list[int] = []

    def fn(params: dict[str, Any]) -> float:
        calls.append(1)
        return 0.0

    with pytest.raises(ConfigError, match=named):
        fmin(fn, SPACE, max_evals=3, pruner=make(), show_progressbar=False)
    assert not calls


def test_when_every_trial_was_pruned_the_error_says_so() -> None:
    def always_pruned(params: dict[str, Any]) -> float:
        parzen.report(1.0, 1)
        raise TrialPruned()

    with pytest.raises(parzen.AllTrialsFailed, match="5 of 5 were pruned"):
        fmin(always_pruned, SPACE, max_evals=5, show_progressbar=False)


def test_a_pruner_of_another_type_is_refused() -> None:
    with pytest.raises(ConfigError, match="pruner must be None or a parzen pruner"):
        fmin(learning, SPACE, max_evals=1, pruner="asha", show_progressbar=False)


# ---- the rules -----------------------------------------------------------------------------

def test_asha_rungs_follow_min_resource_and_reduction_factor() -> None:
    asha = AshaPruner(min_resource=1, reduction_factor=3, max_resource=27)
    assert [asha.rung_step(k) for k in range(3)] == [1, 3, 9]
    crossings = [s for s in range(1, 28) if asha.decides_at(0, s - 1 if s > 1 else None, s)]
    assert crossings == [1, 3, 9]  # no rung at max_resource: a trial there is complete
    late = AshaPruner(min_resource=1, reduction_factor=3, min_early_stopping_rate=1)
    assert late.rung_step(0) == 3


def test_asha_keeps_the_top_third_of_a_rung() -> None:
    asha = AshaPruner(min_resource=1, reduction_factor=3)
    assert not asha.should_prune(curve(0, 0.9), [])  # alone at the rung: it goes on
    peers = [curve(i, v) for i, v in enumerate([0.1, 0.2, 0.3, 0.4, 0.5], start=1)]
    # Six at the rung keep two: 0.15 is second, 0.25 third.
    assert not asha.should_prune(curve(9, 0.15), peers)
    assert asha.should_prune(curve(9, 0.25), peers)


def test_asha_compares_only_values_reported_at_the_rung() -> None:
    asha = AshaPruner(min_resource=1, reduction_factor=3)
    own = curve(9, 0.9, 0.8, 0.5)  # at rung 1 (step 3) with 0.5
    behind = [curve(i, 0.01, 0.01) for i in range(1, 10)]  # never reached step 3
    assert not asha.should_prune(own, behind)
    ahead = [curve(i, 0.9, 0.9, 0.1) for i in range(1, 4)]
    assert asha.should_prune(own, behind + ahead)


def test_median_pruner_waits_for_startup_trials_then_stops_below_median() -> None:
    median = MedianPruner(n_startup_trials=3)
    peers = [curve(i, 1.0, v) for i, v in enumerate([0.2, 0.4, 0.6], start=1)]
    assert not median.should_prune(curve(9, 1.0, 0.9), peers[:2])
    assert median.should_prune(curve(9, 1.0, 0.5), peers)
    assert not median.should_prune(curve(9, 1.0, 0.3), peers)
    assert not MedianPruner(n_warmup_steps=5).decides_at(0, 3, 4)


def test_hyperband_brackets_follow_the_paper_and_every_worker_agrees() -> None:
    hb = HyperbandPruner(min_resource=1, max_resource=81, reduction_factor=3)
    assert hb.s_max == 4
    # Li et al. 2018, Table 1 (R=81, eta=3): n_i of brackets s=4..0 is 81, 34, 15, 8, 5.
    assert hb.bracket_weights() == [81, 34, 15, 8, 5]
    brackets = [hb.bracket(t) for t in range(2000)]
    assert brackets == [HyperbandPruner(1, 81, 3).bracket(t) for t in range(2000)]
    share = np.bincount(brackets, minlength=5) / len(brackets)
    assert np.allclose(share, np.array([81, 34, 15, 8, 5]) / 143, atol=0.03)


def test_hyperband_compares_trials_within_their_bracket_only() -> None:
    hb = HyperbandPruner(min_resource=1, max_resource=81, reduction_factor=3)
    zero = [t for t in range(200) if hb.bracket(t) == 0][:6]
    other = [t for t in range(200) if hb.bracket(t) != 0][:6]
    own = curve(zero[0], 0.5)
    assert not hb.should_prune(own, [curve(t, 0.01) for t in other])
    assert hb.should_prune(own, [curve(t, 0.01) for t in zero[1:]])


@pytest.mark.parametrize("pruner", [MedianPruner(3, 2, 2), AshaPruner(2, 4, 64, 1),
                                    HyperbandPruner(1, 27, 3)])
def test_pruners_travel_as_their_settings(pruner: Any) -> None:
    assert pruner_from_dict(pruner.to_dict()) == pruner


# ---- trials in process and in local processes ---------------------------------------------

@pytest.mark.parametrize("pruner", [AshaPruner(1, 3, STEPS), HyperbandPruner(1, STEPS, 3),
                                    MedianPruner(n_startup_trials=3)])
def test_pruned_trials_stop_early_and_keep_their_last_report(pruner: Any) -> None:
    trials = run(Trials(), pruner)
    pruned = [t for t in trials.all_trials() if t.state is TrialState.PRUNED]
    done = [t for t in trials.all_trials() if t.state is TrialState.DONE]
    assert pruned and done and len(pruned) + len(done) == 30
    for t in pruned:
        last = t.curve()[-1]
        assert last.step < STEPS
        assert t.result == {"status": "fail", "pruned": {"step": last.step, "loss": last.loss}}
    assert all(len(t.curve()) == STEPS for t in done)
    assert trials.best_trial["tid"] in {t.tid for t in done}


def test_without_a_pruner_every_trial_runs_to_the_end_and_its_reports_are_kept() -> None:
    trials = run(Trials(), None, n=5)
    assert trials.state_counts()[TrialState.DONE] == 5
    t = trials.all_trials()[0]
    assert [r.step for r in t.curve()] == list(range(1, STEPS + 1))
    assert trials.trials[0]["intermediate"][-1] == {"step": STEPS, "loss": t.loss}


def test_hyperopt_documents_show_a_pruned_trial_as_done_with_status_fail() -> None:
    trials = run(Trials(), AshaPruner(1, 3, STEPS))
    docs = {d["tid"]: d for d in trials.trials}
    pruned = [t for t in trials.all_trials() if t.state is TrialState.PRUNED]
    assert len(docs) == 30  # hyperopt's readers keep them: a valid state
    for t in pruned:
        doc = docs[t.tid]
        assert doc["state"] == JOB_STATE_DONE
        assert doc["result"]["status"] == "fail" and doc["result"]["pruned"]["step"] >= 1
    assert "fail" in trials.statuses()
    assert trials.best_trial["result"]["status"] == "ok"


def test_an_objective_with_a_second_parameter_gets_a_handle() -> None:
    seen: list[TrialHandle] = []

    def fn(params: dict[str, Any], trial: TrialHandle) -> float:
        seen.append(trial)
        for step in range(1, STEPS + 1):
            trial.report((params["x"] - 0.3) ** 2 + 1.0 / step, step)  # never raises
            if trial.should_prune():
                raise TrialPruned()
        return (params["x"] - 0.3) ** 2

    trials = run(Trials(), AshaPruner(1, 3, STEPS), fn)
    assert [h.tid for h in seen] == list(range(30))
    assert trials.state_counts()[TrialState.PRUNED] > 0


def test_a_handle_outside_fmin_is_detached() -> None:
    def fn(params: dict[str, Any], trial: TrialHandle) -> float:
        trial.report(0.5, 1)
        return 0.5 if not trial.should_prune() else 1.0

    assert parzen.Domain(fn, SPACE).evaluate({"x": 0.5})["loss"] == 0.5


def test_parallel_trials_carry_reports_from_the_sandbox() -> None:
    trials = run(ParallelTrials(2), AshaPruner(1, 3, STEPS), n=12)
    counts = trials.state_counts()
    assert counts[TrialState.PRUNED] > 0 and counts[TrialState.DONE] > 0
    assert counts[TrialState.PRUNED] + counts[TrialState.DONE] == 12
    for t in trials.all_trials():
        if t.state is TrialState.PRUNED:
            assert t.result["pruned"]["step"] == t.curve()[-1].step < STEPS


def test_a_script_objective_that_calls_parzen_report_runs_in_parallel_trials(
        tmp_path: Any) -> None:
    import subprocess
    import sys

    # A script's objective is pickled by value with the globals it uses, ``parzen`` among
    # them: the README's ``import parzen`` ... ``parzen.report`` under ParallelTrials.
    script = tmp_path / "tune.py"
    script.write_text(
        "import parzen\n"
        "from parzen import ParallelTrials, fmin, hp\n"
        "from parzen.pruners import AshaPruner\n"
        "def objective(params):\n"
        "    for step in range(1, 10):\n"
        "        parzen.report((params['x'] - 0.3) ** 2 + 1 / step, step)\n"
        "    return (params['x'] - 0.3) ** 2\n"
        "if __name__ == '__main__':\n"
        "    trials = ParallelTrials(parallelism=2)\n"
        "    fmin(objective, {'x': hp.uniform('x', 0, 1)}, max_evals=12, trials=trials,\n"
        "         pruner=AshaPruner(1, 3, 9), show_progressbar=False)\n"
        "    print(sorted(t.state.word for t in trials.all_trials()))\n")
    got = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path, check=False)
    assert got.returncode == 0, got.stderr[-2000:]
    assert "'pruned'" in got.stdout and "'done'" in got.stdout


def test_the_progress_bar_counts_pruned_trials(capsys: pytest.CaptureFixture[str]) -> None:
    bar = Progress(total=3, initial=0, enabled=True)
    bar.update(3, 0, 0, 0.5, pruned=2)
    bar.close()
    assert "pruned: 2" in capsys.readouterr().err


# ---- the judge -----------------------------------------------------------------------------

class _CountingStore(InMemoryTrialStore):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def report(self, *args: Any, **kwargs: Any) -> bool:
        self.writes += 1
        return super().report(*args, **kwargs)


def _claimed(store: InMemoryTrialStore) -> Trial:
    store.insert_new([Trial("e", 0, TrialState.NEW, {"x": 0.5})])
    claimed = store.claim("e", 0, Owner("w", "h", 1), 60)
    assert claimed is not None
    return claimed


def test_reports_are_written_in_batches_when_a_heartbeat_carries_them() -> None:
    store = _CountingStore()
    judge = Judge(store, _claimed(store), None, lease_s=60, batch_s=3600)
    for step in range(1000):
        judge.report(step, 1.0 / (step + 1))
    assert store.writes <= 1 and not store.get("e", 0).intermediate[999:]
    assert judge.beat()  # the heartbeat writes what waits
    assert store.writes <= 2
    assert [r.step for r in store.get("e", 0).intermediate] == list(range(1000))


def test_a_decision_point_writes_at_once_so_peers_see_the_rung() -> None:
    store = _CountingStore()
    judge = Judge(store, _claimed(store), AshaPruner(10, 3), lease_s=60, batch_s=3600)
    for step in range(1, 11):
        judge.report(step, 0.5)
    assert [r.step for r in store.get("e", 0).intermediate][-1] == 10


def test_a_requeued_trial_keeps_the_values_of_its_dead_attempt() -> None:
    store = InMemoryTrialStore()
    first = _claimed(store)
    assert first.claim_token is not None
    store.report("e", 0, first.claim_token, [Intermediate(1, 0.9, 1), Intermediate(2, 0.8, 1)],
                 60)
    store.release("e", 0, first.claim_token, "crashed: SIGKILL", count_attempt=True)
    again = store.claim("e", 0, Owner("w2", "h", 2), 60)
    assert again is not None and again.claim_token is not None
    store.report("e", 0, again.claim_token, [Intermediate(1, 0.7, 2)], 60)
    t = store.get("e", 0)
    assert [(r.step, r.attempt) for r in t.intermediate] == [(1, 1), (2, 1), (1, 2)]
    assert [r.loss for r in t.curve()] == [0.7]
    assert not store.report("e", 0, first.claim_token, [Intermediate(3, 0.1, 1)], 60)


def test_a_trial_requeued_by_the_operator_starts_a_new_curve() -> None:
    # parzen requeue restarts attempts at 0 and keeps the reports: the next run's curve must
    # not extend the old one with steps from 1 again.
    store = InMemoryTrialStore()
    first = _claimed(store)
    judge = Judge(store, first, None, lease_s=60, batch_s=0)
    for step in (1, 2, 3):
        judge.report(step, 1.0 / step)
    assert first.claim_token is not None
    store.finish("e", 0, first.claim_token, TrialState.PRUNED,
                 {"status": "fail", "pruned": {"step": 3, "loss": 1 / 3}})
    assert store.requeue("e", [TrialState.PRUNED]) == 1
    again = store.claim("e", 0, Owner("w2", "h", 2), 60)
    assert again is not None and again.attempts == 1
    judge = Judge(store, again, None, lease_s=60, batch_s=0)
    judge.report(1, 0.9)
    t = store.get("e", 0)
    assert [(r.step, r.attempt) for r in t.curve()] == [(1, 2)]
    assert Curve.of(t).steps == (1,)


# ---- the sampler ---------------------------------------------------------------------------

def test_the_sampler_learns_a_pruned_trial_by_its_last_reported_loss() -> None:
    trials = run(Trials(), AshaPruner(1, 3, STEPS))
    history = trials.history(parzen.Domain(learning, SPACE).space)
    by_tid = {t.tid: t for t in trials.all_trials()}
    for row, tid in enumerate(sorted(by_tid)):
        t = by_tid[tid]
        expected = t.loss if t.state is TrialState.DONE else t.curve()[-1].loss
        assert history.losses[row] == expected
    done = [t.loss for t in by_tid.values() if t.loss is not None]
    pruned = [t.curve()[-1].loss for t in by_tid.values() if t.state is TrialState.PRUNED]
    assert min(done) < min(pruned)  # pruned trials rank below the best completed ones


def pruned_or_failing(params: dict[str, Any]) -> Any:
    """``learning``, except that it fails (status fail) for x above 0.8: a failure at its
    point."""
    if params["x"] > 0.8:
        return {"status": "fail"}
    return learning(params)


def test_a_pruned_trial_is_no_failure_and_failed_rows_still_get_the_worst_loss() -> None:
    trials = run(Trials(), AshaPruner(1, 3, STEPS), pruned_or_failing, n=40)
    by_state = trials.state_counts()
    n_failed = sum(t.failed_here for t in trials.all_trials())
    assert by_state[TrialState.PRUNED] > 0 and n_failed > 0
    history = trials.history(parzen.Domain(learning, SPACE).space)
    imputed = impute(history)
    for row, t in enumerate(trials.all_trials()):  # tid order, as the history's rows
        # A row is failed or has a loss, never both.
        assert history.failed_mask[row] == (t.state is TrialState.DONE and t.loss is None)
        assert history.failed_mask[row] != math.isfinite(history.losses[row])
        if t.state is TrialState.PRUNED:
            assert not t.failed_here and not failure_watch.failed(t)
            assert imputed.losses[row] == t.curve()[-1].loss
    worst = np.nanmax(history.losses)
    assert (imputed.losses[history.failed_mask] == worst).all()
    c = coordinator.count(trials)
    assert c.pruned == by_state[TrialState.PRUNED]
    assert c.failed == n_failed  # pruned trials are not counted as failed
    assert c.finished == 40


# ---- user tools ----------------------------------------------------------------------------

def test_the_trials_table_shows_the_last_step_and_the_pruned_state() -> None:
    from parzen.export import trial_table

    trials = run(Trials(), AshaPruner(1, 3, STEPS))
    rows = {r["tid"]: r for r in trial_table(trials.all_trials()).rows}
    for t in trials.all_trials():
        row = rows[t.tid]
        assert row["step"] == t.curve()[-1].step
        assert row["duration_s"] is not None and row["duration_s"] >= 0
        if t.state is TrialState.PRUNED:
            assert row["state"] == "pruned" and row["step"] < STEPS
            assert row["loss"] == t.result["pruned"]["loss"]
        else:
            assert row["state"] == "done" and row["step"] == STEPS and row["loss"] == t.loss


def test_parzen_trials_shows_the_step_column_only_when_a_trial_reported(
        tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from parzen.cli import main

    def table(trials_file: str, *extra: str) -> list[str]:
        assert main(["trials", "--file", trials_file, *extra]) == 0
        return capsys.readouterr().out.splitlines()

    pruned, plain = str(tmp_path / "pruned.pkl"), str(tmp_path / "plain.pkl")
    fmin(learning, SPACE, max_evals=12, pruner=AshaPruner(1, 3, STEPS), show_progressbar=False,
         rstate=np.random.default_rng(0), trials_save_file=pruned)
    fmin(lambda p: p["x"], SPACE, max_evals=3, show_progressbar=False,
         rstate=np.random.default_rng(0), trials_save_file=plain)
    head, *rows = table(pruned)
    assert head.split()[:4] == ["tid", "state", "loss", "step"]
    assert any(r.split()[1] == "pruned" for r in rows)
    assert "step" not in table(plain)[0].split()
    # Scripts get the same columns whether or not a trial reported.
    assert table(plain, "--format", "csv")[0].startswith("tid,state,loss,step,")


def test_plots_draw_learning_curves_with_pruned_ones_grey() -> None:
    pytest.importorskip("matplotlib")
    from parzen.plotting import PRUNED_COLOR, plot_experiment, plot_learning_curves

    trials = run(Trials(), AshaPruner(1, 3, STEPS))
    n_pruned = trials.state_counts()[TrialState.PRUNED]
    fig = plot_learning_curves(trials)
    lines = fig.axes[0].get_lines()
    assert len(lines) == 30
    grey = [ln for ln in lines if isinstance(ln.get_color(), str)
            and ln.get_color() == PRUNED_COLOR]
    assert len(grey) == n_pruned
    assert f"{n_pruned} pruned" in fig.texts[0].get_text()
    assert len(plot_experiment(trials).axes) == 3  # history, curves, x
    # The loss axis is the caller's to choose, as in every other plot.
    assert plot_learning_curves(trials, loss_scale="log").axes[0].get_yscale() == "log"
    assert plot_learning_curves(trials, loss_scale="linear").axes[0].get_yscale() == "linear"
    assert len(plot_experiment(run(Trials(), None, lambda p: p["x"], n=3)).axes) == 2


def test_parzen_status_counts_pruned_trials_as_finished() -> None:
    from parzen.cli import _status
    from parzen.store import Experiment

    trials = run(Trials(), AshaPruner(1, 3, STEPS))
    n_pruned = trials.state_counts()[TrialState.PRUNED]
    exp = Experiment(trials.exp_key, max_evals=30)
    trials.store.put_experiment(exp)
    snap = _status.gather(trials.store, exp, 60)
    assert snap.finished == 30
    assert f"pruned {n_pruned}   (30 finished of max_evals 30)" in _status.render(snap)
    assert len(snap.recent) == 30  # the throughput and the ETA count pruned trials too


def fast_reporter(params: dict[str, Any]) -> float:
    step = 0
    while True:  # reports without end: only the time limit stops it
        step += 1
        parzen.report(1.0, step)


def test_an_objective_that_reports_fast_still_meets_its_time_limit() -> None:
    trials = ParallelTrials(1, trial_timeout=1.0)
    with pytest.raises(parzen.AllTrialsFailed):
        fmin(fast_reporter, SPACE, max_evals=1, trials=trials, show_progressbar=False,
             rstate=np.random.default_rng(0))
    (t,) = trials.all_trials()
    assert t.state is TrialState.ERROR and t.error is not None
    assert t.error.type == "TrialTimeout" and len(t.intermediate) > 10
