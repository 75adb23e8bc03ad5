"""Trial and experiment documents: round trips, numpy conversion, rejection with key paths."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import bson
import numpy as np
import pytest
from bson.codec_options import CodecOptions

from parzen.exceptions import ConfigError, InvalidResult, InvalidTrial, StoreError
from parzen.store import DriverLease, Experiment, ObjectiveKind, ObjectiveSpec
from parzen.store._documents import (
    SCHEMA_VERSION,
    driver_from_doc,
    driver_to_doc,
    encode_result,
    experiment_fields,
    experiment_from_doc,
    trial_from_doc,
    trial_to_doc,
)
from parzen.trial import Attempt, ErrorInfo, Intermediate, Owner, Trial, TrialState

T0 = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)  # millisecond precision
OWNER = Owner("w1", "host", 42, slot=2, pid_ns="boot/4026531836", pid_start=1234)


def full_trial(state: TrialState = TrialState.DONE) -> Trial:
    return Trial(
        exp_key="rf", tid=7, state=state, params={"lr": 0.01, "model": 1, "name": "a"},
        result={"status": "ok", "loss": 0.5, "extra": {"curve": [1.0, 0.5], "ok": True}},
        attempts=2, owner=OWNER, claim_token="tok", lease_expires=None, created=T0,
        book_time=T0 + timedelta(seconds=1), heartbeat_time=T0 + timedelta(seconds=2),
        end_time=T0 + timedelta(seconds=3.5), error=ErrorInfo("E", "msg", "tb"),
        history=(Attempt(1, OWNER, T0, T0 + timedelta(seconds=1), "lease expired"),
                 Attempt(1, None, None, T0, "released")),
        origin="tpe",
        intermediate=(Intermediate(1, 0.9, 1), Intermediate(2, 0.7, 1), Intermediate(1, 0.8, 2)),
    )


def through_bson(doc: dict[str, object]) -> dict[str, object]:
    """What a driver reads back: encoded and decoded, datetimes tz-aware."""
    decoded: dict[str, object] = bson.decode(bson.encode(doc),
                                             CodecOptions(tz_aware=True))
    return decoded


@pytest.mark.parametrize("state", list(TrialState))
def test_trial_round_trip(state: TrialState) -> None:
    t = full_trial(state)
    assert trial_from_doc(trial_to_doc(t)) == t
    assert trial_from_doc(through_bson(trial_to_doc(t))) == t


def test_document_layout() -> None:
    doc = trial_to_doc(full_trial())
    assert doc["schema_version"] == SCHEMA_VERSION
    assert doc["state"] == "done"
    assert doc["owner"] == {"worker": "w1", "slot": 2, "host": "host", "pid": 42,
                            "pid_ns": "boot/4026531836", "pid_start": 1234}
    assert doc["misc"] == {"tid": 7, "idxs": {"lr": [7], "model": [7], "name": [7]},
                           "vals": {"lr": [0.01], "model": [1], "name": ["a"]}}
    assert doc["duration_s"] == 2.5
    assert doc["history"][0] == {"attempt": 1, "owner": doc["owner"], "book_time": T0,
                                 "end_time": T0 + timedelta(seconds=1),
                                 "outcome": "lease expired"}
    assert trial_to_doc(full_trial(TrialState.CANCEL))["duration_s"] is None
    assert doc["intermediate"] == [{"step": 1, "loss": 0.9, "attempt": 1},
                                   {"step": 2, "loss": 0.7, "attempt": 1},
                                   {"step": 1, "loss": 0.8, "attempt": 2}]
    assert trial_to_doc(full_trial(TrialState.PRUNED))["state"] == "pruned"


def test_owner_worker_is_the_name_and_older_slot_names_are_split() -> None:
    # A query on owner.worker finds the worker by the name it was given, all slots alike.
    assert trial_to_doc(full_trial())["owner"]["worker"] == "w1"
    # Documents written before owner.slot existed named the slot in the worker.
    doc = trial_to_doc(full_trial())
    doc["owner"] = {"worker": "gpu-1/slot-3", "host": "h", "pid": 5}
    doc["history"][0]["owner"] = {"worker": "a/b/slot-12", "host": "h", "pid": 5}
    t = trial_from_doc(doc)
    assert t.owner == Owner("gpu-1", "h", 5, slot=3)
    assert t.history[0].owner == Owner("a/b", "h", 5, slot=12)
    # Names that only look alike are kept whole; hyperopt's owner is a bare string.
    doc["owner"] = {"worker": "gpu-1/slot-x", "host": "h", "pid": 5}
    assert trial_from_doc(doc).owner == Owner("gpu-1/slot-x", "h", 5)
    doc["owner"] = {"worker": "w/slot-1", "slot": 4, "host": "h", "pid": 5}
    assert trial_from_doc(doc).owner == Owner("w/slot-1", "h", 5, slot=4)
    doc["owner"] = "host:1234"
    assert trial_from_doc(doc).owner == Owner("host:1234", "", 0)
    assert str(OWNER) == "w1 slot 2 (pid 42 on host)"
    assert str(Owner("inline", "h", 1)) == "inline (pid 1 on h)"


def test_hyperopt_integer_state_and_naive_datetimes_are_read() -> None:
    doc = trial_to_doc(full_trial())
    doc.update(state=2, created=T0.replace(tzinfo=None))
    t = trial_from_doc(doc)
    assert t.state is TrialState.DONE
    assert t.created == T0 and t.created.tzinfo is not None


def test_newer_schema_is_refused() -> None:
    doc = {**trial_to_doc(full_trial()), "schema_version": SCHEMA_VERSION + 1}
    with pytest.raises(StoreError, match="schema_version=2"):
        trial_from_doc(doc)
    with pytest.raises(StoreError, match="unknown trial state"):
        trial_from_doc({**trial_to_doc(full_trial()), "state": "paused"})


def test_numpy_values_become_python() -> None:
    result = encode_result({
        "status": "ok", "loss": np.float32(0.25), "n": np.int64(3), "flag": np.bool_(True),
        "name": np.str_("x"), "grid": np.arange(4).reshape(2, 2),
        "nested": {"a": (np.float64(1.5), [np.int8(2)])},
    })
    assert result == {"status": "ok", "loss": 0.25, "n": 3, "flag": True, "name": "x",
                      "grid": [[0, 1], [2, 3]], "nested": {"a": [1.5, [2]]}}
    assert [type(result[k]) for k in ("loss", "n", "flag", "name")] == [float, int, bool, str]
    assert type(result["grid"][0][0]) is int
    bson.encode(result)  # plain BSON now


@pytest.mark.parametrize(("result", "path"), [
    ({"metrics": {"model": object()}}, r'result\["metrics"\]\["model"\]: cannot store a '
                                       r"builtins\.object"),
    ({"curve": [1.0, 2.0, {1, 2}]}, r'result\["curve"\]\[2\]: cannot store a builtins\.set'),
    ({"hist": {3: 1.0}}, r'result\["hist"\]: key 3 is a int'),
    ({"big": 2**70}, r'result\["big"\]: \d+ does not fit in a 64-bit integer'),
    ({"$where": 1}, r"result: key '\$where' cannot be stored"),
    ({"arr": np.array([object()], dtype=object)}, r'result\["arr"\]\[0\]'),
])
def test_unstorable_values_are_rejected_with_their_key_path(result: dict[object, object],
                                                            path: str) -> None:
    with pytest.raises(InvalidResult, match=path):
        encode_result({"status": "ok", "loss": 1.0, **result})  # type: ignore[dict-item]


def test_unstorable_params_and_experiment_values_name_their_kind() -> None:
    bad = Trial("e", 0, TrialState.NEW, {"x": object()})
    with pytest.raises(InvalidTrial, match=r'params\["x"\]'):
        trial_to_doc(bad)
    with pytest.raises(ConfigError, match=r'settings\["f"\]'):
        experiment_fields(Experiment("e", settings={"f": print}))


def test_experiment_round_trip() -> None:
    exp = Experiment("rf", space_fingerprint="abc", space={"lr": {"dist": "loguniform"}},
                     objective=ObjectiveSpec(ObjectiveKind.IMPORT, sha256="s", fingerprint="m:f",
                                             path="m:f", space_inline=b"space"),
                     algo={"name": "tpe"}, settings={"lease_s": 30.0},
                     driver=DriverLease(holder="c1", host="h", pid=1, started="t", expires=T0,
                                        pid_ns="boot/4026531836", pid_start=4711),
                     next_tid=12, created=T0, max_evals=100)
    doc = {"_id": "rf", **experiment_fields(exp), "driver": driver_to_doc(exp.driver),
           "next_tid": 12,
           "created": T0}
    assert experiment_from_doc(through_bson(doc)) == exp


def test_a_coordinator_is_seen_dead_only_from_its_own_pid_namespace() -> None:
    import socket

    from parzen import processes

    gone_pid = 2**22 + 12345  # above the default pid_max: no such process
    here = DriverLease(holder="c", host=socket.gethostname(), pid=gone_pid, started="t",
                       pid_ns=processes.pid_namespace(), pid_start=1)
    assert here.dead_here() == bool(processes.pid_namespace())
    # Another container with the same host name: its pids are not ours to look up.
    other = DriverLease(holder="c", host=socket.gethostname(), pid=gone_pid, started="t",
                        pid_ns="another-boot/4026531999", pid_start=1)
    assert not other.dead_here()
    # Written without a namespace (an older parzen): only the lease running out tells.
    old = DriverLease(holder="c", host=socket.gethostname(), pid=gone_pid, started="t")
    assert not old.dead_here()
    assert driver_from_doc({"holder": "c", "host": "h", "pid": 3}) == DriverLease(
        holder="c", host="h", pid=3, started="")
