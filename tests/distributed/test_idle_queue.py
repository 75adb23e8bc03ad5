"""A queue no worker listens on: the timeout ends the run with an error that says so and
gives the command that starts a worker there (issue 18 item 2)."""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest

import parzen.mongoexp as distributed
from parzen import hp, tpe
from parzen.exceptions import AllTrialsFailed, NoTrialFinished
from parzen.fmin import fmin
from parzen.trial import TrialState
from tests.support.cluster import Cluster
from tests.support.objectives import quadratic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SPACE = {"x": hp.uniform("x", -1, 1), "k": hp.choice("k", [0, 1])}


def test_timeout_with_no_worker_on_the_queue_says_so(cluster: Cluster,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    # No worker started: the cluster's queue is one nobody listens on.
    trials = distributed.MongoTrials(cluster.mongo_url, exp_key="idle", parallelism=2,
                                     **cluster.trials_kwargs(dispatch_timeout=0.5))
    try:
        with caplog.at_level(logging.WARNING, logger="parzen.runners.celery"), \
                pytest.raises(NoTrialFinished) as info:
            fmin(quadratic, SPACE, algo=tpe.suggest, max_evals=10, timeout=2, trials=trials,
                 show_progressbar=False, rstate=np.random.default_rng(0))
    finally:
        trials.close()
    q = cluster.queue
    assert isinstance(info.value, AllTrialsFailed)
    assert str(info.value) == (
        f"timeout after 2 s: no trial finished; 2 queued trials were never picked up on queue "
        f"{q!r}: start a worker with `parzen worker --queue {q}` (PARZEN_MONGO_URL, "
        "PARZEN_BROKER_URL and PARZEN_SECRET set as for this run)")
    assert cluster.store.count_by_state("idle")[TrialState.CANCEL] == 2
    # The coordinator's warning meanwhile, once, with a count in good English.
    idle = [r.getMessage() for r in caplog.records if "no worker is running" in r.getMessage()]
    assert len(idle) == 1
    assert re.match(rf"(1 trial|2 trials) of 'idle' waited 0.5 s on queue {q!r} ", idle[0])
    assert "fmin waits for a worker until its timeout" in idle[0]
