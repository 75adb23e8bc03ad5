"""Racing claims: every trial is claimed exactly once, by processes and by threads."""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from typing import Any

import pytest
from pymongo import MongoClient

from parzen.store._mongo import MongoTrialStore
from parzen.trial import Owner, TrialState
from tests.support import mongo as mf
from tests.support import race_worker

from .contract import new

N_WORKERS = 8


def _assert_each_claimed_once(store: MongoTrialStore, exp_key: str, n: int,
                              wins: dict[str, list[int]]) -> None:
    counts = Counter(tid for won in wins.values() for tid in won)
    assert sorted(counts) == list(range(n)), "some trial was never claimed"
    assert max(counts.values()) == 1, f"claimed twice: {[t for t, c in counts.items() if c > 1]}"
    by_tid = {tid: worker for worker, won in wins.items() for tid in won}
    for t in store.find(exp_key):
        assert t.state is TrialState.RUNNING and t.attempts == 1
        assert t.owner is not None and t.owner.worker == by_tid[t.tid]


def _context() -> multiprocessing.context.BaseContext:
    # Never fork this process: it runs the wire server's threads. A forkserver imports
    # parzen once and forks the workers from that (spawning 8 interpreters that each import
    # numpy and scipy takes ~5 s on two cores); spawn where there is no forkserver.
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["parzen.store._mongo"])
    return ctx


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_processes_over_the_wire_claim_each_trial_once(wire_client: MongoClient[Any]) -> None:
    n = 500
    with mf.throwaway_database(wire_client) as db:
        store = MongoTrialStore(db)
        store.insert_new(new(*range(n), exp_key="race"))
        host, port = wire_client.address  # type: ignore[misc]
        url = f"mongodb://{host}:{port}/{db.name}?directConnection=true"
        ctx = _context()
        ready, results, start = ctx.Queue(), ctx.Queue(), ctx.Event()
        procs = [ctx.Process(target=race_worker.claim_all,
                             args=(url, "race", n, i, ready, start, results))
                 for i in range(N_WORKERS)]
        for p in procs:
            p.start()
        try:
            for _ in procs:
                ready.get(timeout=60)
            start.set()  # all connected: now they race
            wins = {f"w{i}": won for i, won in (results.get(timeout=60) for _ in procs)}
        finally:
            for p in procs:
                p.join(timeout=10)
                if p.is_alive():
                    p.kill()
        assert all(p.exitcode == 0 for p in procs)
        assert sum(len(w) > 0 for w in wins.values()) > 1, "no race happened"
        _assert_each_claimed_once(store, "race", n, wins)


def test_threads_over_locked_mongomock_claim_each_trial_once() -> None:
    n = 100  # in-process mongomock scans every document: keep it small
    db, lock = mf.mongomock_database()
    store = MongoTrialStore(db, lock=lock)
    store.insert_new(new(*range(n), exp_key="race"))
    wins: dict[str, list[int]] = {}
    barrier = threading.Barrier(N_WORKERS)

    def worker(i: int) -> None:
        owner = Owner(f"w{i}", "h", i)
        order = range(n) if i % 2 == 0 else range(n - 1, -1, -1)
        barrier.wait()
        wins[owner.worker] = [t for t in order if store.claim("race", t, owner, 300)]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(N_WORKERS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    _assert_each_claimed_once(store, "race", n, wins)
