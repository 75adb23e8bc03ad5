"""Malformed trial documents (scenario 27, issue 15 item 4).

Documents edited by hand or written by another program: a missing tid, tid ``"zero"``, a
result that is a string, state ``7``, a DONE trial whose loss is ``"abc"``. They made
``status``, ``trials``, ``best``, ``errors`` and a coordinator's resume die with raw
``KeyError``/``ValueError`` tracebacks, and one of them anywhere broke ``parzen experiments``
for the whole database. Now the read tools skip each one, report it by ``_id`` and
experiment (counted as unreadable), and the coordinator refuses to resume, naming every
``_id`` and the fix.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from bson import ObjectId

from parzen import fmin, tpe
from parzen.cli import main
from parzen.exceptions import UnreadableTrials
from parzen.mongoexp import MongoTrials
from parzen.store import Experiment
from parzen.store._mongo import MongoTrialStore
from parzen.trial import Owner, Trial, TrialState
from tests.support.fault_objectives import sleepy, space
from tests.support.faults import FaultCluster

pytestmark = [pytest.mark.integration]

BAD = "s27-bad"
GOOD = "s27-good"


def finished(store: MongoTrialStore, key: str, losses: list[float]) -> None:
    store.put_experiment(Experiment(key, max_evals=len(losses)))
    tids = store.allocate_tids(key, len(losses))
    store.insert_new([Trial(key, tid, TrialState.NEW, {"x": 0.1 * tid, "k": 0})
                      for tid in tids])
    for tid, loss in zip(tids, losses, strict=True):
        t = store.claim(key, tid, Owner("cpu-1/slot-1", "node-9", 7), 60)
        assert t is not None and t.claim_token
        store.finish(key, tid, t.claim_token, TrialState.DONE, {"status": "ok", "loss": loss})


def add_bad_documents(store: MongoTrialStore) -> dict[str, ObjectId]:
    """Five malformed documents in ``BAD``, next to three good trials; their ``_id``s by
    what is wrong. The one without a tid has the lowest loss, so ``best`` must skip it."""
    finished(store, BAD, [0.5, 0.4, 0.3])
    now = store.now()
    base = {"exp_key": BAD, "params": {"x": 0.0, "k": 0}, "attempts": 1,
            "created": now, "book_time": now, "end_time": now}
    docs = {
        "no tid": {**base, "state": "done", "result": {"status": "ok", "loss": 0.001}},
        "tid zero": {**base, "tid": "zero", "state": "done",
                     "result": {"status": "ok", "loss": 0.2}},
        "string result": {**base, "tid": 100, "state": "error", "result": "oops"},
        "state 7": {**base, "tid": 101, "state": 7, "result": {"status": "ok", "loss": 0.2}},
        "loss abc": {**base, "tid": 102, "state": "done",
                     "result": {"status": "ok", "loss": "abc"}},
    }
    return {what: store._trials.insert_one(doc).inserted_id for what, doc in docs.items()}


def mongosh_id(oid: ObjectId) -> str:
    return f'ObjectId("{oid}")'


def parzen(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    assert code == 0, f"parzen {' '.join(argv)} exited {code}: {captured.err}"
    assert "Traceback" not in captured.err
    return captured.out, captured.err


def test_s27_read_tools_skip_bad_documents_and_name_them(
        cluster: FaultCluster, capsys: pytest.CaptureFixture[str]) -> None:
    store, url = cluster.store, cluster.mongo_url
    finished(store, GOOD, [0.9, 0.8])
    ids = add_bad_documents(store)

    out, err = parzen(capsys, "experiments", "--mongo", url, "--format", "json")
    rows = {r["exp_key"]: r for r in json.loads(out)}
    assert set(rows) == {BAD, GOOD}, "one bad document broke the whole listing"
    assert rows[GOOD]["done"] == 2 and rows[GOOD]["best_loss"] == 0.8
    assert rows[BAD]["best_loss"] == 0.3
    assert (f"{BAD!r} _id {mongosh_id(ids['state 7'])}: unknown trial state 7: expected "
            "one of 'new', 'running', 'done', 'error', 'cancel', 'pruned' (or their numbers "
            "0-5, hyperopt's 0-4 and pruned's 5)") in err, err

    out, err = parzen(capsys, "trials", BAD, "--mongo", url, "--format", "json")
    assert [r["tid"] for r in json.loads(out)] == [0, 1, 2]
    assert "skipped 5 unreadable trial documents" in err, err
    for what, oid in ids.items():
        assert mongosh_id(oid) in err, (what, err)
    assert f"{BAD!r} _id {mongosh_id(ids['no tid'])}: tid is missing" in err
    assert f"_id {mongosh_id(ids['tid zero'])}: tid is 'zero' (a str), expected an integer" \
        in err
    assert f"_id {mongosh_id(ids['string result'])}: result is 'oops' (a str)" in err
    assert f"_id {mongosh_id(ids['loss abc'])}: result.loss is 'abc' (a str), expected a " \
           "number" in err
    assert "db.trials.deleteMany({_id: {$in: [ObjectId(" in err

    out, err = parzen(capsys, "best", BAD, "--mongo", url, "--format", "json")
    assert json.loads(out)["tid"] == 2 and json.loads(out)["loss"] == 0.3
    assert mongosh_id(ids["no tid"]) in err, err

    out, err = parzen(capsys, "status", BAD, "--mongo", url, "--format", "json")
    snap = json.loads(out)
    assert snap["done"] == 3 and snap["best"] == {"tid": 2, "loss": 0.3}, snap
    assert snap["unreadable"] >= 1 and mongosh_id(ids["state 7"]) in err
    text, _ = parzen(capsys, "status", BAD, "--mongo", url)
    assert "unreadable" in text and "trial documents skipped" in text, text

    out, err = parzen(capsys, "errors", BAD, "--mongo", url, "--format", "json")
    assert json.loads(out) == []
    assert mongosh_id(ids["string result"]) in err, err


@pytest.mark.timeout(90)
def test_s27_a_coordinator_refuses_to_resume_naming_every_bad_document(
        cluster: FaultCluster) -> None:
    ids = add_bad_documents(cluster.store)
    before = cluster.store.get_experiment(BAD)
    trials = MongoTrials(cluster.mongo_url, exp_key=BAD, parallelism=1, **cluster.kwargs())
    try:
        with pytest.raises(UnreadableTrials) as info:
            fmin(sleepy, space(0.0), algo=tpe.suggest, max_evals=6, trials=trials,
                 show_progressbar=False, rstate=np.random.default_rng(0))
    finally:
        trials.close()
    msg = str(info.value)
    assert msg.startswith(f"refusing to resume {BAD!r}: 5 trial documents"), msg
    for what, oid in ids.items():
        assert mongosh_id(oid) in msg, (what, msg)
    assert "db.trials.deleteMany({_id: {$in: [" in msg
    # Refused before anything was written: no driver lease taken, no trial added.
    after = cluster.store.get_experiment(BAD)
    assert after is not None and before is not None
    assert after.driver is None and after.next_tid == before.next_tid
