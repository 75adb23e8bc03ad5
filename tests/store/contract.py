"""``TrialStoreContract``: what every ``TrialStore`` must do.

A test class inherits it and provides two fixtures: ``store`` (an empty store) and
``advance(seconds)`` (let the store's clock run forward: a fake clock, or a sleep).
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable
from datetime import timedelta

import pytest

from parzen.exceptions import TrialNotFound
from parzen.store import DriverLease, Experiment, InMemoryTrialStore, TrialStore
from parzen.store._mongo import MongoTrialStore
from parzen.trial import ErrorInfo, Owner, Trial, TrialState

EXP = "exp"
LEASE = 0.05  # seconds: short enough to expire by sleeping
EXPIRE = 0.12  # comfortably past LEASE, including the store clock's resolution
A = Owner("worker-a", "host-a", 101)
B = Owner("worker-b", "host-b", 202)

Advance = Callable[[float], None]


def new(*tids: int, exp_key: str = EXP) -> list[Trial]:
    return [Trial(exp_key, tid, TrialState.NEW, {"x": tid / 10, "c": tid % 2}) for tid in tids]


def ok(loss: float, **extra: object) -> dict[str, object]:
    return {"status": "ok", "loss": loss, **extra}


def drop_lease_date(store: TrialStore, tid: int) -> None:
    """Remove a RUNNING trial's lease date, as a hand edit of the document would."""
    if isinstance(store, InMemoryTrialStore):
        store.restore([dataclasses.replace(store.get(EXP, tid), lease_expires=None)])
    else:
        assert isinstance(store, MongoTrialStore)
        store._trials.update_one({"exp_key": EXP, "tid": tid}, {"$unset": {"lease_expires": ""}})


def put_running_without_times(store: TrialStore, tid: int) -> None:
    """A RUNNING trial with no lease, heartbeat, claim time or token: what hyperopt writes
    (``state: 1``, its point in ``misc.vals``)."""
    if isinstance(store, InMemoryTrialStore):
        store.restore([Trial(EXP, tid, TrialState.RUNNING, {"x": 0.5})])
    else:
        assert isinstance(store, MongoTrialStore)
        store._trials.insert_one({"exp_key": EXP, "tid": tid, "state": 1, "spec": None,
                                  "result": {"status": "new"}, "owner": None,
                                  "misc": {"tid": tid, "vals": {"x": [0.5]}}})


