"""The coordinator's guards: one driver per experiment, no silent change of space or
objective, and payloads that are verified before anything is unpickled."""

from __future__ import annotations

import os
import pickle
import socket

import numpy as np
import pytest

import parzen.mongoexp as distributed
import parzen.runners.celery.driver as celery_driver
from parzen import fmin, hp, processes, tpe
from parzen.exceptions import ConfigError, ExperimentLocked, SpaceChanged
from parzen.execution import payload
from parzen.execution.run import OutcomeStatus
from parzen.store import DriverLease, Experiment, ObjectiveKind, ObjectiveSpec
from parzen.trial import Trial, TrialState
from parzen.worker.runtime import WorkerRuntime
from tests.support.cluster import SECRET
from tests.support.objectives import quadratic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SPACE = {"x": hp.uniform("x", -1, 1), "k": hp.choice("k", [0, 1])}


def run(cluster, exp_key, space=SPACE, fn=quadratic, n=3, **kw):
    trials = distributed.MongoTrials(cluster.mongo_url, exp_key=exp_key, parallelism=2,
                                     **cluster.trials_kwargs(**kw))
    try:
        fmin(fn, space, algo=tpe.suggest, max_evals=n, trials=trials, show_progressbar=False,
             rstate=np.random.default_rng(0))
    finally:
        trials.close()
    return trials


def test_second_coordinator_is_refused_then_takes_over(cluster, monkeypatch):
    monkeypatch.setattr(celery_driver, "DRIVER_LEASE_S", 1.5)
    store = cluster.store
    store.put_experiment(Experiment("locked"))
    other = DriverLease(holder="abc123", host="gpu-node-7", pid=4242, started="earlier")
    assert store.acquire_driver("locked", other, 1.5)
    with pytest.raises(ExperimentLocked, match=r"pid 4242 on host 'gpu-node-7'"):
        run(cluster, "locked")
    assert store.count_by_state("locked")[TrialState.NEW] == 0, "nothing may be written"
    # Once the other driver's lease runs out, a new coordinator takes over.
    cluster.wait_ready(cluster.start_worker())
    import time

    time.sleep(1.6)
    trials = run(cluster, "locked")
    assert trials.state_counts()[TrialState.DONE] == 3


def test_dead_coordinator_on_this_host_is_taken_over_at_once(cluster):
    cluster.wait_ready(cluster.start_worker())
    store = cluster.store
    store.put_experiment(Experiment("crashed"))
    dead_pid = 2**22 + 12345  # above the default pid_max: no such process
    holder = DriverLease(holder="dead", host=socket.gethostname(), pid=dead_pid, started="t",
                         pid_ns=processes.pid_namespace(), pid_start=1)
    assert store.acquire_driver("crashed", holder, 600)
    trials = run(cluster, "crashed")
    assert trials.state_counts()[TrialState.DONE] == 3


def test_changed_space_or_objective_is_refused(cluster):
    cluster.wait_ready(cluster.start_worker(concurrency=2))
    run(cluster, "fixed")
    changed = {**SPACE, "y": hp.uniform("y", 0, 1)}
    with pytest.raises(SpaceChanged, match=r"added \['y'\]"):
        run(cluster, "fixed", space=changed, n=6)

    def other_objective(p):
        return p["x"] ** 2

    with pytest.raises(SpaceChanged, match="objective fingerprint"):
        run(cluster, "fixed", fn=other_objective, n=6)
    # Asked for explicitly, the resume goes ahead.
    trials = run(cluster, "fixed", space=changed, n=6, allow_space_change=True)
    assert trials.state_counts()[TrialState.DONE] == 6


def test_missing_key_and_broker_are_refused_before_anything_is_written(cluster, monkeypatch):
    monkeypatch.delenv("PARZEN_SECRET", raising=False)
    monkeypatch.delenv("PARZEN_SECRET_FILE", raising=False)
    kw = cluster.trials_kwargs()
    kw.pop("secret")
    trials = distributed.MongoTrials(cluster.mongo_url, exp_key="nokey", **kw)
    with pytest.raises(ConfigError, match="PARZEN_SECRET"):
        fmin(quadratic, SPACE, max_evals=2, trials=trials, show_progressbar=False)
    monkeypatch.delenv("PARZEN_BROKER_URL", raising=False)
    kw = cluster.trials_kwargs(broker=None)
    trials = distributed.MongoTrials(cluster.mongo_url, exp_key="nobroker", **kw)
    with pytest.raises(ConfigError, match="broker"):
        fmin(quadratic, SPACE, max_evals=2, trials=trials, show_progressbar=False)
    assert cluster.store.get_experiment("nokey") is None
    assert cluster.store.get_experiment("nobroker") is None
    trials.close()


class _Bomb:
    """Unpickling this creates a file: proof that bytes were unpickled."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_tampered_payload_is_rejected_before_unpickling(cluster, tmp_path):
    store = cluster.store
    proof = tmp_path / "unpickled"
    good = payload.build((quadratic, SPACE), SECRET.encode())
    # An attacker with database access swaps the pickle but cannot sign it.
    header_len = int.from_bytes(good.data[4:8], "big")
    evil = good.data[:8 + header_len + 32] + pickle.dumps(_Bomb(str(proof)))
    store.put_experiment(Experiment(
        "tampered", space_fingerprint="x",
        objective=ObjectiveSpec(ObjectiveKind.PICKLE, sha256="evil", fingerprint="evil",
                                inline=evil),
        settings={"lease_s": 3.0, "heartbeat_s": 0.5}))
    store.insert_new([Trial("tampered", 0, TrialState.NEW, {"x": 0.1, "k": 0})])
    runtime = WorkerRuntime(store, SECRET.encode(), "test")
    try:
        outcome = runtime.evaluate_trial("tampered", 0)
    finally:
        runtime.close()
    # The payload, not the trial, is bad: the trial goes back uncounted, and the reason is
    # kept for the coordinator to stop the run with.
    assert outcome.status is OutcomeStatus.UNLOADABLE
    t = store.get("tampered", 0)
    assert t.state is TrialState.NEW and t.error is None and t.attempts == 0
    reason = t.history[-1].outcome
    assert reason.startswith("objective unloadable: PayloadSignatureError: ")
    assert "tampered" in reason and "Nothing was unpickled" in reason
    assert not proof.exists()
    assert not os.listdir(cluster.side_effects)
