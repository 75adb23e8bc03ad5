"""``parzen status`` reads a live experiment whose trials change between its reads: what it
shows must still agree with itself (issue 18 item 8)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

from parzen.cli import _status
from parzen.store import Experiment, InMemoryTrialStore
from parzen.trial import Owner, Trial, TrialState

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
