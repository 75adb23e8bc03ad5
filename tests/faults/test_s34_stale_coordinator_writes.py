"""Scenario 34: a coordinator paused at its insert wakes after another took the experiment.

The paused coordinator checked its driver lease before it inserted (``before_insert``), then
stalled (SIGSTOP, a VM freeze) past the lease; another coordinator took the experiment over,
and the first one's late trial landed behind the new driver's back. The new driver refreshes
only the trials it knows, so it never counted that trial, and the experiment ran
``max_evals + 1`` trials: s09 once ended with 25 DONE for ``max_evals=24``.

The stall is played in this process, deterministically: the hook waits out the lease and
takes the experiment over for a stand-in driver at the exact point named, then lets the
insert go on. Before the store fenced inserts on the lease, the trial was written and
published, and a worker ran it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import parzen.runners.celery.dispatch as celery_dispatch
import parzen.runners.celery.driver as celery_driver
from parzen import fmin, tpe
from parzen.exceptions import ExperimentLocked
from parzen.mongoexp import MongoTrials
from parzen.store import DriverLease, MongoTrialStore
from parzen.trial import Trial, TrialState
from tests.support.fault_objectives import sleepy, space
from tests.support.faults import FaultCluster, wait_for

pytestmark = [pytest.mark.integration]

LEASE_S = 1.0
TAKER = DriverLease(holder="s34-the-new-driver", host="s34-another-host", pid=0,
                    started="2026-12-07T00:00:00+00:00")


class _StallingCollection:
    """The trials collection, with a pause just before the trial documents are written."""

    def __init__(self, inner: Any, pause: Callable[[list[int]], None]) -> None:
        self._inner = inner
        self._pause = pause

    def insert_many(self, docs: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
        self._pause([int(d["tid"]) for d in docs])
        return self._inner.insert_many(docs, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("where", ["before the insert", "between its check and its write"])
def test_s34_a_coordinator_paused_at_its_insert_writes_nothing_after_a_takeover(
        shared_cluster: FaultCluster, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    cluster = shared_cluster
    exp_key = "s34-" + ("before" if where.startswith("before") else "between")
    monkeypatch.setattr(celery_driver, "DRIVER_LEASE_S", LEASE_S)
    trials = MongoTrials(cluster.mongo_url, exp_key=exp_key, parallelism=1, **cluster.kwargs())
    store = trials.store
    assert isinstance(store, MongoTrialStore)
    stalled: list[int] = []

    def pause(tids: list[int]) -> None:
        # The third insert: two trials have run under this coordinator by then.
        if stalled or cluster.counts(exp_key)[TrialState.DONE] < 2:
            return
        stalled.extend(tids)

        def expired() -> bool:
            exp = cluster.store.get_experiment(exp_key)
            assert exp is not None and exp.driver is not None
            return exp.driver.expires is not None and exp.driver.expires <= cluster.store.now()
        wait_for(expired, 10, "this coordinator's driver lease to run out")
        assert cluster.store.acquire_driver(exp_key, TAKER, 60.0), "the takeover was refused"

    if where.startswith("before"):
        insert_new = store.insert_new

        def paused_insert(ts: list[Trial]) -> None:
            pause([t.tid for t in ts])
            insert_new(ts)
        monkeypatch.setattr(store, "insert_new", paused_insert)
    else:
        monkeypatch.setattr(store, "_trials", _StallingCollection(store._trials, pause))

    try:
        with pytest.raises(ExperimentLocked) as info:
            fmin(sleepy, space(0.1), algo=tpe.suggest, max_evals=8, trials=trials,
                 show_progressbar=False, rstate=np.random.default_rng(34))
    finally:
        trials.close()
    assert stalled, "the coordinator never reached its third insert"
    assert f"lost the driver lease on {exp_key!r}" in str(info.value)

    # Nothing of the late insert is in the store, nor is anything published for it left to
    # run: the new driver alone decides how many trials the experiment runs.
    wait_for(lambda: cluster.redis.queue_length(cluster.queue) == 0
             and cluster.redis.unacked() == 0 and not cluster.running(exp_key), 30,
             "the workers to go idle")
    late = [t.tid for t in cluster.trials(exp_key) if t.tid in stalled]
    assert late == [], f"trials {late} were written after the takeover"
    counts = cluster.counts(exp_key)
    assert counts[TrialState.DONE] == 2 and sum(counts.values()) == 2, counts
    # The refused run left the new driver's lease alone, and its store object unfenced.
    exp = cluster.store.get_experiment(exp_key)
    assert exp is not None and exp.driver is not None and exp.driver.holder == TAKER.holder
    assert store._fences() == {}


@pytest.mark.timeout(120)
def test_s34_a_coordinator_paused_while_another_took_the_experiment_and_let_it_go_stops(
        shared_cluster: FaultCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """Paused in its wait, the coordinator sleeps through another run that takes the
    experiment and lets it go (a resume that finished, or ``parzen requeue``). Its lease is
    free when it wakes; renewing it by taking it again, as before, it drove on from what it
    read before the pause: the other run's trials uncounted, requeued ones cancelled."""
    cluster = shared_cluster
    exp_key = "s34-let-go"
    monkeypatch.setattr(celery_driver, "DRIVER_LEASE_S", LEASE_S)
    trials = MongoTrials(cluster.mongo_url, exp_key=exp_key, parallelism=1, **cluster.kwargs())
    top: list[int] = []
    wait = celery_dispatch.Dispatcher.wait

    def paused_wait(self: celery_dispatch.Dispatcher) -> None:
        if not top and cluster.counts(exp_key)[TrialState.DONE] >= 2:
            top.append(max(t.tid for t in cluster.trials(exp_key)))

            def expired() -> bool:
                exp = cluster.store.get_experiment(exp_key)
                assert exp is not None and exp.driver is not None
                return exp.driver.expires is not None \
                    and exp.driver.expires <= cluster.store.now()
            wait_for(expired, 10, "this coordinator's driver lease to run out")
            assert cluster.store.acquire_driver(exp_key, TAKER, 60.0)
            cluster.store.release_driver(exp_key, TAKER.holder)
        wait(self)
    monkeypatch.setattr(celery_dispatch.Dispatcher, "wait", paused_wait)

    try:
        with pytest.raises(ExperimentLocked, match=f"lost the driver lease on {exp_key!r}"):
            fmin(sleepy, space(0.1), algo=tpe.suggest, max_evals=8, trials=trials,
                 show_progressbar=False, rstate=np.random.default_rng(34))
    finally:
        trials.close()
    assert top, "the coordinator never paused"
    late = [t.tid for t in cluster.trials(exp_key) if t.tid > top[0]]
    assert late == [], f"trials {late} were inserted after the experiment was taken"


