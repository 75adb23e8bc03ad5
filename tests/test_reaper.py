"""The coordinator's reaper and a worker's watch over its siblings: a trial whose worker is
seen dead is requeued at once, without waiting for its lease; only a worker in this pid
namespace can be seen dead."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys

import pytest

from parzen import processes
from parzen.runners.celery.reaper import reap
from parzen.store import Experiment, InMemoryTrialStore
from parzen.trial import Owner, Trial, TrialState
from parzen.worker.siblings import SiblingWatch

EXP = "reap"

pytestmark = pytest.mark.skipif(not processes.pid_namespace(),
                                reason="needs Linux /proc to see a process end")


def ended_worker() -> Owner:
    """A worker process of this host that was killed (kill -9) while running trials."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    owner = Owner("gpu-1", "this-host", child.pid, slot=1, pid_ns=processes.pid_namespace(),
                  pid_start=processes.start_ticks(child.pid))
    child.kill()
    child.wait()
    return owner


def test_a_dead_workers_trial_is_requeued_before_its_lease_expires(
        caplog: pytest.LogCaptureFixture) -> None:
    store = InMemoryTrialStore()
    store.put_experiment(Experiment(EXP))
    store.insert_new([Trial(EXP, tid, TrialState.NEW, {"x": tid}) for tid in range(4)])
    dead = ended_worker()
    elsewhere = dataclasses.replace(dead, worker="gpu-2", pid_ns="other-boot/4026531836")
    unknown = dataclasses.replace(dead, worker="old", pid_ns="", pid_start=0)
    alive = Owner.here("gpu-3", slot=1)
    claimed = [store.claim(EXP, tid, owner, lease_s=600)
               for tid, owner in enumerate([dead, elsewhere, unknown, alive])]
    lease_end = claimed[0].lease_expires if claimed[0] is not None else None
    assert lease_end is not None
    published: list[int] = []
    caplog.set_level(logging.WARNING, logger="parzen.runners.celery")

    assert reap(store, EXP, 3, published.append, store.find(EXP, [TrialState.RUNNING])) == 1

    assert published == [0]
    t = store.get(EXP, 0)
    assert t.state is TrialState.NEW and t.attempts == 1
    assert [(a.owner, a.outcome) for a in t.history] == [(dead, "worker died")]
    # Requeued before its lease expired: the reaper did not wait for it.
    assert t.history[0].end_time is not None and t.history[0].end_time < lease_end
    # A pid of another namespace, a pid without a namespace, a live process: not judged.
    assert [store.get(EXP, tid).state for tid in (1, 2, 3)] == [TrialState.RUNNING] * 3
    assert (f"trial 0 of 'reap': its worker gpu-1 slot 1 (pid {dead.pid} on this-host) died "
            "(its process is gone from this host), requeued for attempt 2 without waiting "
            "for its lease") in caplog.text

    # A view read before the trial moved on is harmless: the requeue is fenced on the token.
    stale_view = [t for t in store.find(EXP) if t.tid == 0]
    assert store.claim(EXP, 0, alive, lease_s=600) is not None
    assert reap(store, EXP, 3, published.append, stale_view) == 0
    assert store.get(EXP, 0).owner == alive and published == [0]


def test_a_trial_whose_workers_keep_dying_fails_after_max_attempts(
        caplog: pytest.LogCaptureFixture) -> None:
    store = InMemoryTrialStore()
    store.insert_new([Trial(EXP, 0, TrialState.NEW, {"x": 0})])
    published: list[int] = []
    for _ in range(2):
        assert store.claim(EXP, 0, ended_worker(), lease_s=600) is not None
        reap(store, EXP, 2, published.append, store.find(EXP, [TrialState.RUNNING]))
    t = store.get(EXP, 0)
    assert published == [0] and t.state is TrialState.ERROR
    assert t.error is not None and t.error.type == "WorkerDied"
    assert "died on its last allowed attempt (max_attempts=2): failed (WorkerDied)" \
        in caplog.text


def test_a_worker_requeues_the_trials_of_a_dead_sibling(
        caplog: pytest.LogCaptureFixture) -> None:
    # The coordinator runs elsewhere: the dead worker's siblings on its host see it die.
    store = InMemoryTrialStore()
    store.insert_new([Trial(EXP, tid, TrialState.NEW, {"x": tid}) for tid in range(3)])
    dead = ended_worker()
    assert store.claim(EXP, 0, dead, lease_s=600) is not None
    assert store.claim(EXP, 1, Owner.here("gpu-2", slot=1), lease_s=600) is not None
    watch = SiblingWatch(store, "gpu-2")
    republished: list[tuple[str, int]] = []
    assert watch.check(lambda *m: republished.append(m)) == 0, "watches no experiment yet"
    watch.watch(EXP, 3)
    caplog.set_level(logging.WARNING, logger="parzen.worker")

    assert watch.check(lambda *m: republished.append(m)) == 1

    assert republished == [(EXP, 0)]
    t = store.get(EXP, 0)
    assert t.state is TrialState.NEW and [a.outcome for a in t.history] == ["worker died"]
    assert store.get(EXP, 1).state is TrialState.RUNNING  # its own: alive
    assert f"its worker {dead} died (its process is gone from this host; seen by worker " \
           "gpu-2), requeued for attempt 2 without waiting for its lease" in caplog.text
    assert watch.check(lambda *m: republished.append(m)) == 0  # requeued once
