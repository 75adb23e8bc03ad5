"""Results the store cannot hold: over MongoDB's 16 MB document limit, containing themselves,
or nested too deep to send back (scenario 24, issue 15).

Before: the worker's ``finish`` raised ``DocumentTooLarge`` or ``RecursionError``, which
``run_trial`` did not handle; the heartbeat had already stopped, so the trial sat RUNNING
until its lease expired, ran ``max_attempts`` times and ended as ``LeaseExpired``, with the
real cause only in the worker's log. Now the trial is ERROR on its first attempt, with the
reason on the trial.

The objectives are defined inside the tests, so they travel by value (same Python here);
they mark each execution with ``tests.support.fault_objectives.mark``, which the workers
import by name.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import bson
import numpy as np
import pytest

from parzen import Trials, fmin, tpe
from parzen.exceptions import AllTrialsFailed, InvalidResult, ResultTooLarge
from parzen.execution.run import OutcomeStatus, run_trial
from parzen.mongoexp import MongoTrials
from parzen.parallel import ParallelTrials
from parzen.store import InMemoryTrialStore
from parzen.store._documents import (
    MAX_DOCUMENT_BYTES,
    MAX_ERROR_CHARS,
    encode_result,
    trial_to_doc,
)
from parzen.trial import ErrorInfo, Owner, Trial, TrialState
from tests.support.fault_objectives import loss, mark, runs_of, space
from tests.support.faults import FaultCluster, assert_clean_end, lease_expiries

pytestmark = [pytest.mark.integration]

# The first point misbehaves (x > 0), the second does not; the rest come from TPE.
BAD_AND_GOOD = [{"x": 0.5, "k": 0}, {"x": -0.5, "k": 0}]
TWENTY_MB = 20 << 20


def big_for_positive(p: dict[str, Any]) -> dict[str, Any]:
    """A 20 MB result for x > 0: model predictions returned instead of written to a file."""
    mark(p)
    result: dict[str, Any] = {"loss": loss(p), "status": "ok"}
    if p["x"] > 0:
        result["preds"] = "y" * TWENTY_MB
    return result


def contains_itself_for_positive(p: dict[str, Any]) -> dict[str, Any]:
    """For x > 0 the result holds a reference to itself (a back-pointer left in by mistake)."""
    mark(p)
    result: dict[str, Any] = {"loss": loss(p), "status": "ok"}
    if p["x"] > 0:
        result["me"] = result
    return result


def deep_for_positive(p: dict[str, Any]) -> dict[str, Any]:
    """For x > 0 the result nests 100,000 lists deep: too deep for pickle and for BSON."""
    mark(p)
    result: dict[str, Any] = {"loss": loss(p), "status": "ok"}
    if p["x"] > 0:
        nested: list[Any] = []
        for _ in range(100_000):
            nested = [nested]
        result["tree"] = nested
    return result


def raises_20mb_for_positive(p: dict[str, Any]) -> float:
    """For x > 0 the objective raises with a 20 MB message (a dump of its input, say)."""
    mark(p)
    if p["x"] > 0:
        raise ValueError("bad input: " + "y" * TWENTY_MB)
    return loss(p)


def mongo_run(cluster: FaultCluster, exp_key: str, fn: Any, max_evals: int) -> None:
    trials = MongoTrials(cluster.mongo_url, exp_key=exp_key, parallelism=2,
                         **cluster.kwargs(max_attempts=3))
    try:
        fmin(fn, space(0.0), algo=tpe.suggest, max_evals=max_evals, trials=trials,
             show_progressbar=False, rstate=np.random.default_rng(0),
             points_to_evaluate=BAD_AND_GOOD)
    finally:
        trials.close()


def assert_failed_at_once(cluster: FaultCluster, exp_key: str, kind: str,
                          fragments: list[str]) -> None:
    """Every trial with x > 0 is ERROR on its first attempt with ``kind`` and ``fragments``
    in its message; every other trial is DONE; nothing waited out a lease."""
    trials = cluster.trials(exp_key)
    bad = [t for t in trials if t.params["x"] > 0]
    assert bad and bad[0].tid == 0
    assert_clean_end(cluster, exp_key, done=len(trials) - len(bad), error=len(bad))
    for t in bad:
        assert t.state is TrialState.ERROR
        assert t.error is not None and t.error.type == kind, t.error
        for fragment in fragments:
            assert fragment in t.error.message, t.error.message
        assert t.attempts == 1 and t.history == (), "failed on the first attempt, no retry"
        assert lease_expiries([t]) == 0
        assert runs_of(cluster.executions(), t.params["x"]) == 1
        assert t.result == {"status": "fail"}


# ---- MongoTrials with real workers -----------------------------------------------------------

@pytest.mark.timeout(120)
def test_s24_result_over_16mb_is_error_at_once(shared_cluster: FaultCluster) -> None:
    c = shared_cluster
    c.clear_side_effects()
    mongo_run(c, "s24-big", big_for_positive, 4)
    assert_failed_at_once(c, "s24-big", "ResultTooLarge", [
        "result is 20.0 MB, over MongoDB's 16 MB document limit",
        'its largest part is result["preds"] (20.0 MB)',
        "store large artefacts in files or GridFS"])


@pytest.mark.timeout(120)
def test_s24_result_that_contains_itself_is_error_at_once(shared_cluster: FaultCluster) -> None:
    c = shared_cluster
    c.clear_side_effects()
    mongo_run(c, "s24-cycle", contains_itself_for_positive, 4)
    # The objective's dict is result["me"]: fmin's result is a copy of it (with "loss" a
    # float), and the copy's "me" is the original, which holds itself under "me".
    assert_failed_at_once(c, "s24-cycle", "InvalidResult", [
        'result["me"]["me"]: the result contains itself (result["me"]["me"] is result["me"])',
        "MongoDB documents cannot hold a reference cycle"])


@pytest.mark.timeout(120)
def test_s24_result_nested_too_deep_is_error_at_once(shared_cluster: FaultCluster) -> None:
    c = shared_cluster
    c.clear_side_effects()
    mongo_run(c, "s24-deep", deep_for_positive, 4)
    assert_failed_at_once(c, "s24-deep", "InvalidResult", [
        'result["tree"]', "nested too deep to be sent back from the objective's process"])


@pytest.mark.timeout(120)
def test_s24_error_with_a_20mb_message_is_stored_cut_at_once(
        shared_cluster: FaultCluster) -> None:
    c = shared_cluster
    c.clear_side_effects()
    mongo_run(c, "s24-raise", raises_20mb_for_positive, 4)
    assert_failed_at_once(c, "s24-raise", "ValueError", [
        "bad input: yyy", f"[... {TWENTY_MB + 11 - MAX_ERROR_CHARS} more characters not "
        "stored]"])
    for t in c.trials("s24-raise"):
        if t.error is not None:
            assert len(t.error.message) < MAX_ERROR_CHARS + 100
            assert t.error.traceback.startswith("[") and "characters not stored ...]" in \
                t.error.traceback
            assert t.error.traceback.rstrip().endswith("yyy"), "the end (the raise) is kept"
            assert "raises_20mb_for_positive" not in t.error.traceback[:100]


# ---- the embedded modes: the in-memory store holds what it can, and never crashes -------------

@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", ["Trials", "ParallelTrials"])
def test_s24_embedded_modes_record_every_trial(mode: str) -> None:
    """The in-memory store has no document limit and keeps any Python object, as hyperopt's
    ``Trials`` does: a 20 MB or self-containing result is DONE. What the sandbox cannot send
    back (ParallelTrials: a result nested 100,000 deep) is a clear ERROR, never a crash."""
    for fn, expect in [(big_for_positive, None), (contains_itself_for_positive, None),
                       (deep_for_positive, "nested too deep to be sent back")]:
        trials = Trials() if mode == "Trials" else ParallelTrials(parallelism=2)
        fmin(fn, space(0.0), algo=tpe.suggest, max_evals=3, trials=trials,
             show_progressbar=False, rstate=np.random.default_rng(0),
             points_to_evaluate=BAD_AND_GOOD)
        found = trials.store.find(trials.exp_key)
        assert len(found) == 3 and all(t.state.is_finished() for t in found)
        bad = [t for t in found if t.params["x"] > 0]
        assert bad and bad[0].tid == 0
        for t in bad:
            if expect is None or mode == "Trials":  # in-process: nothing is pickled
                assert t.state is TrialState.DONE, t.error
            else:
                assert t.state is TrialState.ERROR and t.error is not None
                assert t.error.type == "InvalidResult" and expect in t.error.message
                assert 'result["tree"]' in t.error.message
                assert t.attempts == 1
        assert all(t.state is TrialState.DONE for t in found if t.params["x"] <= 0)


# ---- the encoding rules, and run_trial's last line of defence ------------------------------

def test_encode_result_measures_the_encoded_document() -> None:
    just_under = {"status": "ok", "loss": 1.0, "blob": b"\0" * (MAX_DOCUMENT_BYTES - 100)}
    assert len(bson.encode(encode_result(just_under))) <= MAX_DOCUMENT_BYTES
    with pytest.raises(ResultTooLarge) as info:
        encode_result({**just_under, "more": b"\0" * 200})
    assert str(info.value).startswith("result is 16.0 MB, over MongoDB's 16 MB document limit")
    assert isinstance(info.value, InvalidResult), "run_trial's InvalidResult path handles it"

    # The result alone fits, the trial's document does not: refused all the same, before a
    # server (which would say BSONObjectTooLarge) or pymongo (DocumentTooLarge) sees it.
    trial = Trial("e", 0, TrialState.DONE, {"x": 0.1}, result=just_under,
                  error=ErrorInfo("E", "m" * 1000))
    with pytest.raises(ResultTooLarge, match="the trial's document would be 16.0 MB"):
        trial_to_doc(trial)


def test_encode_result_names_a_cycle_and_a_depth_mongodb_refuses() -> None:
    shared = [1, 2]
    ok = {"status": "ok", "loss": 1.0, "a": shared, "b": shared}  # shared, not a cycle
    assert encode_result(ok)["b"] == [1, 2]

    inner: dict[str, Any] = {}
    cyclic = {"status": "ok", "loss": 1.0, "m": {"inner": inner}}
    inner["up"] = cyclic["m"]
    with pytest.raises(InvalidResult, match=r'result\["m"\]\["inner"\]\["up"\]: the result '
                       r'contains itself \(result\["m"\]\["inner"\]\["up"\] is result\["m"\]\)'):
        encode_result(cyclic)

    deep: list[Any] = []
    for _ in range(150):
        deep = [deep]
    with pytest.raises(InvalidResult, match="nested more than 100 levels deep"):
        encode_result({"status": "ok", "loss": 1.0, "deep": deep})


class _RefusingStore(InMemoryTrialStore):
    """Refuses to record a DONE trial with an error no one planned for (a driver bug, an
    encoding error of a kind parzen does not know)."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def finish(self, exp_key: str, tid: int, claim_token: str, state: TrialState,
               result: Mapping[str, Any], error: ErrorInfo | None = None) -> bool:
        if state is TrialState.DONE:
            raise self.error
        return super().finish(exp_key, tid, claim_token, state, result, error)


