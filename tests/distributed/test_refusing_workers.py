"""A worker with the wrong key stops taking the experiment's trials, and the run goes on
with the others; fmin fails only when no worker can load the objective, naming every one that
cannot (issue 18 item 3)."""

from __future__ import annotations

import numpy as np
import pytest

import parzen.mongoexp as distributed
from parzen import hp, tpe
from parzen.exceptions import ObjectiveUnloadable
from parzen.execution.payload import key_fingerprint
from parzen.fmin import fmin
from parzen.trial import TrialState
from tests.support.cluster import SECRET, Cluster
from tests.support.objectives import quadratic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SPACE = {"x": hp.uniform("x", -1, 1), "k": hp.choice("k", [0, 1])}
WRONG = "a-key-nobody-else-has-" + "7" * 16


def run(cluster: Cluster, exp_key: str, n: int, **kw: object) -> None:
    trials = distributed.MongoTrials(cluster.mongo_url, exp_key=exp_key, parallelism=2,
                                     **cluster.trials_kwargs(**kw))
    try:
        fmin(quadratic, SPACE, algo=tpe.suggest, max_evals=n, trials=trials,
             show_progressbar=False, rstate=np.random.default_rng(0))
    finally:
        trials.close()


def test_a_wrong_key_worker_among_good_ones_passes_its_trials_on(cluster: Cluster) -> None:
    bad = cluster.start_worker(PARZEN_SECRET=WRONG, PARZEN_WORKER_NAME="node-7")
    good = [cluster.start_worker() for _ in range(2)]
    for w in [bad, *good]:
        cluster.wait_ready(w)

    run(cluster, "mixed", 16)

    trials = cluster.store.find("mixed")
    assert [t.state for t in trials] == [TrialState.DONE] * 16
    assert all(t.attempts == 1 for t in trials), "a refusal uses up no attempt"
    assert all(t.owner is not None and not t.owner.worker.startswith("node-7")
               for t in trials)
    passed = [a for t in trials for a in t.history]
    assert len(passed) <= 1, "the wrong-key worker claimed one trial at most, then no more"
    exp = cluster.store.get_experiment("mixed")
    assert exp is not None and exp.objective is not None
    refusal, = exp.refusals
    assert (refusal.worker, refusal.pid, refusal.objective) == (
        "node-7", bad.pid, exp.objective.sha256)
    assert refusal.reason.startswith("PayloadSignatureError: the objective payload was signed "
                                     f"with the key of fingerprint "
                                     f"{key_fingerprint(SECRET.encode())}, and this worker's "
                                     f"key has fingerprint {key_fingerprint(WRONG.encode())}")
    log = cluster.log_text(bad)
    assert "worker node-7 REFUSES experiment 'mixed'" in log
    assert f"key fingerprint={key_fingerprint(WRONG.encode())}" in log, "said at start"
    assert WRONG not in log and SECRET not in log
    assert bad.poll() is None, "the worker lives on for other experiments"


def test_wrong_key_workers_alone_stop_the_run_naming_each(cluster: Cluster) -> None:
    bad = [cluster.start_worker(PARZEN_SECRET=WRONG, PARZEN_WORKER_NAME=f"node-{i}")
           for i in (3, 4)]
    for w in bad:
        cluster.wait_ready(w)

    with pytest.raises(ObjectiveUnloadable) as info:
        run(cluster, "alone", 8, dispatch_timeout=1.5)

    msg = str(info.value)
    assert msg.startswith("no worker can load the objective of 'alone': its trials waited "
                          "1.5 s (dispatch_timeout) with none running, and 2 workers cannot "
                          "load it. ")
    for name, w in zip(("node-3", "node-4"), bad, strict=True):
        assert f"{name} (pid {w.pid} on " in msg
    assert msg.count("PayloadSignatureError") == 1, "one cause, said once for both"
    assert "Give this worker the coordinator's key" in msg
    trials = cluster.store.find("alone")
    assert {t.state for t in trials} == {TrialState.CANCEL}
    assert all(t.attempts == 0 for t in trials)
    assert sum(len(t.history) for t in trials) <= 2, "each worker claimed one trial at most"
