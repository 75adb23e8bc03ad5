"""Objectives that raise, hang, crash, kill their worker, cannot be loaded, were tampered
with, are too large or return what MongoDB cannot store (scenarios 11-16, 22, 23).

Scenarios that leave the workers alive share one pair of workers (``shared_cluster``), each
test on its own exp_key; the poison trial (14) kills workers and gets its own cluster.
"""

from __future__ import annotations

import logging
import pickle
import re
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from parzen import fmin, tpe
from parzen.exceptions import AllTrialsFailed, ObjectiveUnloadable, PayloadTooLarge
from parzen.execution.payload import key_fingerprint
from parzen.mongoexp import MongoTrials
from parzen.runners.celery import CeleryRunner
from parzen.trial import TrialState
from tests.support.fault_objectives import (
    POISON_X,
    crashes_for_positive,
    hangs_for_positive,
    kills_its_worker,
    numpy_result,
    raises_for_positive,
    runs_of,
    space,
    unpicklable_result,
    unstorable_result,
)
from tests.support.faults import (
    HOOKED,
    SECRET,
    FaultCluster,
    Supervisor,
    assert_clean_end,
    lease_expiries,
    wait_for,
)
from tests.support.processes import alive

pytestmark = [pytest.mark.integration]

# Points to try first: one that misbehaves (x > 0) and one that does not.
BAD_AND_GOOD = [{"x": 0.5, "k": 0}, {"x": -0.5, "k": 0}]


def run(cluster: FaultCluster, exp_key: str, fn: Any, max_evals: int, *,
        sleep: float = 0.0, constants: dict[str, Any] | None = None,
        points: list[dict[str, Any]] | None = None, seed: int = 0,
        **kw: Any) -> MongoTrials:
    trials = MongoTrials(cluster.mongo_url, exp_key=exp_key, parallelism=2,
                         **cluster.kwargs(**kw))
    try:
        fmin(fn, space(sleep, **(constants or {})), algo=tpe.suggest, max_evals=max_evals,
             trials=trials, show_progressbar=False, rstate=np.random.default_rng(seed),
             points_to_evaluate=points)
    finally:
        trials.close()
    return trials



def worker_pids(cluster: FaultCluster) -> set[int]:
    return {p.pid for p in cluster.workers if p.poll() is None}


@pytest.mark.timeout(60)
def test_s11_objective_raises_trial_is_error_with_traceback(
        shared_cluster: FaultCluster) -> None:
    c = shared_cluster
    pids = worker_pids(c)
    trials = run(c, "s11", raises_for_positive, 8, points=BAD_AND_GOOD)

    assert_clean_end(c, "s11", done=8 - c.counts("s11")[TrialState.ERROR],
                     error=c.counts("s11")[TrialState.ERROR])
    # As in hyperopt, trials that raised are in _dynamic_trials, not in trials.trials.
    errors = [d for d in trials._dynamic_trials if d["state"] == TrialState.ERROR]
    assert errors and len(trials._dynamic_trials) == 8, "ERROR trials are in _dynamic_trials"
    first = errors[0]
    assert first["tid"] == 0 and first["misc"]["error"] == ("ValueError", "x=0.500 is positive")
    assert first["error"]["type"] == "ValueError"
    assert "raise ValueError" in first["error"]["traceback"]
    assert "raises_for_positive" in first["error"]["traceback"]
    assert trials.best_trial["result"]["loss"] >= 0  # the good points still count
    assert worker_pids(c) == pids, "the workers keep working"
    assert all(t.attempts == 1 for t in c.trials("s11")), "an exception is not retried"


