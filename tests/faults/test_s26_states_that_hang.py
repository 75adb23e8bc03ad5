"""States that hung fmin forever (scenario 26, issue 15 item 3).

(a) A RUNNING trial whose ``lease_expires`` is not a date: a hand edit that dropped it, or a
hyperopt-era document (``state: 1``, no lease, no claim token). The reaper matched
``lease_expires <= now`` only, which a missing value never satisfies, so a resumed fmin
waited for the trial forever, and ``parzen status``, ``requeue --expired`` and ``cancel``
saw nothing wrong. Such a trial is now judged by its last heartbeat (or its book time), on
the experiment's lease; with neither, it counts as expired.

(b) A queued trial's document deleted by hand while fmin runs: its tid stayed "in flight"
in the coordinator and was republished every dispatch timeout for ever (the worker dropping
each message), and fmin never reached max_evals. Tids the store no longer returns are now
dropped from the run with a warning.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pytest

from parzen import fmin, tpe
from parzen.cli import main
from parzen.mongoexp import MongoTrials
from parzen.store import Experiment, TrialStore, lease_ended, lease_seconds
from parzen.store._mongo import MongoTrialStore
from parzen.trial import Owner, Trial, TrialState
from tests.support.fault_objectives import runs_of, sleepy, space
from tests.support.faults import (
    Background,
    FaultCluster,
    assert_clean_end,
    lease_expiries,
    wait_for,
)

pytestmark = [pytest.mark.integration]

HYPEROPT_X = 0.25  # the point of the hyperopt-era document; it must survive the requeue
CLI_SETTINGS = {"lease_s": 60.0, "heartbeat_s": 10.0, "trial_timeout_s": None,
                "max_attempts": 3}


def make_stuck(store: TrialStore, key: str) -> None:
    """An experiment left as an operator found it: tid 0 DONE; tid 1 RUNNING, its lease date
    removed by hand, last heartbeat 91 s ago; tid 2 RUNNING, lease date removed but a fresh
    heartbeat (a live worker); tid 3 a hyperopt-era RUNNING document (``state: 1``, no
    lease, no claim token, booked 200 s ago); tid 4 queued."""
    assert isinstance(store, MongoTrialStore)
    store.put_experiment(Experiment(key, settings=CLI_SETTINGS, max_evals=5))
    tids = store.allocate_tids(key, 5)
    store.insert_new([Trial(key, tid, TrialState.NEW, {"x": -0.9 + 0.1 * tid, "k": 0})
                      for tid in tids])
    worker = Owner("gpu-1/slot-1", "node-1", 4321)
    done = store.claim(key, 0, worker, 60)
    assert done is not None and done.claim_token
    store.finish(key, 0, done.claim_token, TrialState.DONE, {"status": "ok", "loss": 0.5})
    store.claim(key, 1, worker, 60)
    store.claim(key, 2, worker, 60)
    now = store.now()
    raw = store._trials
    raw.update_one({"exp_key": key, "tid": 1},
                   {"$unset": {"lease_expires": ""},
                    "$set": {"heartbeat_time": now - timedelta(seconds=91),
                             "book_time": now - timedelta(seconds=120)}})
    raw.update_one({"exp_key": key, "tid": 2}, {"$unset": {"lease_expires": ""}})
    raw.replace_one({"exp_key": key, "tid": 3}, {
        "exp_key": key, "tid": 3, "state": 1, "spec": None, "version": 0,
        "result": {"status": "new"}, "owner": "old-host:1234",
        "misc": {"tid": 3, "cmd": ["domain_attachment", "FMinIter_Domain"], "workdir": None,
                 "idxs": {"x": [3], "k": [3]}, "vals": {"x": [HYPEROPT_X], "k": [0]}},
        "book_time": now - timedelta(seconds=200), "refresh_time": now - timedelta(seconds=200)})


def test_s26_lease_ended_is_one_rule_for_dated_and_undated_leases() -> None:
    now = datetime(2030, 1, 1, tzinfo=timezone.utc)
    ago = [now - timedelta(seconds=s) for s in (0, 30, 91)]

    def running(**times: Any) -> Trial:
        return Trial("e", 0, TrialState.RUNNING, {}, **times)

    assert lease_ended(running(lease_expires=now), now, 60)
    assert not lease_ended(running(lease_expires=now + timedelta(seconds=1)), now, 1)
    # No lease date: the last heartbeat, else the claim time, plus the lease.
    assert lease_ended(running(heartbeat_time=ago[2], book_time=ago[2]), now, 60)
    assert not lease_ended(running(heartbeat_time=ago[1], book_time=ago[2]), now, 60)
    assert lease_ended(running(book_time=ago[2]), now, 60)
    assert not lease_ended(running(book_time=ago[0]), now, 60)
    assert lease_ended(running(), now, 3600), "nothing will ever renew it"
    assert not lease_ended(Trial("e", 0, TrialState.NEW, {}), now, 60)
    assert lease_seconds(Experiment("e", settings={"lease_s": 9.0})) == 9.0
    assert lease_seconds(Experiment("e", settings={"lease_s": "x"})) == 60.0
    assert lease_seconds(None) == 60.0


def parzen(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    assert code == 0, f"parzen {' '.join(argv)} exited {code}: {captured.err}"
    return captured.out, captured.err


def test_s26a_status_requeue_and_cancel_agree_with_the_reaper_on_undated_leases(
        cluster: FaultCluster, capsys: pytest.CaptureFixture[str]) -> None:
    url = cluster.mongo_url
    make_stuck(cluster.store, "s26-status")
    text, _ = parzen(capsys, "status", "s26-status", "--mongo", url)
    assert "running 3" in text, text  # the hyperopt-era state 1 counts as running
    assert "expired leases: 2 (trials 1, 3)" in text, text
    assert "parzen requeue s26-status --expired" in text
    snap = json.loads(parzen(capsys, "status", "s26-status", "--mongo", url,
                             "--format", "json")[0])
    assert snap["expired_leases"] == [1, 3]
    assert [r["tid"] for r in snap["running_trials"]] == [1, 2, 3]

    out, _ = parzen(capsys, "requeue", "s26-status", "--mongo", url, "--expired")
    assert out == "requeued 2 trials of 's26-status' whose lease expired\n"
    by_tid = {t.tid: t for t in cluster.trials("s26-status")}
    assert by_tid[1].state is TrialState.NEW and by_tid[3].state is TrialState.NEW
    assert by_tid[2].state is TrialState.RUNNING, "a live heartbeat is not an expired lease"
    assert by_tid[3].params == {"x": HYPEROPT_X, "k": 0}, "the hyperopt point was lost"
    assert by_tid[1].history[-1].outcome == "lease expired"

    make_stuck(cluster.store, "s26-cancel")
    out, _ = parzen(capsys, "cancel", "s26-cancel", "--mongo", url)
    assert out == ("cancelled 3 new trials of 's26-cancel' (2 of them were running on "
                   "workers whose lease had expired)\n"), out
    counts = cluster.counts("s26-cancel")
    assert counts[TrialState.CANCEL] == 3 and counts[TrialState.RUNNING] == 1, counts


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_s26b_a_resume_over_running_trials_without_a_lease_date_finishes(
        cluster: FaultCluster) -> None:
    make_stuck(cluster.store, "s26")
    cluster.start_ready(1, concurrency=2)
    trials = MongoTrials(cluster.mongo_url, exp_key="s26", parallelism=2, **cluster.kwargs())

    def resume() -> Any:
        try:
            return fmin(sleepy, space(0.1), algo=tpe.suggest, max_evals=6, trials=trials,
                        show_progressbar=False, rstate=np.random.default_rng(26))
        finally:
            trials.close()

    # Before the fix this resume was still waiting for trials 1, 2 and 3 after 90 s.
    Background(resume).join(90)
    done = {t.tid: t for t in assert_clean_end(cluster, "s26", done=6)}
    # 1 and 3 were expired at once; 2 (fresh heartbeat) once the run's 2 s lease ran out.
    assert lease_expiries(done.values()) == 3
    assert done[3].params == {"x": HYPEROPT_X, "k": 0}
    assert runs_of(cluster.executions(), HYPEROPT_X) == 1


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_s26c_a_queued_trial_deleted_by_hand_is_dropped_not_republished_forever(
        cluster: FaultCluster, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="parzen")
    trials = MongoTrials(cluster.mongo_url, exp_key="s26c", parallelism=2,
                         **cluster.kwargs(dispatch_timeout=0.5))

    def run() -> Any:
        try:
            return fmin(sleepy, space(0.1), algo=tpe.suggest, max_evals=4, trials=trials,
                        show_progressbar=False, rstate=np.random.default_rng(3))
        finally:
            trials.close()

    background = Background(run)
    # No worker yet: the first two trials wait in the queue.
    def two_queued() -> list[Trial]:
        queued = cluster.store.find("s26c", states=[TrialState.NEW])
        return queued if len(queued) == 2 else []

    gone = wait_for(two_queued, 30, "two queued trials")[0].tid
    assert cluster.store._trials.delete_one({"exp_key": "s26c", "tid": gone}).deleted_count
    wait_for(lambda: any(f"trial {gone} of 's26c' is no longer in the store" in r.getMessage()
                         for r in caplog.records), 30, "the coordinator to drop the tid")
    worker = cluster.start_ready(1)[0]
    background.join(60)
    done = assert_clean_end(cluster, "s26c", done=4)
    assert gone not in {t.tid for t in done}
    # The message published before the delete is dropped once; nothing republishes it.
    assert cluster.log_of(worker).count("does not exist (deleted by hand") <= 1
    dropped = [r.getMessage() for r in caplog.records if "no longer in the store" in
               r.getMessage()]
    assert len(dropped) == 1 and "it will not be published again" in dropped[0], dropped
