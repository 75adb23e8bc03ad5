"""The store contract's ``fence_inserts`` on every backend: a store object fenced for a driver
lease holder inserts an experiment's trials only while that holder drives it, so a
coordinator paused past its lease cannot add a trial the new driver never counts (scenario
34; s09 once ended with 25 DONE for ``max_evals=24``)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pymongo.errors import AutoReconnect

from parzen.exceptions import ExperimentLocked
from parzen.store import DriverLease, Experiment, MongoTrialStore, TrialStore
from parzen.store._documents import driver_to_doc, to_millis
from parzen.store.retry import patiently
from parzen.trial import Owner, Trial, TrialState
from tests.support import mongo as mf

EXP = "fenced"
OLD = DriverLease(holder="run-old", host="h", pid=1, started="t0")
NEW = DriverLease(holder="run-new", host="h2", pid=2, started="t1")


def new_trials(store: TrialStore, *tids: int, exp_key: str = EXP) -> list[Trial]:
    return [Trial(exp_key=exp_key, tid=t, state=TrialState.NEW, params={"x": t},
                  created=store.now(), result={"status": "new"}) for t in tids]


def test_a_fenced_insert_goes_on_while_its_holder_drives_and_is_refused_after_a_takeover(
        store: TrialStore, advance: Callable[[float], None]) -> None:
    store.put_experiment(Experiment(EXP))
    assert store.acquire_driver(EXP, OLD, 0.2)
    store.fence_inserts(EXP, OLD.holder)
    store.insert_new(new_trials(store, 0))
    advance(0.5)  # expired, not yet taken: nobody else wrote, so the holder may go on
    store.insert_new(new_trials(store, 1))
    store.insert_new(new_trials(store, 0, exp_key="other"))  # another experiment: not fenced
    assert store.acquire_driver(EXP, NEW, 5.0)

    with pytest.raises(ExperimentLocked) as info:
        store.insert_new(new_trials(store, 2, 3))
    msg = str(info.value)
    assert f"lost the driver lease on {EXP!r}" in msg and "pid 2 on host 'h2'" in msg
    assert "trials [2, 3] were not inserted" in msg
    assert [t.tid for t in store.find(EXP)] == [0, 1]
    exp = store.get_experiment(EXP)
    assert exp is not None and exp.next_tid == 2, "the counter was not moved either"

    store.release_driver(EXP, NEW.holder)  # nobody drives: still not the fence's holder
    with pytest.raises(ExperimentLocked, match="nobody drives it now"):
        store.insert_new(new_trials(store, 2))
    store.fence_inserts(EXP, None)  # lifted: a plain insert, as before any run
    store.insert_new(new_trials(store, 2))
    assert [t.tid for t in store.find(EXP)] == [0, 1, 2]


class _TakeoverBeforeWrite:
    """The trials collection, with a takeover between the fence's check and the write: what
    a coordinator paused there (SIGSTOP) wakes to."""

    def __init__(self, inner: Any, take: Callable[[], None]) -> None:
        self._inner = inner
        self._take = take

    def insert_many(self, docs: Any, *args: Any, **kwargs: Any) -> Any:
        self._take()
        return self._inner.insert_many(docs, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _take_over(store: MongoTrialStore) -> None:
    """Another coordinator takes the experiment over: its lease written into the document."""
    taken = dataclasses.replace(NEW, expires=to_millis(datetime.now(timezone.utc)
                                                       + timedelta(seconds=5)))
    store._experiments.update_one({"_id": EXP}, {"$set": {"driver": driver_to_doc(taken)}})


def _fenced_by_old(mongo_case: Any, lease_s: float) -> MongoTrialStore:
    """A Mongo store whose experiment OLD drives (a lease of ``lease_s``), inserts fenced."""
    store = mongo_case.store
    assert isinstance(store, MongoTrialStore)
    store.put_experiment(Experiment(EXP))
    assert store.acquire_driver(EXP, OLD, lease_s)
    store.fence_inserts(EXP, OLD.holder)
    return store


def test_a_fenced_insert_that_lands_after_a_takeover_is_withdrawn(
        mongo_case: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _fenced_by_old(mongo_case, 0.2)
    store.insert_new(new_trials(store, 0))

    # Another coordinator's takeover, written straight into the document: the store's own
    # lock is held here, inside insert_new.
    monkeypatch.setattr(store, "_trials",
                        _TakeoverBeforeWrite(store._trials, lambda: _take_over(store)))
    with pytest.raises(ExperimentLocked, match=r"trials \[1\] were not inserted"):
        # 0 is there already (a retry after a lost reply): only 1 is this call's to withdraw.
        store.insert_new(new_trials(store, 0, 1))
    monkeypatch.undo()
    assert [t.tid for t in store.find(EXP)] == [0]


class _LostReplyAfterTakeover:
    """The trials collection: the first write lands after another coordinator took the
    experiment over, and its reply is lost (a connection reset), so the coordinator's
    ``patiently`` retries the whole insert."""

    def __init__(self, inner: Any, take: Callable[[], None]) -> None:
        self._inner, self._take, self._first = inner, take, True

    def insert_many(self, docs: Any, *args: Any, **kwargs: Any) -> Any:
        if not self._first:
            return self._inner.insert_many(docs, *args, **kwargs)
        self._first = False
        self._take()
        self._inner.insert_many(docs, *args, **kwargs)
        raise AutoReconnect("connection reset by peer (the reply was lost)")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_a_retried_insert_withdraws_what_its_lost_first_write_left(
        mongo_case: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _fenced_by_old(mongo_case, 5.0)
    monkeypatch.setattr(store, "_trials",
                        _LostReplyAfterTakeover(store._trials, lambda: _take_over(store)))
    with pytest.raises(ExperimentLocked, match=r"trials \[7\] were not inserted"):
        patiently(lambda: store.insert_new(new_trials(store, 7)), "inserting trials", 5.0)
    monkeypatch.undo()
    assert store.find(EXP) == [], "the first write's trial was left behind"


def test_a_withdrawal_spares_a_trial_a_worker_has_touched(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Paused after its write, the old coordinator wakes to find that the new driver read
    its trial, a worker claimed it and died, and it was requeued with its attempt counted.
    That trial is the new driver's now: withdrawing it would lose the attempt's record."""
    db, lock = mf.mongomock_database()
    store = MongoTrialStore(db, lock=lock)
    # The worker's own client: the coordinator's store is busy inside insert_new (its lock
    # held) while the worker claims. One thread at a time uses mongomock here.
    worker = MongoTrialStore(db, lock=threading.Lock())
    store.put_experiment(Experiment(EXP))
    assert store.acquire_driver(EXP, OLD, 5.0)
    store.fence_inserts(EXP, OLD.holder)
    inner = store._trials

    class PausedAfterWrite:
        def insert_many(self, docs: Any, *args: Any, **kwargs: Any) -> Any:
            got = inner.insert_many(docs, *args, **kwargs)
            _take_over(store)
            for tid in (5, 6):
                claimed = worker.claim(EXP, tid, Owner("w1", "h2", 99), 30)
                assert claimed is not None and claimed.claim_token
                if tid == 5:  # 6 stays RUNNING under its worker
                    assert worker.release(EXP, tid, claimed.claim_token, "worker died",
                                          count_attempt=True)
            return got

        def __getattr__(self, name: str) -> Any:
            return getattr(inner, name)
    monkeypatch.setattr(store, "_trials", PausedAfterWrite())
    with pytest.raises(ExperimentLocked):
        store.insert_new(new_trials(store, 4, 5, 6))
    monkeypatch.undo()
    left = {t.tid: (t.state, t.attempts) for t in store.find(EXP)}
    assert left == {5: (TrialState.NEW, 1), 6: (TrialState.RUNNING, 1)}, left


def test_a_renewal_never_takes_back_a_lease_taken_and_let_go_since(
        store: TrialStore, advance: Callable[[float], None]) -> None:
    store.put_experiment(Experiment(EXP))
    assert not store.renew_driver(EXP, OLD.holder, 5.0), "never held"
    assert store.acquire_driver(EXP, OLD, 0.2)
    advance(0.5)  # expired, not yet taken: the holder may renew
    assert store.renew_driver(EXP, OLD.holder, 0.2)
    exp = store.get_experiment(EXP)
    assert exp is not None and exp.driver is not None and exp.driver.expires is not None
    assert exp.driver.expires > store.now()
    advance(0.5)
    # Another run (or `parzen requeue`) takes the experiment over and lets it go: the old
    # holder, waking, must not drive it again on what it read before.
    assert store.acquire_driver(EXP, NEW, 5.0)
    store.release_driver(EXP, NEW.holder)
    assert not store.renew_driver(EXP, OLD.holder, 5.0)
    exp = store.get_experiment(EXP)
    assert exp is not None and exp.driver is None
