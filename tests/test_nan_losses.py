"""A NaN or infinite loss (issue 18 item 11): every mode records it as hyperopt 0.3.0 does,
status ok with the loss as returned, and none lets it be the best trial."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from parzen import STATUS_OK, Trials, fmin, hp, no_progress_loss, rand
from parzen.parallel import ParallelTrials
from parzen.trial import TrialState
from tests.support.objectives import nan_for_positive

SPACE = {"x": hp.uniform("x", -1, 1), "k": hp.choice("k", [0, 1])}


def check_recorded_as_hyperopt_does(trials: Any, n: int) -> None:
    docs = trials.trials
    assert len(docs) == n and {d["state"] for d in docs} == {int(TrialState.DONE)}
    assert {d["result"]["status"] for d in docs} == {STATUS_OK}
    xs = [d["misc"]["vals"]["x"][0] for d in docs]
    losses = trials.losses()
    assert [math.isnan(loss) for loss in losses] == [x > 0 for x in xs]
    assert [loss == math.inf for loss in losses] == [x < -0.5 for x in xs]
    finite = [loss for loss in losses if math.isfinite(loss)]
    assert finite and trials.best_trial["result"]["loss"] == min(finite)
    assert trials.best_loss == min(finite)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("make", [Trials, lambda: ParallelTrials(parallelism=2)],
                         ids=["Trials", "ParallelTrials"])
def test_every_local_mode_records_a_nan_loss_and_goes_on(make: Any) -> None:
    trials = make()
    best = fmin(nan_for_positive, SPACE, algo=rand.suggest, max_evals=16, trials=trials,
                rstate=np.random.default_rng(3), show_progressbar=False)
    check_recorded_as_hyperopt_does(trials, 16)
    assert -0.5 <= best["x"] <= 0
    assert sum(math.isnan(loss) for loss in trials.losses()) >= 3


def test_a_run_of_only_nan_losses_has_no_best() -> None:
    trials = Trials()
    with pytest.raises(Exception, match="no trial") as err:
        fmin(lambda p: math.nan, SPACE, algo=rand.suggest, max_evals=3, trials=trials,
             rstate=np.random.default_rng(0), show_progressbar=False)
    assert type(err.value).__name__ == "AllTrialsFailed"
    assert trials.best_loss is None and all(math.isnan(x) for x in trials.losses())


def test_minus_infinity_is_not_the_best_either() -> None:
    losses = iter([0.5, -math.inf, 0.25, math.nan])
    trials = Trials()
    fmin(lambda p: next(losses), SPACE, algo=rand.suggest, max_evals=4, trials=trials,
         rstate=np.random.default_rng(0), show_progressbar=False)
    assert trials.best_loss == 0.25 and trials.best_trial["tid"] == 2


def test_no_progress_loss_ignores_a_nan_loss_as_a_failed_trial() -> None:
    losses = iter([1.0, math.nan, 0.5, math.nan, math.nan, 0.4, 0.4, 0.4, 0.4, 0.4])
    trials = Trials()
    fmin(lambda p: next(losses), SPACE, algo=rand.suggest, max_evals=10, trials=trials,
         rstate=np.random.default_rng(0), show_progressbar=False,
         early_stop_fn=no_progress_loss(2))
    # The NaN losses neither improve nor count as trials without progress: the run stops
    # at the second 0.4 after the best (0.4, tid 5), not at the first NaN.
    assert len(trials.trials) == 8