class TrialStoreContract:
    """The store contract, as tests. Inherit and provide ``store`` and ``advance``."""

    # ---- insert & read --------------------------------------------------------------------

    def test_insert_new_is_idempotent(self, store: TrialStore) -> None:
        store.insert_new(new(0, 1, 2))
        store.insert_new([Trial(EXP, 1, TrialState.NEW, {"x": 99.0})])  # a retried insert
        assert [t.tid for t in store.find(EXP)] == [0, 1, 2]
        assert store.get(EXP, 1).params == {"x": 0.1, "c": 1}

    def test_inserted_trials_are_new_with_created_time(self, store: TrialStore) -> None:
        store.insert_new(new(0))
        t = store.get(EXP, 0)
        assert (t.state, t.attempts, t.owner, t.claim_token) == (TrialState.NEW, 0, None, None)
        assert t.created is not None and t.created.tzinfo is not None

    def test_insert_keeps_tid_counter_ahead(self, store: TrialStore) -> None:
        store.insert_new(new(5))
        assert store.allocate_tids(EXP, 2) == [6, 7]

    def test_get_unknown_raises(self, store: TrialStore) -> None:
        with pytest.raises(TrialNotFound):
            store.get(EXP, 7)

    def test_get_many_returns_existing_in_tid_order(self, store: TrialStore) -> None:
        store.insert_new(new(0, 1, 2, 3))
        assert [t.tid for t in store.get_many(EXP, [3, 1, 99, 1])] == [1, 3]
        assert store.get_many(EXP, []) == []
        assert store.get_many("other", [1]) == []

    def test_count_by_state_lists_every_state(self, store: TrialStore) -> None:
        store.insert_new(new(0, 1, 2))
        store.claim(EXP, 0, A, 60)
        assert store.count_by_state(EXP) == {TrialState.NEW: 2, TrialState.RUNNING: 1,
                                             TrialState.DONE: 0, TrialState.ERROR: 0,
                                             TrialState.CANCEL: 0, TrialState.PRUNED: 0}

    def test_census_counts_and_lists_from_one_read(self, store: TrialStore) -> None:
        store.insert_new(new(0, 1, 2, 3))
        for tid in (3, 0):
            store.claim(EXP, tid, A, 60)
        t = store.claim(EXP, 2, B, 60)
        assert t is not None and t.claim_token
        store.finish(EXP, 2, t.claim_token, TrialState.DONE, ok(0.5))
        counts, running = store.census(EXP, [TrialState.RUNNING])
        assert counts == store.count_by_state(EXP)
        assert running == store.find(EXP, [TrialState.RUNNING])
        assert [t.tid for t in running] == [0, 3]
        counts, listed = store.census(EXP, [TrialState.NEW, TrialState.DONE])
        assert [t.tid for t in listed] == [1, 2] and counts[TrialState.RUNNING] == 2
        assert store.census("other", [TrialState.RUNNING]) == (dict.fromkeys(TrialState, 0), [])

    def test_now_is_timezone_aware_utc(self, store: TrialStore) -> None:
        now = store.now()
        assert now.utcoffset() == timedelta(0)

    # ---- claim ----------------------------------------------------------------------------

    def test_claim_once(self, store: TrialStore) -> None:
        store.insert_new(new(0))
        t = store.claim(EXP, 0, A, 60)
        assert t is not None
        assert (t.state, t.owner, t.attempts) == (TrialState.RUNNING, A, 1)
        assert t.claim_token and t.book_time and t.lease_expires
        assert t.lease_expires - t.book_time == pytest.approx(timedelta(seconds=60),
                                                              abs=timedelta(seconds=0.01))
        assert store.claim(EXP, 0, B, 60) is None
        assert store.get(EXP, 0).owner == A

    def test_claim_unknown_tid_raises(self, store: TrialStore) -> None:
        store.insert_new(new(0))
        with pytest.raises(TrialNotFound):
            store.claim(EXP, 1, A, 60)

    def test_concurrent_claims_have_one_winner(self, store: TrialStore) -> None:
        store.insert_new(new(*range(20)))
        wins: list[int] = []
        barrier = threading.Barrier(4)

        def worker(i: int) -> None:
            barrier.wait()
            owner = Owner(f"w{i}", "h", i)
            wins.extend(tid for tid in range(20) if store.claim(EXP, tid, owner, 60))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert sorted(wins) == list(range(20))

    # ---- heartbeat / finish ---------------------------------------------------------------

    def test_heartbeat_extends_the_lease(self, store: TrialStore, advance: Advance) -> None:
        store.insert_new(new(0))
        t = store.claim(EXP, 0, A, LEASE)
        assert t is not None and t.claim_token
        assert store.heartbeat(EXP, 0, t.claim_token, 60)
        advance(EXPIRE)
        assert store.requeue_expired(EXP, max_attempts=3) == []
        beat = store.get(EXP, 0)
        assert beat.state is TrialState.RUNNING
        assert beat.lease_expires is not None and t.lease_expires is not None
        assert beat.lease_expires > t.lease_expires

    def test_heartbeat_and_finish_are_fenced_on_the_token(self, store: TrialStore) -> None:
        store.insert_new(new(0))
        assert store.claim(EXP, 0, A, 60) is not None
        assert not store.heartbeat(EXP, 0, "not-the-token", 60)
        assert not store.finish(EXP, 0, "not-the-token", TrialState.DONE, ok(1.0))
        t = store.get(EXP, 0)
        assert t.state is TrialState.RUNNING
        assert t.result == {"status": "running"}

    def test_finish_stores_the_result(self, store: TrialStore) -> None:
        store.insert_new(new(0))
        t = store.claim(EXP, 0, A, 60)
        assert t is not None and t.claim_token
        result = ok(0.25, metrics={"acc": [0.5, 0.75]}, note="fine")
        assert store.finish(EXP, 0, t.claim_token, TrialState.DONE, result)
        done = store.get(EXP, 0)
        assert (done.state, done.result, done.loss) == (TrialState.DONE, result, 0.25)
        assert done.lease_expires is None and done.end_time is not None
        assert done.duration is not None and done.duration >= 0

    def test_finish_twice_keeps_the_first_result(self, store: TrialStore) -> None:
        store.insert_new(new(0))
        t = store.claim(EXP, 0, A, 60)
        assert t is not None and t.claim_token
        assert store.finish(EXP, 0, t.claim_token, TrialState.DONE, ok(1.0))
        assert not store.finish(EXP, 0, t.claim_token, TrialState.DONE, ok(2.0))
        assert not store.heartbeat(EXP, 0, t.claim_token, 60)
        assert store.get(EXP, 0).loss == 1.0

    def test_finish_with_error(self, store: TrialStore) -> None:
        store.insert_new(new(0))
        t = store.claim(EXP, 0, A, 60)
        assert t is not None and t.claim_token
        error = ErrorInfo("ValueError", "bad x", "Traceback ...")
        assert store.finish(EXP, 0, t.claim_token, TrialState.ERROR, {"status": "fail"}, error)
        failed = store.get(EXP, 0)
        assert (failed.state, failed.error, failed.loss) == (TrialState.ERROR, error, None)

    def test_finish_takes_only_done_or_error(self, store: TrialStore) -> None:
        store.insert_new(new(0))
        t = store.claim(EXP, 0, A, 60)
        assert t is not None and t.claim_token
        with pytest.raises(ValueError):
            store.finish(EXP, 0, t.claim_token, TrialState.CANCEL, {"status": "fail"})

    def test_lifecycle_calls_on_unknown_trial_raise(self, store: TrialStore) -> None:
        with pytest.raises(TrialNotFound):
            store.heartbeat(EXP, 9, "token", 60)
        with pytest.raises(TrialNotFound):
            store.finish(EXP, 9, "token", TrialState.DONE, ok(1.0))
        with pytest.raises(TrialNotFound):
            store.release(EXP, 9, "token", "shutdown")

    # ---- release --------------------------------------------------------------------------

    @pytest.mark.parametrize("count_attempt", [False, True])
    def test_release_returns_to_new(self, store: TrialStore, count_attempt: bool) -> None:
        store.insert_new(new(0))
        t = store.claim(EXP, 0, A, 60)
        assert t is not None and t.claim_token
        assert store.release(EXP, 0, t.claim_token, "worker shutdown", count_attempt)
        back = store.get(EXP, 0)
        assert (back.state, back.owner, back.claim_token, back.lease_expires) == \
            (TrialState.NEW, None, None, None)
        assert back.attempts == (1 if count_attempt else 0)
        assert [(h.attempt, h.owner, h.outcome) for h in back.history] == \
            [(1, A, "worker shutdown")]
        assert not store.release(EXP, 0, t.claim_token, "again")  # the token is spent
        again = store.claim(EXP, 0, B, 60)
        assert again is not None and again.attempts == back.attempts + 1

    # ---- a worker seen dead ----------------------------------------------------------------

    def test_requeue_dead_requeues_the_attempt_seen_dead_at_once(self,
                                                                 store: TrialStore) -> None:
        store.insert_new(new(0, 1, 2))
        dead = store.claim(EXP, 0, A, 600)
        gone_on = store.claim(EXP, 1, A, 600)
        alive = store.claim(EXP, 2, B, 600)
        assert dead and gone_on and alive and gone_on.claim_token
        # Trial 1 was finished since it was seen running: its attempt is not requeued.
        store.finish(EXP, 1, gone_on.claim_token, TrialState.DONE, ok(1.0))
        changed = store.requeue_dead(EXP, {0: str(dead.claim_token),
                                           1: str(gone_on.claim_token)}, max_attempts=3)
        assert [(t.tid, t.state) for t in changed] == [(0, TrialState.NEW)]
        t = store.get(EXP, 0)
        assert t == changed[0]
        assert (t.attempts, t.owner, t.claim_token) == (1, None, None)
        assert [(h.attempt, h.owner, h.outcome) for h in t.history] == [(1, A, "worker died")]
        assert store.get(EXP, 1).state is TrialState.DONE
        assert store.get(EXP, 2).state is TrialState.RUNNING
        # The token is spent: seen dead twice, requeued once.
        assert store.requeue_dead(EXP, {0: str(dead.claim_token)}, max_attempts=3) == []
        again = store.claim(EXP, 0, B, 600)
        assert again is not None and again.attempts == 2
        assert store.requeue_dead(EXP, {0: str(dead.claim_token)}, max_attempts=3) == []
        assert store.get(EXP, 0).owner == B

    def test_requeue_dead_gives_up_after_max_attempts(self, store: TrialStore) -> None:
        store.insert_new(new(0))
        for attempt in (1, 2):
            t = store.claim(EXP, 0, A, 600)
            assert t is not None and t.claim_token and t.attempts == attempt
            [t] = store.requeue_dead(EXP, {0: t.claim_token}, max_attempts=2)
        assert t.state is TrialState.ERROR and t.error is not None
        assert t.error.type == "WorkerDied"
        assert t.error.message.startswith("the worker running it died on attempt 2 of 2")
        assert [h.outcome for h in t.history] == ["worker died", "worker died"]
        assert store.get(EXP, 0) == t

    # ---- lease expiry ---------------------------------------------------------------------

    def test_requeue_expired_returns_trial_to_new(self, store: TrialStore,
                                                   advance: Advance) -> None:
        store.insert_new(new(0, 1))
        assert store.claim(EXP, 0, A, LEASE) is not None
        assert store.claim(EXP, 1, B, 60) is not None
        advance(EXPIRE)
        changed = store.requeue_expired(EXP, max_attempts=3)
        assert [(t.tid, t.state) for t in changed] == [(0, TrialState.NEW)]
        t = store.get(EXP, 0)
        assert t == changed[0]
        assert (t.state, t.attempts, t.owner) == (TrialState.NEW, 1, None)
        assert [(h.attempt, h.owner, h.outcome) for h in t.history] == [(1, A, "lease expired")]
        assert store.get(EXP, 1).state is TrialState.RUNNING

    def test_requeue_expired_gives_up_after_max_attempts(self, store: TrialStore,
                                                          advance: Advance) -> None:
        store.insert_new(new(0))
        assert store.claim(EXP, 0, A, LEASE) is not None
        advance(EXPIRE)
        [t] = store.requeue_expired(EXP, max_attempts=2)
        assert t.state is TrialState.NEW  # attempt 1 of 2
        assert store.claim(EXP, 0, A, LEASE) is not None
        advance(EXPIRE)
        [t] = store.requeue_expired(EXP, max_attempts=2)
        assert t.state is TrialState.ERROR
        assert t.error is not None and t.error.type == "LeaseExpired"
        assert len(t.history) == 2 and t.attempts == 2
        assert store.get(EXP, 0) == t
        assert store.claim(EXP, 0, A, 60) is None

    def test_late_finish_after_requeue_is_rejected(self, store: TrialStore,
                                                   advance: Advance) -> None:
        store.insert_new(new(0))
        stale = store.claim(EXP, 0, A, LEASE)
        assert stale is not None and stale.claim_token
        advance(EXPIRE)
        assert len(store.requeue_expired(EXP, max_attempts=3)) == 1
        fresh = store.claim(EXP, 0, B, 60)
        assert fresh is not None and fresh.claim_token
        assert not store.heartbeat(EXP, 0, stale.claim_token, 60)
        assert not store.finish(EXP, 0, stale.claim_token, TrialState.DONE, ok(9.0))
        assert store.finish(EXP, 0, fresh.claim_token, TrialState.DONE, ok(1.0))
        assert not store.finish(EXP, 0, stale.claim_token, TrialState.DONE, ok(9.0))
        t = store.get(EXP, 0)
        assert (t.state, t.loss, t.owner, t.attempts) == (TrialState.DONE, 1.0, B, 2)

    def test_requeue_expired_judges_a_running_trial_without_lease_date_by_its_heartbeat(
            self, store: TrialStore, advance: Advance) -> None:
        store.put_experiment(Experiment(EXP, settings={"lease_s": 0.3}))
        store.insert_new(new(0, 1))
        a = store.claim(EXP, 0, A, 60)
        b = store.claim(EXP, 1, B, 60)
        assert a is not None and b is not None and b.claim_token
        advance(0.6)
        assert store.heartbeat(EXP, 1, b.claim_token, 60)
        drop_lease_date(store, 0)
        drop_lease_date(store, 1)
        # Judged on the experiment's 0.3 s lease: 0 was claimed 0.6 s ago and never beat
        # since; 1 beat just now.
        changed = store.requeue_expired(EXP, max_attempts=3)
        assert [(t.tid, t.state) for t in changed] == [(0, TrialState.NEW)]
        assert changed[0].history[-1].outcome == "lease expired"
        assert store.get(EXP, 1).state is TrialState.RUNNING
        advance(0.6)
        assert store.requeue_expired(EXP, max_attempts=3, lease_s=60) == []
        assert [t.tid for t in store.requeue_expired(EXP, max_attempts=3)] == [1]
        # The reaper's fence still holds: the stale attempt cannot finish.
        assert not store.finish(EXP, 1, b.claim_token, TrialState.DONE, ok(1.0))

    def test_requeue_expired_takes_a_running_trial_with_no_sign_of_life_at_once(
            self, store: TrialStore) -> None:
        put_running_without_times(store, 7)
        assert store.count_by_state(EXP)[TrialState.RUNNING] == 1
        assert [t.tid for t in store.find(EXP, [TrialState.RUNNING])] == [7]
        [t] = store.requeue_expired(EXP, max_attempts=3, lease_s=3600)
        assert (t.tid, t.state, t.params) == (7, TrialState.NEW, {"x": 0.5})
        assert store.get(EXP, 7) == t
        claimed = store.claim(EXP, 7, A, 60)
        assert claimed is not None and claimed.params == {"x": 0.5}

    # ---- tids and the driver lease --------------------------------------------------------

    def test_allocate_tids_is_atomic_and_never_reuses(self, store: TrialStore) -> None:
        assert store.allocate_tids(EXP, 3) == [0, 1, 2]
        got: list[int] = []

        def worker() -> None:
            for _ in range(10):
                got.extend(store.allocate_tids(EXP, 2))

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert sorted(got) == list(range(3, 83))
        assert store.allocate_tids(EXP, 1) == [83]
        assert store.allocate_tids("other", 1) == [0]

    def test_driver_lease(self, store: TrialStore, advance: Advance) -> None:
        a = DriverLease(holder="a", host="h", pid=1, started="t0")
        b = DriverLease(holder="b", host="h", pid=2, started="t0")
        assert store.acquire_driver(EXP, a, LEASE)
        assert not store.acquire_driver(EXP, b, 60)
        assert store.acquire_driver(EXP, a, LEASE)  # renewal
        exp = store.get_experiment(EXP)
        assert exp is not None and exp.driver is not None and exp.driver.holder == "a"
        advance(EXPIRE)
        assert store.acquire_driver(EXP, b, 60)  # takeover after expiry
        assert not store.acquire_driver(EXP, a, 60)
        store.release_driver(EXP, "a")  # not the holder: no effect
        assert not store.acquire_driver(EXP, a, 60)
        store.release_driver(EXP, "b")
        exp = store.get_experiment(EXP)
        assert exp is not None and exp.driver is None
        assert store.acquire_driver(EXP, a, 60)

    # ---- experiments ----------------------------------------------------------------------

    def test_put_experiment_preserves_counter_and_driver(self, store: TrialStore) -> None:
        first = store.put_experiment(Experiment(EXP, space_fingerprint="f1",
                                                settings={"lease_s": 30}, max_evals=10))
        assert first.created is not None and first.next_tid == 0
        store.allocate_tids(EXP, 5)
        assert store.acquire_driver(EXP, DriverLease(holder="a", host="h", pid=1, started="t0"), 60)
        second = store.put_experiment(Experiment(EXP, space_fingerprint="f2",
                                                 settings={"lease_s": 60}, algo={"name": "tpe"}))
        assert (second.next_tid, second.space_fingerprint) == (5, "f2")
        assert second.settings == {"lease_s": 60} and second.algo == {"name": "tpe"}
        assert second.driver is not None and second.driver.holder == "a"
        assert second.created == first.created
        assert store.get_experiment(EXP) == second

    def test_experiments_listing_and_deletion(self, store: TrialStore) -> None:
        assert store.get_experiment("b") is None
        store.put_experiment(Experiment("b"))
        store.insert_new(new(0, 1, exp_key="a"))
        store.insert_new(new(0, exp_key="b"))
        assert [e.exp_key for e in store.list_experiments()] == ["a", "b"]
        assert store.delete_experiment("a") == 2
        assert [e.exp_key for e in store.list_experiments()] == ["b"]
        assert store.find("a") == [] and len(store.find("b")) == 1

    # ---- operator actions -----------------------------------------------------------------

    def test_cancel(self, store: TrialStore) -> None:
        store.insert_new(new(0, 1, 2))
        running = store.claim(EXP, 2, A, 60)
        assert running is not None and running.claim_token
        assert store.cancel(EXP) == 2
        assert [t.state for t in store.find(EXP)] == [TrialState.CANCEL] * 2 + \
            [TrialState.RUNNING]
        assert store.claim(EXP, 0, A, 60) is None
        assert store.cancel(EXP, [TrialState.RUNNING]) == 1
        assert not store.finish(EXP, 2, running.claim_token, TrialState.DONE, ok(1.0))
        assert store.get(EXP, 2).state is TrialState.CANCEL

    def test_requeue_by_operator(self, store: TrialStore) -> None:
        store.insert_new(new(0, 1))
        t = store.claim(EXP, 0, A, 60)
        assert t is not None and t.claim_token
        store.finish(EXP, 0, t.claim_token, TrialState.ERROR, {"status": "fail"},
                     ErrorInfo("OSError", "disk full"))
        assert store.requeue(EXP, [TrialState.ERROR, TrialState.NEW]) == 1
        back = store.get(EXP, 0)
        assert (back.state, back.attempts, back.error) == (TrialState.NEW, 0, None)
        [entry] = back.history
        assert "ERROR" in entry.outcome and "disk full" in entry.outcome
        assert store.get(EXP, 1).history == ()
        assert store.requeue(EXP, [TrialState.ERROR]) == 0

    # ---- find -----------------------------------------------------------------------------

    def _finished(self, store: TrialStore, losses: dict[int, float | None]) -> None:
        store.insert_new(new(*losses))
        for tid, loss in losses.items():
            t = store.claim(EXP, tid, A, 60)
            assert t is not None and t.claim_token
            if loss is None:
                store.finish(EXP, tid, t.claim_token, TrialState.ERROR, {"status": "fail"})
            else:
                store.finish(EXP, tid, t.claim_token, TrialState.DONE, ok(loss))

    def test_find_sorts_by_loss_with_lossless_trials_last(self, store: TrialStore) -> None:
        self._finished(store, {0: 3.0, 1: None, 2: 1.0, 3: 2.0, 4: 1.0})
        store.insert_new(new(5))
        assert [t.tid for t in store.find(EXP, sort="loss")] == [2, 4, 3, 0, 1, 5]
        # Descending: the worst losses first; trials without a loss still last.
        assert [t.tid for t in store.find(EXP, sort="loss", descending=True)] == \
            [0, 3, 4, 2, 5, 1]
        assert [t.tid for t in store.find(EXP, sort="loss", limit=2)] == [2, 4]
        assert [t.tid for t in store.find(EXP, sort="loss", limit=5)] == [2, 4, 3, 0, 1]
        assert [t.tid for t in store.find(EXP, sort="loss", descending=True, limit=3)] == \
            [0, 3, 4]
        assert [t.tid for t in store.find(EXP, sort="loss", descending=True, limit=5)] == \
            [0, 3, 4, 2, 5]
        assert [t.tid for t in store.find(EXP, [TrialState.DONE], sort="loss", limit=1)] == [2]

    def test_find_by_loss_ranks_no_nan_or_infinite_loss(self, store: TrialStore) -> None:
        # A NaN or infinite loss is recorded as returned (status ok, as hyperopt does) but
        # ranks nowhere: it goes with the trials without a loss, so it is never the best.
        self._finished(store, {0: math.nan, 1: 2.0, 2: -math.inf, 3: 1.0, 4: math.inf})
        assert [t.tid for t in store.find(EXP, sort="loss")] == [3, 1, 0, 2, 4]
        assert [t.tid for t in store.find(EXP, sort="loss", descending=True)] == \
            [1, 3, 4, 2, 0]
        assert [t.tid for t in store.find(EXP, [TrialState.DONE], sort="loss", limit=1)] == [3]
        nan = store.get(EXP, 0)
        assert nan.state is TrialState.DONE and nan.loss is None
        assert nan.result["status"] == "ok" and math.isnan(nan.result["loss"])
        assert store.get(EXP, 2).result["loss"] == -math.inf

    def test_find_filters_by_state_and_sorts_by_tid(self, store: TrialStore) -> None:
        self._finished(store, {0: 1.0, 1: None})
        store.insert_new(new(2, 3))
        assert [t.tid for t in store.find(EXP, [TrialState.NEW, TrialState.ERROR])] == [1, 2, 3]
        assert [t.tid for t in store.find(EXP, descending=True, limit=2)] == [3, 2]
        assert store.find(EXP, []) == []
        assert store.find(EXP, limit=0) == []
