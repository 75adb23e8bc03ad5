"""A NaN or infinite loss under MongoTrials: recorded as in the other modes (issue 18 item
11; tests/test_nan_losses.py has the others)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from parzen import fmin, rand
from parzen.mongoexp import MongoTrials
from parzen.trial import TrialState
from tests.support.objectives import nan_for_positive
from tests.test_nan_losses import SPACE, check_recorded_as_hyperopt_does


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_mongo_trials_record_a_nan_loss_as_the_others_do(cluster: Any) -> None:
    cluster.wait_ready(cluster.start_worker())
    trials = MongoTrials(cluster.mongo_url, exp_key="nan-losses", parallelism=2,
                         **cluster.trials_kwargs())
    try:
        fmin(nan_for_positive, SPACE, algo=rand.suggest, max_evals=12, trials=trials,
             rstate=np.random.default_rng(3), show_progressbar=False)
        check_recorded_as_hyperopt_does(trials, 12)
        best = cluster.store.find("nan-losses", [TrialState.DONE], sort="loss", limit=1)
        assert best[0].loss == trials.best_loss
    finally:
        trials.close()
