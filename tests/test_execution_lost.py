"""A worker that loses its claim says why in its log: a run the coordinator stopped must not
read like a trial that ran twice (``parzen.execution.run.lost_because``)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from parzen.exceptions import StoreUnavailable
from parzen.execution.run import OutcomeStatus, lost_because, run_trial, stored
from parzen.store import InMemoryTrialStore
from parzen.trial import Owner, Trial, TrialState

A = Owner("worker-a", "host-a", 1)
B = Owner("worker-b", "host-b", 2)


def claimed(store: InMemoryTrialStore, tid: int) -> Trial:
    store.insert_new([Trial("e", tid, TrialState.NEW, {"x": 0.1})])
    trial = store.claim("e", tid, A, 60.0)
    assert trial is not None
    return trial


def test_each_way_of_losing_a_claim_gets_its_own_reason() -> None:
    clock = [datetime(2026, 1, 1, tzinfo=timezone.utc)]
    store = InMemoryTrialStore(clock=lambda: clock[0])
    cancelled = claimed(store, 0)
    store.cancel("e", (TrialState.RUNNING,))
    requeued, finished = claimed(store, 1), claimed(store, 2)
    assert store.get("e", 0).state is TrialState.CANCEL
    assert lost_because(stored(store, cancelled), cancelled) == \
        "the coordinator cancelled it (fmin stopped: timeout, Ctrl-C or another stop)"

    clock[0] += timedelta(seconds=61)
    assert {t.tid for t in store.requeue_expired("e", 3)} == {1, 2}
    assert lost_because(stored(store, requeued), requeued) == \
        "its lease expired and it was requeued (this worker stalled or lost the store)"

    again = store.claim("e", 2, B, 60.0)
    assert again is not None and again.claim_token is not None
    assert store.finish("e", 2, again.claim_token, TrialState.DONE,
                        {"status": "ok", "loss": 1.0}, None)
    assert lost_because(stored(store, finished), finished) == "another attempt finished it"

    store.delete_experiment("e")
    assert stored(store, finished) is None
    assert lost_because(None, finished) == "it was cancelled, requeued or finished elsewhere"


class _ReplyLost(InMemoryTrialStore):
    """The first finish is written, then its reply is lost: the worker retries it."""

    lost = 0

    def finish(self, *args: Any, **kwargs: Any) -> bool:
        done = super().finish(*args, **kwargs)
        if not self.lost:
            self.lost += 1
            raise StoreUnavailable("connection reset after the write")
        return done


def test_a_result_whose_reply_was_lost_counts_as_recorded(
        caplog: pytest.LogCaptureFixture) -> None:
    store = _ReplyLost()
    store.insert_new([Trial("e", 0, TrialState.NEW, {"x": 0.1})])
    outcome = run_trial(store, "e", 0, A, lambda p, tid, abort: {"loss": 0.5, "status": "ok"})
    assert outcome.status is OutcomeStatus.DONE and store.lost == 1
    t = store.get("e", 0)
    assert t.state is TrialState.DONE and t.loss == 0.5
    assert "lease lost" not in caplog.text
    assert lost_because(stored(store, outcome.trial), outcome.trial) == \
        "this attempt's own result is recorded (the store's reply to it was lost)"


def test_a_trial_the_coordinator_gave_up_on_says_so() -> None:
    clock = [datetime(2026, 1, 1, tzinfo=timezone.utc)]
    store = InMemoryTrialStore(clock=lambda: clock[0])
    first = claimed(store, 0)
    clock[0] += timedelta(seconds=61)
    assert [t.state for t in store.requeue_expired("e", 1)] == [TrialState.ERROR]
    assert lost_because(stored(store, first), first) == \
        "the coordinator gave up on it: its lease expired on every attempt"
