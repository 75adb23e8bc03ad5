"""The store contract's refusals (``record_refusal``, ``clear_refusal``) on every backend:
one record per worker, the latest last, kept across ``put_experiment``, bounded."""

from __future__ import annotations

from collections.abc import Callable

from parzen.store import MAX_REFUSALS, Experiment, MongoTrialStore, Refusal, TrialStore
from tests.store.conftest import StoreCase

EXP = "refused"


def refusal(worker: str, reason: str = "PayloadSignatureError: another key") -> Refusal:
    return Refusal(worker=worker, host="node", pid=42, objective="sha-1", reason=reason)


def test_one_record_per_worker_latest_last(store: TrialStore,
                                           advance: Callable[[float], None]) -> None:
    store.record_refusal(EXP, refusal("a"))  # unknown experiment: nothing to record on
    assert store.get_experiment(EXP) is None
    store.put_experiment(Experiment(EXP))
    store.record_refusal(EXP, refusal("a"))
    first = store.now()
    advance(0.05)
    store.record_refusal(EXP, refusal("b"))
    store.record_refusal(EXP, refusal("a", "ModuleNotFoundError: torch"))
    exp = store.get_experiment(EXP)
    assert exp is not None
    assert [(r.worker, r.reason) for r in exp.refusals] == [
        ("b", "PayloadSignatureError: another key"), ("a", "ModuleNotFoundError: torch")]
    b, a = exp.refusals
    assert (b.host, b.pid, b.objective) == ("node", 42, "sha-1")
    assert b.at is not None and a.at is not None and first <= b.at <= a.at <= store.now()

    # A coordinator rewriting the experiment keeps them: workers wrote them, not it.
    store.put_experiment(Experiment(EXP, space_fingerprint="f2"))
    exp = store.get_experiment(EXP)
    assert exp is not None and [r.worker for r in exp.refusals] == ["b", "a"]

    store.clear_refusal(EXP, "b")
    store.clear_refusal(EXP, "nobody")
    exp = store.get_experiment(EXP)
    assert exp is not None and [r.worker for r in exp.refusals] == ["a"]


def test_the_latest_refusals_are_kept(store: TrialStore) -> None:
    store.put_experiment(Experiment(EXP))
    for i in range(MAX_REFUSALS + 3):
        store.record_refusal(EXP, refusal(f"w{i}"))
    exp = store.get_experiment(EXP)
    assert exp is not None and len(exp.refusals) == MAX_REFUSALS
    assert exp.refusals[0].worker == "w3" and exp.refusals[-1].worker == f"w{MAX_REFUSALS + 2}"


def test_two_records_of_one_worker_read_as_the_latest(mongo_case: StoreCase) -> None:
    # Two processes under one name, refusing together, may each push a record.
    store = mongo_case.store
    assert isinstance(store, MongoTrialStore)
    store.put_experiment(Experiment(EXP))
    store._experiments.update_one({"_id": EXP}, {"$set": {"refusals": [
        {"worker": "a", "host": "h1", "pid": 1, "objective": "s", "reason": "first"},
        {"worker": "b", "host": "h2", "pid": 2, "objective": "s", "reason": "other"},
        {"worker": "a", "host": "h1", "pid": 3, "objective": "s", "reason": "second"},
        "edited by hand"]}})
    exp = store.get_experiment(EXP)
    assert exp is not None
    assert [(r.worker, r.pid, r.reason) for r in exp.refusals] == [
        ("b", 2, "other"), ("a", 3, "second")]