@pytest.mark.timeout(60)
def test_s12_hanging_objective_is_ended_by_the_hard_timeout(cluster: FaultCluster) -> None:
    # One worker, so every trial after the first (which hangs) runs where the timeout was.
    worker, = cluster.start_ready(1)
    run(cluster, "s12", hangs_for_positive, 5, points=BAD_AND_GOOD, trial_timeout=1.0)

    trials = cluster.trials("s12")
    timed_out = [t for t in trials if t.state is TrialState.ERROR]
    assert timed_out and timed_out[0].tid == 0
    assert_clean_end(cluster, "s12", done=5 - len(timed_out), error=len(timed_out))
    for t in timed_out:
        assert t.error is not None
        assert (t.error.type, t.error.message) == ("TrialTimeout", "timeout after 1 s")
        assert t.duration is not None and 0.9 < t.duration < 10
    first = timed_out[0]
    assert first.end_time is not None
    after = [t for t in trials if t.book_time is not None and t.book_time >= first.end_time]
    assert len(after) == 4 and all(t.owner is not None and t.owner.pid == worker.pid
                                   for t in after), "the worker took the next trials"
    assert worker.poll() is None


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("how", "named"), [
    ("segfault", "killed by SIGSEGV"),
    ("exit", "exited with code 3"),
    ("oom", "killed by SIGKILL (the out-of-memory killer sends SIGKILL)"),
])
def test_s13_crashing_objective_names_the_signal_and_is_retried(
        shared_cluster: FaultCluster, how: str, named: str) -> None:
    c = shared_cluster
    c.clear_side_effects()
    pids = worker_pids(c)
    exp_key = f"s13-{how}"
    run(c, exp_key, crashes_for_positive, 4, constants={"how": how}, points=BAD_AND_GOOD,
        max_attempts=2)

    trials = c.trials(exp_key)
    crashed = [t for t in trials if t.state is TrialState.ERROR]
    assert crashed and crashed[0].tid == 0
    assert_clean_end(c, exp_key, done=4 - len(crashed), error=len(crashed))
    for t in crashed:
        assert t.error is not None and t.error.type == "WorkerCrashed"
        assert t.error.message == (f"the objective's process {named} on attempt 2 of 2; "
                                   "giving up")
        assert t.attempts == 2
        assert [a.outcome for a in t.history] == [f"crashed: the objective's process {named}"]
        assert runs_of(c.executions(), t.params["x"]) == 2
    assert worker_pids(c) == pids, "only the sandbox died, never the worker"


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_s14_poison_trial_is_failed_after_max_attempts_without_a_loop(
        cluster: FaultCluster) -> None:
    # Redis redelivers the killed workers' unacknowledged messages after 2 s; they must
    # find the trial finished and do nothing.
    env = {"PARZEN_VISIBILITY_TIMEOUT": "2", "FAULT_FAST_RESTORE": "1"}
    workers = [cluster.start_worker(entry=HOOKED, **env) for _ in range(2)]
    for w in workers:
        cluster.wait_ready(w)
    with Supervisor(cluster, workers, entry=HOOKED, **env) as sup:
        run(cluster, "s14", kills_its_worker, 4, sleep=0.2,
            points=[{"x": POISON_X, "k": 0}], max_attempts=2)
        killed = sup.restarts
    trials = assert_clean_end(cluster, "s14", done=3, error=1)
    poison = trials[0]
    assert poison.params["x"] == POISON_X and poison.state is TrialState.ERROR
    # The coordinator shares the workers' host: it sees each one die, and does not wait for
    # the lease (with workers elsewhere it would, and the error would be LeaseExpired).
    assert poison.error is not None and poison.error.type == "WorkerDied"
    assert poison.error.message.startswith("the worker running it died on attempt 2 of 2")
    assert [a.outcome for a in poison.history] == ["worker died", "worker died"]
    assert killed == 2, "each attempt killed one worker, and there were two attempts"
    assert lease_expiries(trials) == 0

    # No loop: once the redelivered messages have come back and been acked, the poison
    # point still ran exactly max_attempts times.
    wait_for(lambda: cluster.redis.unacked() == 0
             and cluster.redis.queue_length(cluster.queue) == 0, 30,
             "the killed workers' messages to be redelivered and acked")
    assert runs_of(cluster.executions(), POISON_X) == 2
    assert cluster.store.get("s14", 0).attempts == 2
    # The poison's evaluation processes outlive their killed workers only briefly: they
    # would sleep 30 s, but exit once they see their supervisor gone.
    orphans = [int(f.split("-")[-2]) for f in cluster.executions()
               if f.startswith(f"run-{POISON_X:.12f}-")]
    wait_for(lambda: not any(alive(pid) for pid in orphans), 10,
             f"the orphaned evaluation processes {orphans} to exit")