@pytest.mark.parametrize("error", [RuntimeError("driver bug"), RecursionError("too deep")])
def test_any_error_of_finish_records_error_not_a_running_trial(error: Exception) -> None:
    store = _RefusingStore(error)
    store.insert_new([Trial("e", 0, TrialState.NEW, {"x": 0.1})])
    outcome = run_trial(store, "e", 0, Owner("w", "h", 1),
                        lambda params, tid, abort: {"status": "ok", "loss": 1.0},
                        lease_s=60.0, heartbeat_s=0.05)
    assert outcome.status is OutcomeStatus.ERROR and outcome.exception is error
    t = store.get("e", 0)
    assert t.state is TrialState.ERROR and t.error is not None
    assert t.error.type == type(error).__name__
    assert t.error.message == (f"the store refused to record the result: "
                               f"{type(error).__name__}: {error}")
    assert t.attempts == 1


def test_a_store_that_refuses_the_error_too_gets_the_trial_back() -> None:
    class Broken(InMemoryTrialStore):
        def finish(self, *args: Any, **kwargs: Any) -> bool:
            raise RuntimeError("broken store")

    store = Broken()
    store.insert_new([Trial("e", 0, TrialState.NEW, {"x": 0.1})])
    with pytest.raises(RuntimeError, match="broken store"):
        run_trial(store, "e", 0, Owner("w", "h", 1),
                  lambda params, tid, abort: {"status": "ok", "loss": 1.0})
    t = store.get("e", 0)
    assert t.state is TrialState.NEW, "released, not left RUNNING until its lease expires"
    assert t.attempts == 1 and [a.outcome for a in t.history] == [
        "released: the store refused to record the outcome: RuntimeError: broken store"]


def test_unpicklable_part_of_a_cyclic_result_is_named() -> None:
    """The child's search for the part that cannot be pickled survives a cycle."""
    def cyclic_with_a_lock(p: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {"loss": loss(p), "status": "ok", "lock": threading.Lock()}
        result["me"] = result
        return result

    trials = ParallelTrials(parallelism=1)
    with pytest.raises(AllTrialsFailed):
        fmin(cyclic_with_a_lock, space(0.0), algo=tpe.suggest, max_evals=1, trials=trials,
             show_progressbar=False, rstate=np.random.default_rng(0))
    t, = trials.store.find(trials.exp_key)
    assert t.state is TrialState.ERROR and t.error is not None
    assert t.error.type == "InvalidResult"
    assert t.error.message.startswith('result["lock"]: cannot store a _thread.lock')
