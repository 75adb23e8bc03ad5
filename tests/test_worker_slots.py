"""Worker slots: each thread of a worker gets a stable, readable slot number for trial owners."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import mongomock

from parzen import hp
from parzen.execution import payload
from parzen.execution.run import OutcomeStatus
from parzen.store import (
    Experiment,
    InMemoryTrialStore,
    MongoTrialStore,
    ObjectiveKind,
    ObjectiveSpec,
)
from parzen.trial import Owner, Trial, TrialState
from parzen.worker.runtime import WorkerRuntime
from tests.support.objectives import quadratic


def test_each_thread_keeps_one_slot_and_slots_are_numbered_from_one() -> None:
    runtime = WorkerRuntime(InMemoryTrialStore(), b"k" * 32, "gpu-1")
    barrier = threading.Barrier(3)

    def twice() -> tuple[int, int]:
        first = runtime._slot()
        barrier.wait()  # all three threads hold a slot before any asks again
        return first, runtime._slot()

    with ThreadPoolExecutor(3) as pool:
        pairs = list(pool.map(lambda _: twice(), range(3)))
    assert all(a == b for a, b in pairs)
    assert sorted(a for a, _ in pairs) == [1, 2, 3]
    runtime.close()


def test_a_trial_owner_is_the_worker_name_and_its_slot() -> None:
    # What an operator queries in mongosh: {"owner.worker": "gpu-1"} finds the trials of
    # worker gpu-1, whichever slot ran them.
    store = MongoTrialStore(mongomock.MongoClient(tz_aware=True)["owners"],
                            lock=threading.Lock())
    key = b"k" * 32
    space = {"x": hp.uniform("x", -1, 1), "k": hp.choice("k", [0, 1])}
    signed = payload.build((quadratic, space), key)
    store.put_experiment(Experiment(
        "owners", space_fingerprint="x",
        objective=ObjectiveSpec(ObjectiveKind.PICKLE, sha256=signed.sha256,
                                fingerprint="f", inline=signed.data),
        settings={"lease_s": 30.0, "heartbeat_s": 5.0}))
    store.insert_new([Trial("owners", 0, TrialState.NEW, {"x": 0.1, "k": 0})])
    runtime = WorkerRuntime(store, key, "gpu-1")
    try:
        outcome = runtime.evaluate_trial("owners", 0)
    finally:
        runtime.close()
    assert outcome.status is OutcomeStatus.DONE
    [doc] = store._db.trials.find({"exp_key": "owners", "owner.worker": "gpu-1"})
    assert doc["owner"]["slot"] == 1 and doc["owner"]["pid"] == os.getpid()
    assert store.get("owners", 0).owner == Owner("gpu-1", runtime.host, os.getpid(), slot=1)
