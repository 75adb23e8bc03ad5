"""The importance measure (``parzen.cli.dashboard.importance``): what it credits, and when it
abstains."""

from __future__ import annotations

import numpy as np
import pytest

from parzen.cli.dashboard.importance import MIN_PER_GROUP, importances


def _trials(n: int, seed: int = 0) -> tuple[list[float], list[dict[str, float]]]:
    rng = np.random.default_rng(seed)
    params = [{"strong": float(rng.uniform(-1, 1)), "noise": float(rng.uniform(0, 1)),
               "opt": int(rng.integers(0, 3))} for _ in range(n)]
    # Not monotonic in "strong" (an optimum inside the range), a small effect of "opt".
    losses = [p["strong"] ** 2 + 0.05 * p["opt"] + 0.01 * float(rng.normal()) for p in params]
    return losses, params


def test_a_parameter_that_orders_the_trials_scores_near_one_and_noise_near_zero() -> None:
    losses, params = _trials(2000)
    found = {i.label: i for i in importances(losses, params, ["noise", "strong", "opt"],
                                             choices=frozenset({"opt"}))}
    assert found["strong"].score is not None and found["strong"].score > 0.8
    assert found["noise"].score is not None and found["noise"].score < 0.02
    assert found["opt"].groups == 3  # a choice is grouped by its options
    assert found["noise"].score < found["opt"].score < found["strong"].score


def test_highest_first_and_too_few_trials_is_no_score() -> None:
    losses, params = _trials(200)
    order = [i.label for i in importances(losses, params, ["noise", "strong"])]
    assert order == ["strong", "noise"]
    few = importances(losses[:2 * MIN_PER_GROUP - 1], params[:2 * MIN_PER_GROUP - 1], ["strong"])
    assert few[0].score is None and few[0].trials == 2 * MIN_PER_GROUP - 1


def test_a_conditional_parameter_is_judged_on_the_trials_that_used_it() -> None:
    losses, params = _trials(400)
    for p, i in zip(params, range(len(params)), strict=True):
        if i % 2:
            del p["strong"]  # inactive in half the trials
    (strong,) = importances(losses, params, ["strong"])
    assert strong.trials == 200
    assert strong.score == pytest.approx(1.0, abs=0.2)


def test_a_constant_loss_has_no_importance_to_explain() -> None:
    params = [{"x": float(i)} for i in range(50)]
    (x,) = importances([1.0] * 50, params, ["x"])
    assert x.score == 0.0
