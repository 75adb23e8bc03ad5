"""The store contract over every backend, plus what only MongoTrialStore does."""

from __future__ import annotations

import time

import gridfs
import numpy as np
import pytest
from bson import ObjectId

from parzen.exceptions import InvalidResult, StoreError, StoreUnavailable
from parzen.store._mongo import PAYLOAD_CHUNK_BYTES, MongoTrialStore
from parzen.trial import Owner, TrialState
from tests.support import mongo as mf

from .conftest import StoreCase
from .contract import EXP, TrialStoreContract, new


class TestStores(TrialStoreContract):
    """Every backend passes the same contract (backends: see conftest.BACKENDS)."""


def test_unstorable_result_is_rejected_before_writing(mongo_case: StoreCase) -> None:
    store = mongo_case.store
    store.insert_new(new(0))
    t = store.claim(EXP, 0, Owner("w", "h", 1), 60)
    assert t is not None and t.claim_token
    with pytest.raises(InvalidResult, match=r'result\["metrics"\]\["model"\]'):
        store.finish(EXP, 0, t.claim_token, TrialState.DONE,
                     {"status": "ok", "loss": 1.0, "metrics": {"model": object()}})
    assert store.get(EXP, 0).state is TrialState.RUNNING
    result = {"status": "ok", "loss": np.float32(0.5), "curve": np.arange(3)}
    assert store.finish(EXP, 0, t.claim_token, TrialState.DONE, result)
    assert store.get(EXP, 0).result == {"status": "ok", "loss": 0.5, "curve": [0, 1, 2]}


@pytest.mark.parametrize("size", [0, 10, PAYLOAD_CHUNK_BYTES, 3 * PAYLOAD_CHUNK_BYTES + 7])
def test_payload_round_trip(mongo_case: StoreCase, size: int) -> None:
    store = mongo_case.store
    assert isinstance(store, MongoTrialStore)
    data = np.random.default_rng(size).bytes(size)
    payload_id = store.put_payload(EXP, data)
    assert store.get_payload(payload_id) == data
    if mongo_case.name != "mongomock":  # pymongo's GridFS reads what we wrote
        bucket = gridfs.GridFSBucket(store._db, bucket_name="payloads")
        assert bucket.open_download_stream(ObjectId(payload_id)).read() == data
    store.delete_payload(payload_id)
    store.delete_payload(payload_id)  # idempotent
    with pytest.raises(StoreError, match="no payload"):
        store.get_payload(payload_id)


def test_delete_experiment_removes_its_payloads(mongo_case: StoreCase) -> None:
    store = mongo_case.store
    assert isinstance(store, MongoTrialStore)
    mine, other = store.put_payload(EXP, b"a"), store.put_payload("other", b"b")
    store.delete_experiment(EXP)
    with pytest.raises(StoreError):
        store.get_payload(mine)
    assert store.get_payload(other) == b"b"


def test_documents_are_plain_bson_for_mongosh(mongo_case: StoreCase) -> None:
    store = mongo_case.store
    assert isinstance(store, MongoTrialStore)
    store.insert_new(new(0, 1))
    t = store.claim(EXP, 1, Owner("w", "h", 1), 60)
    assert t is not None and t.claim_token
    store.finish(EXP, 1, t.claim_token, TrialState.DONE, {"status": "ok", "loss": 0.5})
    # What a user types in mongosh: db.trials.find({exp_key: "exp", state: "done"})
    [doc] = store._db.trials.find({"exp_key": EXP, "state": "done"}).sort("result.loss", 1)
    assert doc["schema_version"] == 1
    assert doc["owner"] == {"worker": "w", "slot": None, "host": "h", "pid": 1, "pid_ns": "",
                            "pid_start": 0}
    assert doc["misc"] == {"tid": 1, "idxs": {"x": [1], "c": [1]}, "vals": {"x": [0.1], "c": [1]}}
    assert doc["duration_s"] >= 0
    names = {i["name"] for i in store._db.trials.list_indexes()}
    assert {"exp_tid", "exp_state_tid", "exp_state_lease", "exp_loss",
            "worker_heartbeat"} <= names


@pytest.mark.integration  # starts a wire-protocol test server of its own
def test_store_unavailable_during_restart_then_recovers() -> None:
    with mf.running_wire_server() as server:
        store = MongoTrialStore.from_url(server.url + "&serverSelectionTimeoutMS=300")
        try:
            store.insert_new(new(0))
            server.stop()
            start = time.monotonic()
            with pytest.raises(StoreUnavailable, match=r"127\.0\.0\.1.*0\.3 s"):
                store.get(EXP, 0)
            assert time.monotonic() - start < 3
            server.start()  # same port, same data
            # pymongo re-checks a failed server at most every 0.5 s (minHeartbeatFrequencyMS),
            # longer than this client's selection timeout: the caller retries, as a worker does.
            deadline = time.monotonic() + 5
            while True:
                try:
                    assert store.get(EXP, 0).state is TrialState.NEW
                    break
                except StoreUnavailable:
                    if time.monotonic() > deadline:
                        raise
        finally:
            store.close()
