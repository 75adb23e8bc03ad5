"""``parzen requeue`` while the experiment's coordinator runs (scenario 25, issue 15).

A live coordinator reads back only the trials it has in flight and cancels every NEW trial
when it ends, so trials requeued under it were never published and were cancelled at its
exit: their losses (``--state done``) or tracebacks (``--state failed``) were gone, and fmin
reported success. ``requeue`` is now refused while a coordinator holds the experiment's driver
lease, naming it, as ``delete`` is; and it holds that lease itself while it writes, so a
coordinator cannot start in the middle of a requeue.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest

from parzen import fmin, tpe
from parzen.cli import main
from parzen.exceptions import ExperimentLocked
from parzen.mongoexp import MongoTrials
from parzen.runners.celery.driver import Driver
from parzen.store._mongo import MongoTrialStore
from parzen.trial import TrialState
from tests.support.cli import finished_experiment
from tests.support.cluster import PARZEN
from tests.support.fault_objectives import sleepy, space
from tests.support.faults import Coordinator, FaultCluster, assert_clean_end, wait_for

pytestmark = [pytest.mark.integration]

EXP = "s25"


def parzen_cli(cluster: FaultCluster, *argv: str) -> subprocess.CompletedProcess[str]:
    """``parzen ARGV --mongo URL`` as an operator runs it: another process."""
    return subprocess.run([*PARZEN, *argv, "--mongo", cluster.mongo_url], env=cluster.env(),
                          capture_output=True, text=True, timeout=60)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_s25_requeue_is_refused_while_the_coordinator_runs(
        cluster: FaultCluster, tmp_path: Path) -> None:
    cluster.start_ready(2)
    max_evals = 40  # 12 s of trials: the run outlives the three CLI calls below
    coordinator = Coordinator(cluster, {"exp_key": EXP, "max_evals": max_evals,
                                        "parallelism": 2, "sleep": 0.6}, tmp_path)
    wait_for(lambda: cluster.counts(EXP)[TrialState.DONE] >= 6, 90, "6 trials DONE")
    done_before = {t.tid: t.loss for t in cluster.store.find(EXP, states=[TrialState.DONE])}

    for argv in (["requeue", EXP, "--state", "done"], ["requeue", EXP]):
        got = parzen_cli(cluster, *argv)
        assert got.returncode == 2, (argv, got.stdout, got.stderr)
        assert got.stdout == "", "nothing may be requeued"
        assert f"{EXP!r} has a live coordinator (alive (pid {coordinator.proc.pid} on " \
               f"{socket.gethostname()}" in got.stderr, got.stderr
        assert "stop its fmin first" in got.stderr, got.stderr
        assert f"parzen requeue {EXP} --expired is safe" in got.stderr, got.stderr

    # Expired leases are the one thing a requeue may do under a live coordinator: those
    # trials are in flight for it, and it requeues them itself anyway.
    got = parzen_cli(cluster, "requeue", EXP, "--expired")
    assert got.returncode == 0, got.stderr
    assert "whose lease expired" in got.stdout and "no coordinator is running" not in got.stderr
    assert coordinator.proc.poll() is None, "the run ended before the requeues: lengthen it"

    assert coordinator.wait(120) == 0, coordinator.log_text()
    assert coordinator.result()["counts"].get("CANCEL", 0) == 0
    trials = {t.tid: t for t in assert_clean_end(cluster, EXP, done=max_evals)}
    for tid, loss in done_before.items():
        assert trials[tid].loss == loss and trials[tid].history == (), \
            f"trial {tid} was requeued under the live coordinator"

    # Once the coordinator is gone, requeue works, and says who will run the trials.
    got = parzen_cli(cluster, "requeue", EXP, "--state", "done")
    assert got.returncode == 0, got.stderr
    assert got.stdout == f"requeued {max_evals} done trials of {EXP!r}\n"
    assert "no coordinator is running" in got.stderr


def test_s25_a_coordinator_cannot_start_while_requeue_writes(
        cluster: FaultCluster, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Between requeue's check and its writes a coordinator could take the lease, read the
    experiment and never see the requeued trials: requeue holds the lease while it writes."""
    url, store = cluster.mongo_url, cluster.store
    finished_experiment(store, "race", n=3, fail=2)
    refused: list[str] = []
    original = MongoTrialStore.requeue

    def requeue_racing_a_coordinator(self: MongoTrialStore, exp_key: str,
                                     states: object) -> int:
        try:
            Driver(store, exp_key).acquire()
        except ExperimentLocked as exc:
            refused.append(str(exc))
        return original(self, exp_key, states)  # type: ignore[arg-type]

    monkeypatch.setattr(MongoTrialStore, "requeue", requeue_racing_a_coordinator)
    assert main(["requeue", "race", "--mongo", url]) == 0
    out = capsys.readouterr()
    assert out.out == "requeued 2 error trials of 'race'\n", out.err
    assert refused and "being driven by another coordinator" in refused[0], \
        "a coordinator took the experiment while requeue was writing"
    exp = store.get_experiment("race")
    assert exp is not None and exp.driver is None, "requeue left its lease behind"
    assert store.count_by_state("race")[TrialState.NEW] == 2


@pytest.mark.timeout(120)
def test_s25_a_reused_mongo_trials_runs_the_trials_requeued_since_its_last_run(
        cluster: FaultCluster, capsys: pytest.CaptureFixture[str]) -> None:
    """The requeue note says a resumed fmin runs the trials. A MongoTrials object kept from
    an earlier fmin still knew them as DONE: the resumed run neither ran nor counted them,
    and cancelled them at its end, their earlier losses gone."""
    cluster.start_ready(1)
    trials = MongoTrials(cluster.mongo_url, exp_key="s25-reused", parallelism=2,
                         **cluster.kwargs())
    try:
        fmin(sleepy, space(0.0), algo=tpe.suggest, max_evals=4, trials=trials,
             show_progressbar=False, rstate=np.random.default_rng(0))
        assert main(["requeue", "s25-reused", "--mongo", cluster.mongo_url, "--state",
                     "done"]) == 0
        assert "no coordinator is running; the trials run when you resume" in \
            capsys.readouterr().err
        fmin(sleepy, space(0.0), algo=tpe.suggest, max_evals=8, trials=trials,
             show_progressbar=False, rstate=np.random.default_rng(1))
        assert trials.state_counts()[TrialState.DONE] == 8
    finally:
        trials.close()
    done = assert_clean_end(cluster, "s25-reused", done=8)
    assert cluster.counts("s25-reused")[TrialState.CANCEL] == 0
    rerun = [t for t in done if any("requeued by operator from DONE" in a.outcome
                                    for a in t.history)]
    assert sorted(t.tid for t in rerun) == [0, 1, 2, 3]