@pytest.mark.timeout(60)
def test_s15_missing_module_fails_fast_with_its_name(shared_cluster: FaultCluster,
                                                     tmp_path: Path) -> None:
    c = shared_cluster
    module = f"parzen_fault_only_here_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text("def objective(p):\n    return p['x'] ** 2\n")
    sys.path.insert(0, str(tmp_path))
    try:
        fn = __import__(module).objective
        with pytest.raises(ObjectiveUnloadable) as info:
            run(c, "s15", fn, 20, dispatch_timeout=2.0)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(module, None)
    msg = str(info.value)
    assert f"No module named '{module}'" in msg
    assert f"Install module '{module}' on the workers" in msg
    # Each worker refused once, then passed the trials on without claiming them; the run
    # stopped when none was left to run them, naming both.
    assert msg.startswith("no worker can load the objective of 's15': its trials waited 2 s")
    assert "2 workers cannot load it" in msg
    trials = c.trials("s15")
    released = [t for t in trials if t.history]
    assert released, "a worker should have released a trial"
    assert sum(len(t.history) for t in trials) <= 2, "one release per worker, no more"
    for t in released:
        assert all(a.outcome.startswith("objective unloadable") for a in t.history)
        assert t.attempts == 0, "an unloadable objective does not use up an attempt"
    # fmin cancelled what was queued or being claimed when it gave up.
    assert {t.state for t in trials} == {TrialState.CANCEL}


