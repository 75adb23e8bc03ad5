"""A worker that cannot load an experiment's objective refuses it: it records why, passes the
experiment's trials on unclaimed, and the coordinator stops only when no worker runs them
(issue 18 item 3). The multi-process runs are in ``tests/distributed/test_refusing_workers.py``.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from parzen import hp
from parzen.exceptions import ObjectiveUnloadable, PayloadSignatureError
from parzen.execution import payload
from parzen.execution.run import OutcomeStatus
from parzen.runners.celery.refusals import RefusalWatch
from parzen.store import (
    DriverLease,
    Experiment,
    InMemoryTrialStore,
    ObjectiveKind,
    ObjectiveSpec,
    Refusal,
)
from parzen.trial import Owner, Trial, TrialState
from parzen.trials import Trials
from parzen.worker import refusals
from parzen.worker.runtime import WorkerRuntime
from tests.support.objectives import quadratic

KEY = b"the-coordinators-key-" + b"0" * 16
WRONG = b"another-key-entirely-" + b"1" * 16
SPACE = {"x": hp.uniform("x", -1, 1), "k": hp.choice("k", [0, 1])}


def experiment(store: InMemoryTrialStore, key: bytes = KEY, n: int = 3,
               driven: bool = True) -> ObjectiveSpec:
    signed = payload.build((quadratic, SPACE), key)
    spec = ObjectiveSpec(ObjectiveKind.PICKLE, sha256=signed.sha256, fingerprint="f",
                         inline=signed.data)
    store.put_experiment(Experiment("e", space_fingerprint="x", objective=spec,
                                    settings={"lease_s": 30.0, "heartbeat_s": 5.0}))
    if driven:
        assert store.acquire_driver("e", DriverLease("c", "h", 1, "t"), 60)
    store.insert_new([Trial("e", t, TrialState.NEW, {"x": 0.1 * t, "k": 0}) for t in range(n)])
    return spec


@pytest.fixture(autouse=True)
def no_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(refusals, "PASS_ON_HOLD_S", 0.0)


def test_a_wrong_key_is_refused_once_then_trials_pass_on_unclaimed(
        caplog: pytest.LogCaptureFixture) -> None:
    store = InMemoryTrialStore()
    spec = experiment(store)
    passed: list[tuple[str, int]] = []
    runtime = WorkerRuntime(store, WRONG, "node-7")
    try:
        with caplog.at_level(logging.ERROR, logger="parzen.worker"):
            first = runtime.evaluate_trial("e", 0, republish=lambda *a: passed.append(a))
            second = runtime.evaluate_trial("e", 1, republish=lambda *a: passed.append(a))
    finally:
        runtime.close()
    assert first.status is OutcomeStatus.UNLOADABLE
    assert isinstance(first.exception, ObjectiveUnloadable)
    assert isinstance(first.exception.__cause__, PayloadSignatureError)
    assert second.status is OutcomeStatus.NOT_CLAIMED
    assert passed == [("e", 0), ("e", 1)], "both go back to the queue for the others"
    t0, t1 = store.get("e", 0), store.get("e", 1)
    assert (t0.state, t0.attempts, len(t0.history)) == (TrialState.NEW, 0, 1)
    assert (t1.state, t1.attempts, t1.history) == (TrialState.NEW, 0, ()), "never claimed"
    exp = store.get_experiment("e")
    assert exp is not None
    refusal, = exp.refusals
    assert (refusal.worker, refusal.objective) == ("node-7", spec.sha256)
    assert refusal.at is not None and refusal.at <= store.now()
    assert refusal.reason == (
        "PayloadSignatureError: the objective payload was signed with the key of fingerprint "
        f"{payload.key_fingerprint(KEY)}, and this worker's key has fingerprint "
        f"{payload.key_fingerprint(WRONG)}: the coordinator and the worker use different "
        "keys (PARZEN_SECRET or the file PARZEN_SECRET_FILE names). Give this worker the "
        "coordinator's key: the same PARZEN_SECRET, or PARZEN_SECRET_FILE naming a file "
        "that holds it, on the coordinator and every worker, then restart the worker. "
        "Nothing was unpickled")
    loud = [r.getMessage() for r in caplog.records if "REFUSES" in r.getMessage()]
    assert len(loud) == 1, "said once, not per trial"
    assert loud[0].startswith("worker node-7 REFUSES experiment 'e': it cannot load the "
                              "objective, and stops taking its trials until it is restarted. "
                              "PayloadSignatureError: ")


def test_nothing_is_passed_on_once_the_run_is_over() -> None:
    store = InMemoryTrialStore()
    experiment(store, driven=False)  # no coordinator drives the experiment
    passed: list[tuple[str, int]] = []
    runtime = WorkerRuntime(store, WRONG, "node-7")
    try:
        runtime.evaluate_trial("e", 0, republish=lambda *a: passed.append(a))
        store.acquire_driver("e", DriverLease("c", "h", 1, "t"), 60)
        store.cancel("e")
        runtime.evaluate_trial("e", 1, republish=lambda *a: passed.append(a))
    finally:
        runtime.close()
    assert passed == [], "a message for no live run, or a cancelled trial, is dropped"


def test_a_worker_that_loads_the_objective_clears_its_old_refusal() -> None:
    store = InMemoryTrialStore()
    experiment(store, n=2)
    wrong = WorkerRuntime(store, WRONG, "node-7")
    try:
        wrong.evaluate_trial("e", 0)
    finally:
        wrong.close()
    exp = store.get_experiment("e")
    assert exp is not None and [r.worker for r in exp.refusals] == ["node-7"]
    fixed = WorkerRuntime(store, KEY, "node-7")  # restarted with the coordinator's key
    try:
        assert fixed.evaluate_trial("e", 0).status is OutcomeStatus.DONE
    finally:
        fixed.close()
    exp = store.get_experiment("e")
    assert exp is not None and exp.refusals == ()


def test_a_payload_changed_after_signing_is_named_as_such() -> None:
    signed = payload.build({"a": 1}, KEY)
    with pytest.raises(PayloadSignatureError) as info:
        payload.verify(signed.data[:-1] + bytes([signed.data[-1] ^ 1]), KEY)
    assert str(info.value) == (
        "the objective payload's signature does not match, although it names this worker's "
        f"key (fingerprint {payload.key_fingerprint(KEY)}): it was changed after it was "
        "signed, tampered with in the database or corrupted. Nothing was unpickled")


def test_key_fingerprints_tell_keys_apart_and_hide_them() -> None:
    a, b = payload.key_fingerprint(KEY), payload.key_fingerprint(WRONG)
    assert a != b and len(a) == len(b) == 8 and int(a, 16) >= 0
    assert a == payload.key_fingerprint(bytes(KEY))
    assert a not in KEY.hex() and KEY.decode() not in a


# ---- the coordinator's side ----------------------------------------------------------------

def refusal(worker: str, at_s: float, objective: str = "sha", reason: str = "bad key",
            ) -> Refusal:
    return Refusal(worker=worker, host="h", pid=7, objective=objective, reason=reason,
                   at=T0 + timedelta(seconds=at_s))


T0 = InMemoryTrialStore().now()


def watched(store: InMemoryTrialStore, *records: Refusal) -> RefusalWatch:
    watch = RefusalWatch("e", grace_s=5.0)
    watch.start("sha", T0)
    watch.update(Experiment("e", refusals=records))
    return watch


def test_the_run_stops_when_trials_wait_out_the_grace_with_workers_refusing() -> None:
    store = InMemoryTrialStore()
    trials = Trials(exp_key="e", store=store)
    trials.insert_points([0, 1], [{"x": 0.1}, {"x": 0.2}], "t")
    trials.refresh()
    watch = watched(store, refusal("node-3", 1), refusal("node-4", 2))
    watch.check(trials, now=100.0)
    watch.check(trials, now=104.9)  # within the grace: other workers may still come
    with pytest.raises(ObjectiveUnloadable) as info:
        watch.check(trials, now=105.0)
    assert str(info.value) == (
        "no worker can load the objective of 'e': its trials waited 5 s (dispatch_timeout) "
        "with none running, and 2 workers cannot load it. node-3 (pid 7 on h), node-4 (pid 7 "
        "on h): bad key. Fix those workers as said and restart them, or start a worker that "
        "can load the objective; the trials they passed on used up no attempt")


def test_a_running_trial_or_no_refusal_keeps_the_run_going() -> None:
    store = InMemoryTrialStore()
    trials = Trials(exp_key="e", store=store)
    trials.insert_points([0, 1], [{"x": 0.1}, {"x": 0.2}], "t")
    assert store.claim("e", 0, Owner("good", "h", 1), 60) is not None
    trials.refresh()
    watch = watched(store, refusal("node-3", 1))
    for now in (0.0, 10.0, 100.0):
        watch.check(trials, now)  # a worker runs the trials: the refusal is no reason
    trials = Trials(exp_key="e2", store=store)
    trials.insert_points([0], [{"x": 0.1}], "t")
    trials.refresh()
    quiet = watched(store)  # trials wait, but nobody refused: an idle queue, not this
    for now in (0.0, 100.0):
        quiet.check(trials, now)


def test_only_this_payloads_recent_refusals_count() -> None:
    store = InMemoryTrialStore()
    watch = watched(store, refusal("old", -refusals.RENEW_S - 1),
                    refusal("other-payload", 1, objective="another sha"),
                    refusal("now", 1))
    assert [r.worker for r in watch.refusals] == ["now"]


def test_parzen_status_names_the_workers_that_refuse_this_objective() -> None:
    from parzen.cli import _status

    store = InMemoryTrialStore()
    spec = experiment(store)
    store.record_refusal("e", Refusal(worker="wrong-key", host="node-7", pid=7,
                                      objective=spec.sha256,
                                      reason="PayloadSignatureError: signature mismatch"))
    # A refusal of an earlier payload (another key, another objective) is not about now.
    store.record_refusal("e", Refusal(worker="fixed-since", host="node-8", pid=8,
                                      objective="an older payload", reason="bad key"))
    exp = store.get_experiment("e")
    assert exp is not None
    snap = _status.gather(store, exp, 60)
    text = _status.render(snap)
    assert "workers that cannot load this objective (1)" in text
    assert "wrong-key" in text and "node-7" in text and "signature mismatch" in text
    assert "fixed-since" not in text
    assert [r["worker"] for r in snap.to_dict()["refusals"]] == ["wrong-key"]
