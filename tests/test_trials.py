"""The ``Trials`` facade: hyperopt documents over the trial store, incremental refresh,
pickling, best-trial rules and experiment isolation."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest

from parzen import (
    JOB_STATE_DONE,
    JOB_STATE_ERROR,
    JOB_STATE_NEW,
    JOB_STATE_RUNNING,
    STATUS_FAIL,
    STATUS_OK,
    AllTrialsFailed,
    Domain,
    Trials,
    fmin,
    generate_trials_to_calculate,
    hp,
    rand,
)
from parzen.store import InMemoryTrialStore
from parzen.trial import Owner, TrialState

SPACE = {"x": hp.uniform("x", 0, 1), "c": hp.choice("c", [{"u": hp.uniform("u", 0, 1)}, "z"])}
OWNER = Owner("test", "host", 1)


def _run(trials: Trials, fn: Any = lambda p: p["x"], n: int = 5, **kw: Any) -> Trials:
    fmin(fn, SPACE, algo=rand.suggest, max_evals=n, trials=trials,
         rstate=np.random.default_rng(0), show_progressbar=False, **kw)
    return trials


def _insert(trials: Trials, points: list[dict[str, Any]]) -> list[int]:
    tids = trials.new_trial_ids(len(points))
    inserted = trials.insert_trial_docs(trials.docs_for_points(tids, points))
    trials.refresh()  # as in hyperopt, inserted documents show after a refresh
    return inserted


def _finish(trials: Trials, tid: int, result: dict[str, Any]) -> None:
    store = trials.store
    t = store.claim(trials.exp_key, tid, OWNER, 60)
    assert t is not None and t.claim_token is not None
    store.finish(trials.exp_key, tid, t.claim_token, TrialState.DONE, result)


def test_empty_trials() -> None:
    trials = Trials()
    assert len(trials) == 0 and trials.trials == [] and trials.tids == []
    assert trials.losses() == [] and trials.statuses() == [] and trials.vals == {}
    assert trials.count_by_state_unsynced(JOB_STATE_DONE) == 0
    with pytest.raises(AllTrialsFailed, match=r"no trial has run, so there is no best one: "
                       r"these trials are empty \(fmin with max_evals=0\?\); run fmin with "
                       r"max_evals >= 1"):
        _ = trials.argmin
    with pytest.raises(AllTrialsFailed):
        trials.average_best_error()
    assert repr(trials) == "<Trials 'default': empty>"


def test_refresh_sees_store_changes_only_after_refresh() -> None:
    trials = Trials()
    tids = _insert(trials, [{"x": 0.1, "c": 1}, {"x": 0.2, "c": 1}])
    assert tids == [0, 1]
    assert trials.statuses() == ["new", "new"]
    assert trials.losses() == [None, None]
    assert trials.in_flight == {0, 1}
    _finish(trials, 0, {"loss": 0.5, "status": STATUS_OK})
    # hyperopt semantics: documents are as of the last refresh ...
    assert trials.trials[0]["state"] == JOB_STATE_NEW
    assert trials.count_by_state_synced(JOB_STATE_DONE) == 0
    # ... and count_by_state_unsynced looks at the store.
    assert trials.count_by_state_unsynced(JOB_STATE_DONE) == 1
    trials.refresh()
    assert trials.trials[0]["state"] == JOB_STATE_DONE
    assert trials.losses() == [0.5, None]
    assert trials.in_flight == {1}
    assert trials.best_loss == 0.5
    assert trials.state_counts()[TrialState.NEW] == 1
    assert repr(trials) == "<Trials 'default': new=1, done=1>"


def test_best_trial_rules() -> None:
    trials = Trials()
    _insert(trials, [{"x": v, "c": 1} for v in (0.1, 0.2, 0.3, 0.4)])
    _finish(trials, 0, {"loss": 2.0, "status": STATUS_OK})
    _finish(trials, 1, {"loss": -1.0, "status": STATUS_FAIL})  # fail: loss ignored
    _finish(trials, 2, {"loss": 1.0, "status": STATUS_OK, "true_loss": 7.0})
    _finish(trials, 3, {"loss": 1.0, "status": STATUS_OK, "true_loss": 9.0})
    trials.refresh()
    assert trials.best_trial["tid"] == 2  # ties go to the earliest trial
    assert trials.argmin == {"x": 0.3, "c": 1}
    assert trials.best_loss == 1.0
    # hyperopt sorts the (loss, variance, true_loss) rows and takes the first: among ties,
    # the lowest true_loss.
    assert trials.average_best_error() == 7.0
    assert trials.statuses() == ["ok", "fail", "ok", "ok"]


def test_the_kept_best_trial_is_the_one_a_full_scan_finds() -> None:
    # best_trial is kept as trials finish (not found by a scan per call): in any order of
    # finishing, with ties, failures and non-finite losses, it is the trial a scan of every
    # trial gives.
    rng = np.random.default_rng(0)
    for _ in range(20):
        trials = Trials()
        n = 12
        tids = _insert(trials, [{"x": 0.1 * i, "c": 1} for i in range(n)])
        for tid in rng.permutation(tids):
            loss = float(rng.choice([0.5, 1.0, 2.0, np.inf, np.nan]))
            status = STATUS_OK if rng.uniform() < 0.8 else STATUS_FAIL
            _finish(trials, int(tid), {"loss": loss, "status": status})
            trials.refresh()
            ok = [(d["result"]["loss"], d["tid"]) for d in trials.trials
                  if d["result"].get("status") == STATUS_OK
                  and np.isfinite(d["result"].get("loss", np.nan))]
            if ok:
                assert trials.best_trial["tid"] == min(ok)[1]
                assert trials.best_loss == min(ok)[0]


def test_best_trial_when_nothing_succeeded() -> None:
    def fails(p: Any) -> Any:
        raise ValueError("nope")

    trials = Trials()
    with pytest.raises(AllTrialsFailed) as info:
        _run(trials, fails, n=3, catch_eval_exceptions=True)
    assert "3 of 3 raised, the first (trial 0) with ValueError: nope" in str(info.value)
    with pytest.raises(AllTrialsFailed, match="3 of 3 raised"):
        _ = trials.best_trial
    assert [tid for tid, _ in trials.errors()] == [0, 1, 2]
    assert trials.errors()[0][1].type == "ValueError"


def test_pickle_round_trip_keeps_everything() -> None:
    trials = _run(Trials(), n=6)
    trials.attachments["note"] = b"bytes"
    clone = pickle.loads(pickle.dumps(trials))
    assert clone.trials == trials.trials
    assert clone.attachments == trials.attachments and clone.attachments["note"] == b"bytes"
    assert clone.exp_key == trials.exp_key
    assert clone.argmin == trials.argmin
    assert clone.new_trial_ids(1) == [6]  # tid allocation continues, never reuses
    _run(clone, n=8)
    assert clone.tids == [0, 1, 2, 3, 4, 5, 7, 8] and len(trials) == 6


def test_delete_all() -> None:
    trials = _run(Trials(), n=3)
    trials.delete_all()
    assert len(trials) == 0 and trials.best_loss is None
    _run(trials, n=2)
    assert len(trials) == 2


def test_experiments_sharing_a_store_are_isolated() -> None:
    store = InMemoryTrialStore()
    a = _run(Trials(exp_key="a", store=store), n=3)
    b = _run(Trials(exp_key="b", store=store), fn=lambda p: 1 - p["x"], n=5)
    assert (len(a), len(b)) == (3, 5)
    assert {d["exp_key"] for d in a.trials} == {"a"}
    assert b.tids == list(range(5))
    assert Trials(exp_key="a", store=store).trials == a.trials


def test_hyperopt_style_new_trial_docs() -> None:
    trials = Trials()
    tids = trials.new_trial_ids(2)
    miscs = [{"tid": t, "cmd": None, "workdir": None, "idxs": {"x": [t], "c": [t]},
              "vals": {"x": [0.5], "c": [1]}} for t in tids]
    docs = trials.new_trial_docs(tids, [None, None], [{"status": "new"}] * 2, miscs)
    assert [d["state"] for d in docs] == [JOB_STATE_NEW] * 2
    assert trials.insert_trial_docs(docs) == tids
    assert trials.insert_trial_doc(trials.new_trial_docs(
        [5], [None], [{"status": "new"}],
        [{"tid": 5, "cmd": None, "idxs": {"x": [5], "u": [], "c": [5]},
          "vals": {"x": [0.1], "u": [], "c": [0]}}])[0]) == 5
    trials.refresh()
    assert trials.tids == [0, 1, 5]
    assert trials.new_trial_ids(1) == [6]  # allocation moved past an explicit tid
    # An empty value list in hyperopt's misc means inactive: absent from the parameters.
    assert trials.known(5).params == {"x": 0.1, "c": 0}


def test_generate_trials_to_calculate() -> None:
    trials = generate_trials_to_calculate([{"x": 0.25, "c": 1}, {"x": 0.5, "c": 0, "u": 0.1}])
    assert trials.count_by_state_synced(JOB_STATE_NEW) == 2
    assert trials.miscs[1]["vals"] == {"x": [0.5], "c": [0], "u": [0.1]}
    assert trials.miscs[0]["origin"] == "points_to_evaluate"


def test_documents_carry_timing_owner_and_attempts() -> None:
    trials = _run(Trials(), n=2)
    d = trials.trials[0]
    assert d["book_time"] is not None and d["refresh_time"] >= d["book_time"]
    assert d["owner"] is not None and d["attempts"] == 1
    assert trials.known(0).duration is not None and trials.known(0).duration >= 0
    assert [t.tid for t in trials.all_trials()] == [0, 1]


def test_trials_cache_is_rebuilt_on_change() -> None:
    trials = Trials()
    _insert(trials, [{"x": 0.1, "c": 1}])
    first = trials.trials
    assert trials.trials is first  # cached between changes
    _finish(trials, 0, {"loss": 0.1, "status": STATUS_OK})
    trials.refresh()
    assert trials.trials[0]["state"] == JOB_STATE_DONE
    # Documents are updated in place, as hyperopt's are: earlier references see the change.
    assert first[0]["state"] == JOB_STATE_DONE
    _insert(trials, [{"x": 0.2, "c": 0}])
    assert [d["tid"] for d in trials.trials] == [0, 1]


def test_running_trial_is_in_flight_until_finished() -> None:
    trials = Trials()
    _insert(trials, [{"x": 0.1, "c": 1}])
    t = trials.store.claim(trials.exp_key, 0, OWNER, 60)
    assert t is not None
    trials.refresh()
    assert trials.trials[0]["state"] == JOB_STATE_RUNNING
    assert trials.in_flight == {0}
    trials.store.finish(trials.exp_key, 0, t.claim_token or "", TrialState.ERROR,
                        {"status": "fail"})
    trials.refresh()
    # As in hyperopt, a trial that raised leaves trials.trials for _dynamic_trials.
    assert trials.trials == [] and trials.in_flight == set()
    assert trials._dynamic_trials[0]["state"] == JOB_STATE_ERROR


def test_history_is_maintained_incrementally() -> None:
    trials = _run(Trials(), n=4)
    domain = Domain(lambda p: 0.0, SPACE)
    h1 = trials.history(domain.space)
    assert h1.n == 4 and h1.n_completed == 4
    np.testing.assert_array_equal(h1.losses, trials.losses())
    assert np.isnan(h1.values["u"]).tolist() == ["u" not in m["vals"] for m in trials.miscs]
    _insert(trials, [{"x": 0.9, "c": 1}])
    h2 = trials.history(domain.space)
    assert h2.n == 5 and h2.pending.tolist() == [False] * 4 + [True]
    _finish(trials, 4, {"loss": 0.9, "status": STATUS_OK})
    trials.refresh()
    h3 = trials.history(domain.space)
    assert h3.pending.tolist() == [False] * 5 and h3.losses[4] == 0.9
    assert trials._builder is not None and len(trials._builder) == 5  # one builder reused


def test_insert_trial_docs_with_results_warm_starts_an_experiment() -> None:
    """hyperopt users import finished trials (from another run) with insert_trial_docs."""
    import numpy as np

    from parzen import fmin, hp, tpe

    space = {"x": hp.uniform("x", -2, 2)}
    earlier = Trials()
    tids = earlier.new_trial_ids(3)
    docs = earlier.docs_for_points(tids, [{"x": -1.0}, {"x": 0.5}, {"x": 1.5}])
    for d, loss in zip(docs, [1.0, 0.25, 2.25], strict=True):
        d["state"] = JOB_STATE_DONE
        d["result"] = {"loss": loss, "status": STATUS_OK}
    trials = Trials()
    trials.insert_trial_docs(docs)
    assert trials.statuses() == ["ok", "ok", "ok"]
    assert trials.argmin == {"x": 0.5}
    fmin(lambda p: p["x"] ** 2, space, algo=tpe.suggest, max_evals=5, trials=trials,
         show_progressbar=False, rstate=np.random.default_rng(0))
    # The imported results count towards max_evals: only two more were evaluated.
    assert len(trials) == 5 and trials.tids == [0, 1, 2, 3, 4]
    assert trials.losses()[:3] == [1.0, 0.25, 2.25]


def test_a_saved_running_trial_is_run_again_on_resume(tmp_path: Any) -> None:
    """A file written while a trial ran must not leave it RUNNING forever after a resume."""
    import pickle

    import numpy as np

    from parzen import fmin, hp, rand

    trials = Trials()
    _insert(trials, [{"x": 0.1, "c": 1}])
    assert trials.store.claim(trials.exp_key, 0, OWNER, 60) is not None
    trials.refresh()
    path = tmp_path / "trials.pkl"
    path.write_bytes(pickle.dumps(trials))
    space = {"x": hp.uniform("x", 0, 1), "c": hp.choice("c", [0, 1])}
    fmin(lambda p: p["x"], space, algo=rand.suggest, max_evals=3, show_progressbar=False,
         trials_save_file=str(path), rstate=np.random.default_rng(0))
    resumed = pickle.loads(path.read_bytes())
    assert resumed.count_by_state_synced(JOB_STATE_DONE) == 3
    first = resumed.all_trials()[0]
    assert first.state is TrialState.DONE
    assert [a.outcome for a in first.history] == ["released: the run was saved while it ran"]


def test_trial_attachments_read_what_the_objective_attached() -> None:
    trials = Trials()

    def objective(x: float) -> dict[str, Any]:
        extra = {"attachments": {"model": b"\x00weights", "x": x}} if x > 0.5 else {}
        return {"loss": x, "status": STATUS_OK, **extra}

    fmin(objective, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=8, trials=trials,
         rstate=np.random.default_rng(3), show_progressbar=False)
    docs = trials.trials
    big = [d for d in docs if d["result"]["loss"] > 0.5]
    small = [d for d in docs if d["result"]["loss"] <= 0.5]
    assert big and small
    att = trials.trial_attachments(big[0])
    assert att["model"] == b"\x00weights" and att["x"] == big[0]["result"]["loss"]
    assert dict(trials.trial_attachments(small[0])) == {}
    # Writes go to trials.attachments under hyperopt's key, over what the objective returned.
    att["model"] = b"new"
    assert trials.trial_attachments(big[0])["model"] == b"new"
    assert trials.attachments[f"ATTACH::{big[0]['tid']}::model"] == b"new"
    del att["model"]
    assert att["model"] == b"\x00weights"
    with pytest.raises(KeyError, match="trial 99 is not among these trials"):
        trials.trial_attachments({"tid": 99})


def test_only_a_finished_evaluation_has_a_duration() -> None:
    from datetime import datetime, timedelta, timezone

    from parzen.trial import Trial

    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    ran = Trial("e", 0, TrialState.DONE, {"x": 0.1}, book_time=start,
                end_time=start + timedelta(seconds=1.5))
    assert ran.duration == 1.5
    for state in (TrialState.CANCEL, TrialState.RUNNING, TrialState.NEW):
        # A running trial the coordinator cancelled has both times, but it did not finish.
        stopped = Trial("e", 0, state, {"x": 0.1}, book_time=start,
                        end_time=start + timedelta(seconds=1.5))
        assert stopped.duration is None


def test_trials_fmin_is_quiet_unless_asked_as_in_hyperopt(
        capsys: pytest.CaptureFixture[str]) -> None:
    Trials().fmin(lambda p: float(p), hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=2,
                  rstate=np.random.default_rng(0))
    assert "best loss" not in capsys.readouterr().err
    Trials().fmin(lambda p: float(p), hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=2,
                  rstate=np.random.default_rng(0), verbose=True)
    assert "best loss" in capsys.readouterr().err