class _Bomb:
    """Unpickling this creates a file: proof that bytes were unpickled."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (open, (self.path, "w"))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("where", ["inline", "gridfs"])
def test_s16_tampered_payload_is_refused_before_unpickling(
        shared_cluster: FaultCluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        where: str) -> None:
    c = shared_cluster
    c.clear_side_effects()
    proof = tmp_path / "unpickled"
    exp_key = f"s16-{where}"
    start = CeleryRunner.start

    def start_then_tamper(self: Any) -> None:
        start(self)
        # Someone with write access to MongoDB, but not the key, swaps the pickle.
        exp = c.store._experiments.find_one({"_id": exp_key})
        if where == "inline":
            data = bytes(exp["objective"]["inline"])
            header = int.from_bytes(data[4:8], "big")
            evil = data[:8 + header + 32] + pickle.dumps(_Bomb(str(proof)))
            c.store._experiments.update_one({"_id": exp_key},
                                            {"$set": {"objective.inline": evil}})
        else:
            file_id = c.store._files.find_one({"metadata.exp_key": exp_key})["_id"]
            chunk = c.store._chunks.find_one({"files_id": file_id, "n": 0})
            data = bytearray(chunk["data"])
            data[-1] ^= 0xFF  # one flipped bit in the pickle
            c.store._chunks.update_one({"_id": chunk["_id"]}, {"$set": {"data": bytes(data)}})

    monkeypatch.setattr(CeleryRunner, "start", start_then_tamper)
    fn: Any = raises_for_positive
    if where == "gridfs":
        big = np.ones(700_000)  # 5.6 MB captured: over the inline limit, stored in GridFS

        def fn(p: dict[str, Any]) -> float:
            return float(p["x"] ** 2 + big[0])

    # Refused like an objective the worker cannot load: the run stops at once, naming the
    # worker, and no trial is spent (a worker with the wrong key must not burn trials).
    with pytest.raises(ObjectiveUnloadable) as info:
        run(c, exp_key, fn, 3, dispatch_timeout=2.0)
    msg = str(info.value)
    assert ": PayloadSignatureError: the objective payload's signature does not match, " \
        "although it names this worker's key (fingerprint " in msg
    assert "tampered with" in msg and "Nothing was unpickled" in msg
    trials = c.trials(exp_key)
    released = [t for t in trials if t.history]
    assert released and all(t.attempts == 0 and t.error is None for t in released)
    assert {t.state for t in trials} == {TrialState.CANCEL}
    assert not proof.exists(), "the tampered pickle was loaded"
    assert c.executions() == []


@pytest.mark.timeout(90)
def test_s22_large_captures_are_refused_or_go_through_gridfs(
        shared_cluster: FaultCluster, caplog: pytest.LogCaptureFixture) -> None:
    c = shared_cluster
    huge = np.ones(25_000_000)  # 200 MB

    def captures_200mb(p: dict[str, Any]) -> float:
        return float(p["x"] ** 2 + huge[0])

    with pytest.raises(PayloadTooLarge) as info:
        run(c, "s22-huge", captures_200mb, 2)
    msg = str(info.value)
    assert "the pickled objective is 200.0 MB, over the 67.1 MB limit " \
        "(max_payload_bytes=67108864)" in msg
    assert "Load large data inside the objective" in msg and "max_payload_bytes" in msg
    assert c.store.get_experiment("s22-huge") is None, "nothing may be written"
    assert c.store._files.count_documents({"metadata.exp_key": "s22-huge"}) == 0

    big = np.ones(2_500_000)  # 20 MB

    def captures_20mb(p: dict[str, Any]) -> float:
        return float((p["x"] - 0.3) ** 2 + big[0] - 1)

    with caplog.at_level(logging.INFO, logger="parzen.runners"):
        run(c, "s22-big", captures_20mb, 4)
    assert_clean_end(c, "s22-big", done=4)
    exp = c.store.get_experiment("s22-big")
    assert exp is not None
    objective = exp.objective
    assert objective is not None and objective.inline is None and objective.payload_id
    assert objective.size is not None and 20_000_000 < objective.size < 20_100_000
    assert c.store.get_payload(objective.payload_id)[:4] == b"PZN1"
    # 20 MB of capture, plus this file's source (the objective's code travels with it).
    assert re.search(r"objective payload for 's22-big': 20\.0\d MB, stored GridFS; large "
                     "payloads slow every worker's start", caplog.text)


@pytest.mark.timeout(60)
def test_s23_numpy_results_are_converted_and_others_rejected_with_the_key_path(
        shared_cluster: FaultCluster) -> None:
    c = shared_cluster
    run(c, "s23-numpy", numpy_result, 2)
    assert_clean_end(c, "s23-numpy", done=2)
    raw = c.store._trials.find_one({"exp_key": "s23-numpy", "tid": 0})["result"]
    assert raw["n"] == 7 and type(raw["n"]) is int
    assert raw["curve"] == [0.0, 1.0, 2.0] and raw["flag"] is True
    assert raw["nested"] == {"best": 0.5, "ids": [1, 2]}
    assert type(raw["loss"]) is float

    cases = [
        ("s23-object", unstorable_result,
         'result["extra"]["model"]: cannot store a '
         'tests.support.fault_objectives.Model in MongoDB'),
        ("s23-lock", unpicklable_result,
         'result["handles"][0]: cannot store a _thread.lock: it cannot be sent back'),
    ]
    for exp_key, fn, fragment in cases:
        with pytest.raises(AllTrialsFailed):
            run(c, exp_key, fn, 2)
        trials = assert_clean_end(c, exp_key, done=0, error=2)
        for t in trials:
            assert t.error is not None and t.error.type == "InvalidResult", t.error
            assert fragment in t.error.message
            assert t.attempts == 1 and lease_expiries([t]) == 0, "rejected at once, no retry"


@pytest.mark.timeout(30)
def test_secret_mismatch_stops_the_run_without_spending_a_trial(
        shared_cluster: FaultCluster) -> None:
    # Not tampering, but the same check: the coordinator signs with another key.
    c = shared_cluster
    other = "another-key-entirely-" + "1" * 16
    assert other != SECRET
    with pytest.raises(ObjectiveUnloadable, match="PayloadSignatureError") as info:
        run(c, "wrong-key", raises_for_positive, 2, secret=other, dispatch_timeout=2.0)
    msg = str(info.value)
    assert ("the coordinator and the worker use different keys (PARZEN_SECRET or the file "
            "PARZEN_SECRET_FILE names)") in msg
    assert f"signed with the key of fingerprint {key_fingerprint(other.encode())}, and this " \
        f"worker's key has fingerprint {key_fingerprint(SECRET.encode())}" in msg
    assert "PARZEN_SECRET_FILE" in msg, "the fix"
    assert other not in msg and SECRET not in msg, "no key is shown"
    names = {f"{w.pid}" for w in c.workers if w.poll() is None}
    assert all(f"(pid {pid} on " in msg for pid in names), "the message names each worker"
    for t in c.trials("wrong-key"):
        assert t.error is None and t.attempts == 0 and t.state is TrialState.CANCEL
