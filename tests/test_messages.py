"""Messages that say enough (issue 18 item 9): a changed space names the label and both
distributions; the Ctrl-C summary's counts add up; a bad --secret-file is named as typed
(that last case is in tests/test_bad_input.py, with the worker's other start-up errors)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest

from parzen import STATUS_FAIL, fmin, hp, rand
from parzen.pyll import scope
from parzen.runners.celery.experiment import space_changes
from parzen.space import describe

SPACE = {"x": hp.uniform("x", -1, 1), "k": hp.choice("k", ["relu", "tanh"]),
         "n": scope.int(hp.quniform("n", 1, 5, 1)), "c": 0.5}


def test_a_changed_space_names_each_changed_label_with_both_distributions() -> None:
    new = {**SPACE, "x": hp.uniform("x", -1, 2), "k": hp.choice("k", ["relu", "elu"]),
           "y": hp.normal("y", 0, 1)}
    del new["n"]
    assert space_changes(describe(SPACE), describe(new)) == (
        "'x': uniform(low=-1, high=1) -> uniform(low=-1, high=2); "
        "'k': choice(relu, tanh) -> choice(relu, elu); removed ['n']; added ['y']")


def test_a_changed_space_with_the_same_distributions_says_what_else_changed() -> None:
    assert space_changes(describe(SPACE), describe({**SPACE, "c": 0.7})) == (
        "the same labels and distributions; what is built from them changed (an "
        "expression, a constant or a dict key)")
    assert "quniform(low=1, high=5, q=1)" in space_changes(
        describe(SPACE), describe({**SPACE, "n": hp.quniform("n", 1, 5, 1)}))
    assert space_changes(None, describe(SPACE)) == \
        "the stored experiment has no space description to compare with"


def test_ctrl_c_counts_ok_failed_and_finished_trials_that_add_up(
        caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    def objective(x: float) -> Any:
        calls.append(1)
        if len(calls) == 9:
            raise KeyboardInterrupt
        if len(calls) in (2, 5):
            raise ValueError("diverged")
        if len(calls) == 7:
            return {"status": STATUS_FAIL}
        return x ** 2

    with caplog.at_level(logging.WARNING, logger="parzen.fmin"):
        fmin(objective, hp.uniform("x", -1, 1), algo=rand.suggest, max_evals=20,
             rstate=np.random.default_rng(0), show_progressbar=False,
             catch_eval_exceptions=True)
    # 8 finished: 5 with a loss, 2 raised (error), 1 returned status fail (done, no loss).
    assert "returning the best of 5 ok trials (8 finished, 3 failed)" in caplog.text