@pytest.mark.timeout(120)
def test_s34_a_coordinator_paused_on_its_way_to_close_leaves_the_new_drivers_queue_alone(
        shared_cluster: FaultCluster, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """The run ended (max_evals); paused before it cancelled its queue, the coordinator
    wakes after another took the experiment and queued a trial of its own. Cancelling the
    queue then would cancel the new driver's trial: the lease is asked for again first."""
    cluster = shared_cluster
    exp_key = "s34-close"
    monkeypatch.setattr(celery_driver, "DRIVER_LEASE_S", LEASE_S)
    trials = MongoTrials(cluster.mongo_url, exp_key=exp_key, parallelism=1, **cluster.kwargs())
    still_held = celery_driver.Driver.still_held
    queued: list[int] = []

    def paused(self: celery_driver.Driver) -> bool:
        def expired() -> bool:
            exp = cluster.store.get_experiment(exp_key)
            assert exp is not None and exp.driver is not None
            return exp.driver.expires is not None and exp.driver.expires <= cluster.store.now()
        wait_for(expired, 10, "this coordinator's driver lease to run out")
        assert cluster.store.acquire_driver(exp_key, TAKER, 60.0)
        # The new driver's own queued trial (not published: no worker takes it here).
        tid = 1000
        cluster.store.insert_new([Trial(exp_key, tid, TrialState.NEW, {"x": 0.5, "y": 0.5})])
        queued.append(tid)
        return still_held(self)
    monkeypatch.setattr(celery_driver.Driver, "still_held", paused)

    try:
        fmin(sleepy, space(0.1), algo=tpe.suggest, max_evals=3, trials=trials,
             show_progressbar=False, rstate=np.random.default_rng(34))
    finally:
        trials.close()
    assert queued, "the coordinator never reached its close"
    t = cluster.store.get(exp_key, queued[0])
    assert t is not None and t.state is TrialState.NEW, "the new driver's trial was cancelled"
    assert "another coordinator took the experiment over" in caplog.text
    exp = cluster.store.get_experiment(exp_key)
    assert exp is not None and exp.driver is not None and exp.driver.holder == TAKER.holder
