"""A worker that loses its claim says why in its log: a run the coordinator stopped must not
read like a trial that ran twice (``parzen.execution.lost_because``)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from parzen.execution import lost_because
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
    assert lost_because(store, cancelled) == \
        "the coordinator cancelled it (fmin stopped: timeout, Ctrl-C or another stop)"

    clock[0] += timedelta(seconds=61)
    assert {t.tid for t in store.requeue_expired("e", 3)} == {1, 2}
    assert lost_because(store, requeued) == \
        "its lease expired and it was requeued (this worker stalled or lost the store)"

    again = store.claim("e", 2, B, 60.0)
    assert again is not None and again.claim_token is not None
    assert store.finish("e", 2, again.claim_token, TrialState.DONE,
                        {"status": "ok", "loss": 1.0}, None)
    assert lost_because(store, finished) == "another attempt finished it"

    store.delete_experiment("e")
    assert lost_because(store, finished) == "it was cancelled, requeued or finished elsewhere"
