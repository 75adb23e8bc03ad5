"""``parzen status`` on a live experiment: whose trials change between its reads, yet what it
shows agrees with itself (issue 18 item 8); whose workers die or stall, and then it marks
them and its ETA waits for their trials (item 4)."""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from parzen import processes
from parzen.cli import _status
from parzen.cli._status import WorkerState
from parzen.store import DriverLease, Experiment, InMemoryTrialStore
from parzen.store._mongo import MongoTrialStore
from parzen.trial import Owner, Trial, TrialState
from tests.support.cli import Cli, finished_experiment

EXP = "live"
T0 = datetime(2030, 1, 1, tzinfo=timezone.utc)
FUTURE = re.compile(r"\bin [0-9]")  # how a time to come would read: "in 0.19s"


class BusyStore(InMemoryTrialStore):
    """A store whose trials move on between any two reads, as a cluster's do: ``step`` runs
    before each read a caller makes (not before the reads the store makes of itself), and
    the clock ticks 50 ms per read."""

    def __init__(self) -> None:
        self.clock = T0
        super().__init__(clock=lambda: self.clock)
        self.step: Callable[[], None] = lambda: None
        self._depth = 0

    @contextmanager
    def _read(self) -> Iterator[None]:
        self._depth += 1
        try:
            if self._depth == 1:
                self.clock += timedelta(milliseconds=50)
                self.step()
            yield
        finally:
            self._depth -= 1

    def now(self) -> datetime:
        with self._read():
            return super().now()

    def get_experiment(self, exp_key: str) -> Experiment | None:
        with self._read():
            return super().get_experiment(exp_key)

    def count_by_state(self, exp_key: str) -> dict[TrialState, int]:
        with self._read():
            return super().count_by_state(exp_key)

    def census(self, exp_key: str, states: Any) -> tuple[dict[TrialState, int], list[Trial]]:
        with self._read():
            return super().census(exp_key, states)

    def find(self, exp_key: str, *args: Any, **kwargs: Any) -> list[Trial]:
        with self._read():
            return super().find(exp_key, *args, **kwargs)


def running_cluster(n: int = 6) -> tuple[BusyStore, dict[int, str]]:
    """``n`` trials running on three workers of two slots, and their claim tokens."""
    store = BusyStore()
    store.put_experiment(Experiment(EXP, max_evals=40, settings={"heartbeat_s": 10.0}))
    store.insert_new([Trial(EXP, tid, TrialState.NEW, {"x": tid / 10}) for tid in range(n)])
    tokens = {}
    for tid in range(n):
        t = store.claim(EXP, tid, Owner(f"gpu-{tid // 2 + 1}", "node", 100 + tid // 2,
                                        slot=tid % 2 + 1), lease_s=60)
        assert t is not None and t.claim_token
        tokens[tid] = t.claim_token
    return store, tokens


def test_header_and_running_table_count_the_same_trials() -> None:
    store, tokens = running_cluster(12)
    left = sorted(tokens)

    def one_finishes() -> None:  # between any two reads, a running trial finishes
        if left:
            tid = left.pop(0)
            store.finish(EXP, tid, tokens[tid], TrialState.DONE, {"status": "ok", "loss": 1.0})

    store.step = one_finishes
    snap = _status.gather(store, Experiment(EXP), 600.0)
    assert snap.counts[TrialState.RUNNING] == len(snap.running)
    text = _status.render(snap)
    header = int(re.search(r"running (\d+)", text).group(1))  # type: ignore[union-attr]
    table = int(re.search(r"running trials \((\d+)\)", text).group(1))  # type: ignore[union-attr]
    assert header == table == len(snap.running) > 0
    assert snap.to_dict()["running"] == len(snap.to_dict()["running_trials"])


def test_last_seen_is_never_in_the_future() -> None:
    store, tokens = running_cluster()

    def all_beat() -> None:  # the workers heartbeat while status reads
        for tid, token in tokens.items():
            store.heartbeat(EXP, tid, token, 60)

    store.step = all_beat
    snap = _status.gather(store, Experiment(EXP), 600.0)
    assert snap.workers and all(w.last_seen is not None and w.last_seen <= snap.now
                                for w in snap.workers)
    assert all(t.heartbeat_time is not None and t.heartbeat_time <= snap.now
               for t in snap.running)
    text = _status.render(snap)
    assert not FUTURE.search(text) and "clock " not in text
    assert snap.clock_ahead_s == 0.0


def test_a_clock_running_ahead_is_stated_and_times_count_from_it() -> None:
    # A trial written by a process whose clock ran 5 s ahead (a file copied from another
    # machine, a hand edit): its heartbeat is 5 s after the store's "now".
    store, _ = running_cluster(2)
    beat = store.clock + timedelta(seconds=5)
    store.restore([dataclasses.replace(store.get(EXP, 1), heartbeat_time=beat)])
    snap = _status.gather(store, Experiment(EXP), 600.0)
    assert snap.now == beat and 4.5 < snap.clock_ahead_s < 5.0
    text = _status.render(snap)
    assert "clock        the newest trial time is 4." in text
    assert not FUTURE.search(text)
    assert all(w.last_seen is not None and w.last_seen <= snap.now for w in snap.workers)


