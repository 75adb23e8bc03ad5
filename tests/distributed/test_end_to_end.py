"""fmin with MongoTrials against real worker processes, Redis and the wire test server."""

from __future__ import annotations

import numpy as np
import pytest

from parzen import fmin, hp, tpe
from parzen.mongoexp import MongoTrials
from parzen.trial import TrialState
from tests.support.objectives import quadratic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SPACE = {"x": hp.uniform("x", -1, 1), "k": hp.choice("k", [0, 1])}


def test_two_workers_finish_exactly_max_evals(cluster):
    for _ in range(2):
        cluster.wait_ready(cluster.start_worker(concurrency=2))
    trials = MongoTrials(cluster.mongo_url, exp_key="e2e", parallelism=4,
                         **cluster.trials_kwargs())
    best = fmin(quadratic, SPACE, algo=tpe.suggest, max_evals=24, trials=trials,
                show_progressbar=False, rstate=np.random.default_rng(0))

    counts = trials.state_counts()
    assert counts[TrialState.DONE] == 24
    assert counts[TrialState.NEW] == counts[TrialState.RUNNING] == 0
    assert best["k"] == 0 and abs(best["x"] - 0.3) < 0.3
    # One execution per trial, and each trial's document matches the schema.
    assert len(cluster.executions()) == 24
    docs = list(cluster.store._trials.find({"exp_key": "e2e"}))
    assert sorted(d["tid"] for d in docs) == list(range(24))
    workers = set()
    for d in docs:
        assert d["state"] == "done"
        assert d["attempts"] == 1
        assert set(d["params"]) <= {"x", "k"} and isinstance(d["params"]["x"], float)
        assert d["result"]["status"] == "ok" and isinstance(d["result"]["loss"], float)
        assert d["misc"]["vals"]["x"] == [d["params"]["x"]]
        assert {"worker", "host", "pid"} <= set(d["owner"])
        assert d["book_time"] <= d["end_time"] and d["duration_s"] >= 0
        assert d["claim_token"]
        workers.add(d["owner"]["pid"])
    assert len(workers) == 2, "both worker processes should have taken trials"
    exp = cluster.store._experiments.find_one({"_id": "e2e"})
    assert exp["next_tid"] == 24 and exp["driver"] is None
    assert exp["objective"]["kind"] == "pickle"


def test_restart_resumes_without_reusing_tids_or_points(cluster):
    cluster.wait_ready(cluster.start_worker(concurrency=2))
    kw = cluster.trials_kwargs()
    first = MongoTrials(cluster.mongo_url, exp_key="resume", parallelism=2, **kw)
    fmin(quadratic, SPACE, algo=tpe.suggest, max_evals=8, trials=first,
         show_progressbar=False, rstate=np.random.default_rng(1))
    first.close()
    again = MongoTrials(cluster.mongo_url, exp_key="resume", parallelism=2, **kw)
    fmin(quadratic, SPACE, algo=tpe.suggest, max_evals=16, trials=again,
         show_progressbar=False, rstate=np.random.default_rng(1))
    assert again.state_counts()[TrialState.DONE] == 16
    assert again.tids == list(range(16))
    xs = [d["misc"]["vals"]["x"][0] for d in again.trials]
    assert len(set(xs)) == 16, "a resumed run must not suggest an already-tried point"
    assert len(cluster.executions()) == 16


def test_duplicate_message_runs_the_objective_once(cluster):
    from parzen.worker.celery_app import TASK_NAME, make_app

    for _ in range(2):
        cluster.wait_ready(cluster.start_worker(concurrency=2))
    trials = MongoTrials(cluster.mongo_url, exp_key="dup", parallelism=1,
                         **cluster.trials_kwargs())
    fmin(quadratic, SPACE, algo=tpe.suggest, max_evals=1, trials=trials,
         show_progressbar=False, rstate=np.random.default_rng(2))
    # Put a NEW trial in by hand and deliver its message four times at once.
    from parzen.trial import Trial

    tid = cluster.store.allocate_tids("dup", 1)[0]
    cluster.store.insert_new([Trial("dup", tid, TrialState.NEW, {"x": 0.125, "k": 0})])
    app = make_app(cluster.redis_url, queue=cluster.queue)
    for _ in range(4):
        app.send_task(TASK_NAME, args=["dup", tid], queue=cluster.queue)
    deadline = __import__("time").monotonic() + 30
    while cluster.store.get("dup", tid).state is not TrialState.DONE:
        assert __import__("time").monotonic() < deadline, "the trial never finished"
        __import__("time").sleep(0.05)
    __import__("time").sleep(1.0)  # let the three duplicate deliveries be consumed
    assert cluster.executions("run-0.125") == cluster.executions("run-0.125")[:1]
    assert len(cluster.executions("run-0.125")) == 1
    assert cluster.store.get("dup", tid).attempts == 1


def test_objective_by_import_path_is_imported_not_unpickled(cluster):
    cluster.wait_ready(cluster.start_worker(concurrency=2))
    trials = MongoTrials(cluster.mongo_url, exp_key="imported", parallelism=2,
                         objective="tests.support.objectives:quadratic", **cluster.trials_kwargs())
    fmin(quadratic, SPACE, algo=tpe.suggest, max_evals=6, trials=trials,
         show_progressbar=False, rstate=np.random.default_rng(4))
    assert trials.state_counts()[TrialState.DONE] == 6
    exp = cluster.store._experiments.find_one({"_id": "imported"})
    assert exp["objective"]["kind"] == "import"
    assert exp["objective"]["path"] == "tests.support.objectives:quadratic"
    assert "inline" not in exp["objective"] and "payload_id" not in exp["objective"]
    trials.close()


def test_import_path_must_name_the_function_given_to_fmin(cluster):
    from parzen.exceptions import ConfigError

    trials = MongoTrials(cluster.mongo_url, exp_key="mismatch",
                         objective="tests.support.objectives:raises", **cluster.trials_kwargs())
    with pytest.raises(ConfigError, match="tests.support.objectives:raises"):
        fmin(quadratic, SPACE, max_evals=2, trials=trials, show_progressbar=False)
    trials.close()


def test_workers_wake_the_coordinator_when_trials_finish(cluster, monkeypatch):
    # Workers push each finished tid to Redis (parzen.worker.wakeup); the coordinator's wait returns
    # on those pushes instead of sleeping out its poll interval. Counted, not timed.
    from parzen.worker.wakeup import FinishedSignal

    woken = []
    real = FinishedSignal.wait

    def spy(self, exp_key, timeout_s):
        got = real(self, exp_key, timeout_s)
        woken.append(got)
        return got

    monkeypatch.setattr(FinishedSignal, "wait", spy)
    cluster.wait_ready(cluster.start_worker(concurrency=2))
    trials = MongoTrials(cluster.mongo_url, exp_key="wake", parallelism=2,
                         **cluster.trials_kwargs(poll_interval=5.0))
    fmin(quadratic, SPACE, algo=tpe.suggest, max_evals=8, trials=trials,
         show_progressbar=False, rstate=np.random.default_rng(2))
    assert trials.state_counts()[TrialState.DONE] == 8
    # With a 5 s poll interval, eight trials in well under the 120 s limit need wake-ups.
    assert sum(woken) >= 4
