"""``parzen stop EXP``: another shell asks the live coordinator, through the store, to end
its run as Ctrl-C would (issue 18 item 12)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from parzen import hp, tpe
from parzen.cli import main
from parzen.fmin import fmin
from parzen.mongoexp import MongoTrials
from parzen.store import DriverLease
from parzen.trial import TrialState
from tests.support.fault_objectives import sleepy, space
from tests.support.faults import Coordinator, FaultCluster, wait_for

pytestmark = [pytest.mark.integration]


def stop(cluster: FaultCluster, exp_key: str, capsys: pytest.CaptureFixture[str],
         *extra: str) -> tuple[int, str, str]:
    code = main(["stop", exp_key, "--mongo", cluster.mongo_url, *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.timeout(120)
def test_parzen_stop_ends_a_live_run_as_ctrl_c_would(cluster: FaultCluster, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    cluster.start_ready(2)
    run = Coordinator(cluster, {"exp_key": "stopped", "max_evals": 1000, "parallelism": 4,
                                "sleep": 0.3}, tmp_path)
    wait_for(lambda: cluster.counts("stopped")[TrialState.DONE] >= 2, 60, "two trials done")

    code, out, err = stop(cluster, "stopped", capsys)

    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"asked the coordinator of 'stopped' (pid {run.proc.pid} on ")
    assert lines[0].endswith(") to end its run")
    assert lines[1].startswith("stopped: 'stopped' has ") and "the best loss is " in lines[1]
    assert run.wait(30) == 0, run.log_text()
    result = run.result()
    assert "error" not in result, result
    assert result["best"] == result["best_so_far"], "fmin returned the best so far"
    assert result["new_or_running"] == 0, "queued and running trials were cancelled"
    assert result["counts"]["DONE"] < 1000
    log = run.log_text()
    assert "stopped by parzen stop (asked by " in log
    assert "ending the run of 'stopped' as Ctrl-C would" in log
    exp = cluster.store.get_experiment("stopped")
    assert exp is not None and exp.driver is None and exp.stop_request is None

    # Nothing runs now: said, with exit status 1.
    code, out, err = stop(cluster, "stopped", capsys)
    assert (code, out) == (1, "")
    assert err.startswith("parzen stop: no coordinator is running 'stopped' (its driver: none)"
                          ": nothing to stop")


@pytest.mark.timeout(60)
def test_a_stop_before_any_trial_finished_says_so(cluster: FaultCluster, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    # No worker: the trials wait on the queue until the stop.
    run = Coordinator(cluster, {"exp_key": "early", "max_evals": 10, "parallelism": 2},
                      tmp_path)
    wait_for(lambda: cluster.counts("early")[TrialState.NEW] == 2, 30, "two queued trials")

    code, out, err = stop(cluster, "early", capsys, "--wait", "30")

    assert code == 0, err
    assert run.wait(30) == 2, run.log_text()
    error = run.result()["error"]
    assert error.startswith("NoTrialFinished: stopped by parzen stop (asked by ")
    assert ": no trial finished; 2 queued trials were never picked up on queue " \
        f"'{cluster.queue}': start a worker with `parzen worker --queue {cluster.queue}`" \
        in error


@pytest.mark.timeout(60)
def test_an_old_request_does_not_stop_the_next_run(cluster: FaultCluster) -> None:
    store = cluster.store
    # A coordinator was asked to stop and died before it read the request: the request
    # stays on the experiment, addressed to its lease.
    old = DriverLease(holder="dead-run", host="elsewhere", pid=1, started="earlier")
    assert store.acquire_driver("again", old, 0.3)
    assert store.request_stop("again", "dead-run", "alice@laptop (pid 7)")
    exp = store.get_experiment("again")
    assert exp is not None and exp.stop_request is not None
    assert exp.stop_request.holder == "dead-run"
    wait_for(lambda: store.now() > exp.driver.expires, 5, "the old lease to run out")
    cluster.start_ready(1)

    trials = MongoTrials(cluster.mongo_url, exp_key="again", parallelism=2,
                         **cluster.kwargs())
    try:
        fmin(sleepy, space(0.0), algo=tpe.suggest, max_evals=6, trials=trials,
             show_progressbar=False, rstate=np.random.default_rng(0))
    finally:
        trials.close()
    assert cluster.counts("again")[TrialState.DONE] == 6, "the old request was not obeyed"


def test_stop_refuses_a_local_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "run.pkl"
    fmin(lambda p: p["x"], {"x": hp.uniform("x", 0, 1)}, algo=tpe.suggest, max_evals=2,
         show_progressbar=False, trials_save_file=str(path))
    assert main(["stop", "--file", str(path)]) == 2
    assert capsys.readouterr().err == (
        "parzen stop: a local run has no coordinator to ask: stop its fmin with Ctrl-C (it "
        "saves the file as it goes)\n")
