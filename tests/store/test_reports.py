"""Every store keeps reported values: ``report`` (fenced, with the lease), ``reported`` and
PRUNED outcomes."""

from __future__ import annotations

from parzen.store import TrialStore
from parzen.trial import Intermediate, TrialState
from tests.store.contract import EXP, A, B, new


def test_reports_append_renew_the_lease_and_are_fenced(store: TrialStore) -> None:
    store.insert_new(new(0, 1))
    t = store.claim(EXP, 0, A, 60)
    assert t is not None and t.claim_token is not None
    assert store.report(EXP, 0, t.claim_token, [Intermediate(1, 0.9, 1)], 60)
    assert store.report(EXP, 0, t.claim_token, [Intermediate(2, 0.8, 1),
                                                Intermediate(3, 0.7, 1)], 60)
    held = store.get(EXP, 0)
    assert [(r.step, r.loss, r.attempt) for r in held.intermediate] == \
        [(1, 0.9, 1), (2, 0.8, 1), (3, 0.7, 1)]
    assert held.lease_expires is not None and t.lease_expires is not None
    assert held.lease_expires >= t.lease_expires
    assert not store.report(EXP, 0, "another-token", [Intermediate(4, 0.1, 1)], 60)
    assert len(store.get(EXP, 0).intermediate) == 3
    assert [x.tid for x in store.reported(EXP)] == [0]


def test_a_pruned_trial_keeps_its_values_and_its_state(store: TrialStore) -> None:
    store.insert_new(new(0))
    t = store.claim(EXP, 0, B, 60)
    assert t is not None and t.claim_token is not None
    store.report(EXP, 0, t.claim_token, [Intermediate(1, 0.9, 1)], 60)
    result = {"status": "fail", "pruned": {"step": 1, "loss": 0.9}}
    assert store.finish(EXP, 0, t.claim_token, TrialState.PRUNED, result)
    done = store.get(EXP, 0)
    assert done.state is TrialState.PRUNED and done.result == result
    assert [r.step for r in done.curve()] == [1]
    assert store.count_by_state(EXP)[TrialState.PRUNED] == 1
    assert [x.tid for x in store.find(EXP, states=[TrialState.PRUNED])] == [0]
