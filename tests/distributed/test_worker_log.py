"""A worker's log in a real run (issue 18 item 13): its node name, one line per trial it
finished with the loss the store holds, and none of Celery's per-task lines
(tests/test_worker_log.py has the unit tests)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from parzen import fmin, hp, rand
from parzen.mongoexp import MongoTrials
from tests.support.objectives import quadratic


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_a_workers_log_names_each_trial_and_nothing_of_celerys_tasks(cluster: Any) -> None:
    proc = cluster.start_worker(concurrency=2, PARZEN_WORKER_NAME="w-log")
    other = cluster.start_worker(concurrency=1, PARZEN_WORKER_NAME="w-other")
    cluster.wait_ready(proc)
    cluster.wait_ready(other)
    trials = MongoTrials(cluster.mongo_url, exp_key="worker-log", parallelism=3,
                         **cluster.trials_kwargs())
    try:
        fmin(quadratic, {"x": hp.uniform("x", -1, 1), "k": hp.choice("k", [0, 1])},
             algo=rand.suggest, max_evals=8, trials=trials, show_progressbar=False,
             rstate=np.random.default_rng(0))
    finally:
        trials.close()
    mine, theirs = (cluster.logs[cluster.workers.index(p)].read_text(errors="replace")
                    for p in (proc, other))
    logs = mine + theirs
    assert "parzen-w-log@" in mine and "parzen-w-other@" in theirs
    assert "celery@" not in logs and "DuplicateNodename" not in logs
    lines = re.findall(r"trial (\d+) of 'worker-log': done, loss (\S+) in [\d.]+ s "
                       r"\(attempt 1\)", logs)
    by_tid = {int(tid): float(loss) for tid, loss in lines}
    assert sorted(by_tid) == list(range(8)), logs
    for t in trials.all_trials():
        assert by_tid[t.tid] == pytest.approx(t.loss, rel=1e-5)
    assert "celery.worker.strategy" not in logs and "succeeded in" not in logs