def stalled_cluster() -> tuple[BusyStore, dict[int, str]]:
    """A live run (its coordinator is this process): four trials finished at a fast pace,
    gpu-1 and gpu-2 heartbeat, gpu-3's heartbeats stopped 25 s ago (heartbeat 10 s, lease
    60 s)."""
    store, tokens = running_cluster(10)
    store.acquire_driver(EXP, DriverLease("coord", socket.gethostname(), os.getpid(), "t0"),
                         600)
    store.clock += timedelta(seconds=2)
    for tid in (6, 7, 8, 9):  # two trials of each slot of gpu-4 and gpu-5: done in 2 s
        store.finish(EXP, tid, tokens.pop(tid), TrialState.DONE, {"status": "ok", "loss": 1.0})
    store.clock += timedelta(seconds=25)
    for tid in (0, 1, 2, 3):
        store.heartbeat(EXP, tid, tokens[tid], 60)
    return store, tokens


def typical(snap: _status.Snapshot) -> float:
    """The median duration of the window's finished trials (about 2 s here)."""
    durations = sorted(t.duration for t in snap.recent if t.duration is not None)
    assert len(durations) == 4 and 2.0 <= durations[0] <= durations[-1] < 3.0
    return durations[2]


def test_a_worker_whose_heartbeats_stopped_is_stale_and_the_eta_waits_for_its_trials(
        ) -> None:
    store, _ = stalled_cluster()
    snap = _status.gather(store, Experiment(EXP), 600.0)
    state = {w.worker: w.state for w in snap.workers}
    assert state == {"gpu-1": WorkerState.BEATING, "gpu-2": WorkerState.BEATING,
                     "gpu-3": WorkerState.STALE, "gpu-4": WorkerState.IDLE,
                     "gpu-5": WorkerState.IDLE}
    assert [t.tid for t in snap.held] == [4, 5]
    # 36 trials left at ~8 a minute would be ~4.5 min; but 4 and 5 cannot finish before
    # their lease runs out (in ~33 s) and they run again (the median trial: 2 s).
    pace = 60.0 * 36 / snap.per_minute
    lease_left = max((store.get(EXP, tid).lease_expires - snap.now).total_seconds()  # type: ignore[operator]
                     for tid in (4, 5))
    assert snap.held_s == pytest.approx(lease_left + typical(snap))
    assert snap.eta_s == pytest.approx(max(pace, snap.held_s))
    text = _status.render(snap)
    assert re.search(r"gpu-3 +node +2 +0 +2\ds ago +STALE", text)
    assert "gpu-3 is STALE: no heartbeat for 2" in text
    assert "over 2 heartbeat intervals of 10s" in text
    assert "its trials (4, 5) are requeued when their lease runs out, in 3" in text
    doc = snap.to_dict()
    assert doc["held_by_lost_workers"] == [4, 5]
    assert {w["worker"]: w["state"] for w in doc["workers"]}["gpu-3"] == "stale"


def test_the_eta_counts_the_lease_of_a_stale_worker_when_it_is_the_longer_wait() -> None:
    store, tokens = running_cluster(4)
    store.put_experiment(Experiment(EXP, max_evals=5, settings={"heartbeat_s": 10.0}))
    store.acquire_driver(EXP, DriverLease("coord", socket.gethostname(), os.getpid(), "t0"),
                         600)
    store.clock += timedelta(seconds=1)
    for tid in (0, 1, 2):
        store.finish(EXP, tid, tokens.pop(tid), TrialState.DONE, {"status": "ok", "loss": 1.0})
    store.clock += timedelta(seconds=29)  # trial 3's worker, gpu-2, fell silent 30 s ago
    snap = _status.gather(store, Experiment(EXP), 600.0)
    # 2 trials left at 6 a minute: 20 s; but trial 3 waits 30 s for its lease, then runs.
    assert snap.eta_s == pytest.approx(snap.held_s) and snap.eta_s > 30.0
    assert "1 of them held by stale or dead workers finish no sooner" in _status.render(snap)


@pytest.mark.skipif(not processes.pid_namespace(), reason="needs Linux /proc")
def test_a_worker_seen_dead_is_marked_dead_and_its_trials_wait_for_no_lease() -> None:
    store, tokens = stalled_cluster()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = Owner("gpu-3", "node", child.pid, slot=1, pid_ns=processes.pid_namespace(),
                 pid_start=processes.start_ticks(child.pid))
    child.kill()
    child.wait()
    for tid in (4, 5):
        store.restore([dataclasses.replace(store.get(EXP, tid), owner=dead)])
    snap = _status.gather(store, Experiment(EXP), 600.0)
    assert {w.worker: w.state for w in snap.workers}["gpu-3"] is WorkerState.DEAD
    assert snap.held_s == typical(snap) > 0  # no lease to wait for: a trial's duration
    text = _status.render(snap)
    assert "gpu-3 is DEAD: its process on node has exited; its trials (4, 5) are requeued " \
           "without waiting for their lease" in text


def test_experiments_shows_no_activity_in_the_future(
        cli: Cli, fresh_mongo: tuple[str, MongoTrialStore]) -> None:
    url, store = fresh_mongo
    finished_experiment(store, "run", n=2)
    # A trial that ended "later" than this process's estimate of the store's clock.
    ahead = store.now() + timedelta(seconds=5)
    store._trials.update_one({"exp_key": "run", "tid": 1}, {"$set": {"end_time": ahead}})
    text = cli("experiments", "--mongo", url)
    assert not FUTURE.search(text) and "0.00s ago" in text
