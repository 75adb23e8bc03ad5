"""Worker slots: each thread of a worker gets a stable, readable slot number for trial owners."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import mongomock

from parzen import hp, processes
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
    # What tells this process apart from another with its pid: see parzen.processes.
    assert doc["owner"]["pid_ns"] == processes.pid_namespace()
    assert doc["owner"]["pid_start"] == processes.start_ticks(os.getpid())
    owner = store.get("owners", 0).owner
    assert owner == Owner.here("gpu-1", slot=1) and not owner.known_dead()


def test_a_worker_watches_the_experiments_it_runs_for_dead_siblings() -> None:
    store = InMemoryTrialStore()
    key = b"k" * 32
    space = {"x": hp.uniform("x", -1, 1), "k": hp.choice("k", [0, 1])}
    signed = payload.build((quadratic, space), key)
    store.put_experiment(Experiment(
        "siblings", space_fingerprint="x",
        objective=ObjectiveSpec(ObjectiveKind.PICKLE, sha256=signed.sha256,
                                fingerprint="f", inline=signed.data),
        settings={"lease_s": 600.0, "heartbeat_s": 5.0}))
    store.insert_new([Trial("siblings", tid, TrialState.NEW, {"x": 0.1, "k": 0})
                      for tid in range(2)])
    sibling = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = Owner("gpu-2", "h", sibling.pid, slot=1, pid_ns=processes.pid_namespace(),
                 pid_start=processes.start_ticks(sibling.pid))
    sibling.kill()
    sibling.wait()
    assert store.claim("siblings", 1, dead, lease_s=600) is not None
    runtime = WorkerRuntime(store, key, "gpu-1")
    republished: list[tuple[str, int]] = []
    try:
        assert runtime.siblings.check(lambda *m: republished.append(m)) == 0
        assert runtime.evaluate_trial("siblings", 0).status is OutcomeStatus.DONE
        expected = 1 if processes.pid_namespace() else 0  # no /proc: nothing is certain
        assert runtime.siblings.check(lambda *m: republished.append(m)) == expected
    finally:
        runtime.close()
    assert republished == [("siblings", 1)] * expected
