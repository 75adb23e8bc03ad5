"""A worker's log (issue 18 item 13): a node name of its own, one line per finished trial
with its state, loss and duration, and none of Celery's per-task lines (the workers' own
logs: tests/distributed/test_worker_log.py)."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator

import pytest

from parzen.execution.run import Outcome, OutcomeStatus
from parzen.trial import ErrorInfo, Trial, TrialState
from parzen.worker.trial_log import CELERY_TASK_LOGGERS, node_name, quiet_celery, trial_line

CLAIMED = Trial("exp", 7, TrialState.RUNNING, {"x": 0.5}, attempts=2)


@pytest.mark.parametrize(("outcome", "line"), [
    (Outcome(OutcomeStatus.DONE, CLAIMED, result={"status": "ok", "loss": 0.012345678},
             seconds=1.234),
     "trial 7 of 'mnist': done, loss 0.0123457 in 1.23 s (attempt 2)"),
    (Outcome(OutcomeStatus.DONE, CLAIMED, result={"status": "ok", "loss": math.nan},
             seconds=0.5), "trial 7 of 'mnist': done, loss nan in 0.50 s (attempt 2)"),
    (Outcome(OutcomeStatus.DONE, CLAIMED, result={"status": "fail"}, seconds=0.5),
     "trial 7 of 'mnist': done, status fail in 0.50 s (attempt 2)"),
    (Outcome(OutcomeStatus.ERROR, CLAIMED, result={"status": "fail"},
             error=ErrorInfo("ValueError", "bad x=0.5"), seconds=0.01),
     "trial 7 of 'mnist': error, ValueError: bad x=0.5 in 0.01 s (attempt 2)"),
    (Outcome(OutcomeStatus.PRUNED, CLAIMED,
             result={"status": "fail", "pruned": {"step": 9, "loss": 0.4213}}, seconds=2.5),
     "trial 7 of 'mnist': pruned at step 9, loss 0.4213 in 2.50 s (attempt 2)"),
    (Outcome(OutcomeStatus.PRUNED, CLAIMED,
             result={"status": "fail", "pruned": {"step": None, "loss": None}}, seconds=0.1),
     "trial 7 of 'mnist': pruned before its first report in 0.10 s (attempt 2)"),
    (Outcome(OutcomeStatus.NOT_CLAIMED), None),
    (Outcome(OutcomeStatus.RELEASED, CLAIMED), None),
], ids=["done", "nan", "status-fail", "error", "pruned", "pruned-unreported", "not-claimed",
        "released"])
def test_one_line_per_finished_trial(outcome: Outcome, line: str | None) -> None:
    assert trial_line("mnist", 7, outcome) == line


def test_a_long_error_message_is_cut() -> None:
    outcome = Outcome(OutcomeStatus.ERROR, CLAIMED, error=ErrorInfo("E", "x" * 5000))
    line = trial_line("mnist", 7, outcome)
    assert line is not None and len(line) < 400 and line.endswith("... (attempt 2)")


def test_the_node_name_is_the_workers() -> None:
    assert node_name("gpu-node-3", "vm") == "parzen-gpu-node-3@vm"


@pytest.fixture
def celery_levels() -> Iterator[None]:
    before = {name: logging.getLogger(name).level for name in CELERY_TASK_LOGGERS}
    yield
    for name, level in before.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("celery_levels")
@pytest.mark.parametrize(("loglevel", "quiet"), [
    (logging.INFO, True), ("INFO", True), ("warning", True), (logging.DEBUG, False),
    ("DEBUG", False)])
def test_celerys_task_lines_are_hidden_unless_debugging(loglevel: int | str,
                                                        quiet: bool) -> None:
    for name in CELERY_TASK_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)
    quiet_celery(loglevel)
    assert all((logging.getLogger(n).level == logging.WARNING) is quiet
               for n in CELERY_TASK_LOGGERS)
