"""Objectives that report, for the SparkTrials pruning tests (``test_spark_pruning.py``).

The executors import this module by name (``tests.spark.pruning_objectives``), as they
import ``tests.spark.objectives``: SparkTrials puts the driver's source directories, the
repository root among them, on the objective's import path.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import parzen
from parzen.reporting import TrialHandle, TrialPruned

STEPS = 27  # the pruners' max_resource in the tests


def loss_at(x: float, step: int) -> float:
    """A learning curve that falls towards (x - 0.3)**2: every step ranks trials by x, so
    most of them are hopeless from the first report on."""
    return (x - 0.3) ** 2 + 1.0 / step


def learning(p: dict[str, Any]) -> float:
    """A hyperopt-style objective: ``parzen.report`` raises ``TrialPruned`` to stop it."""
    loss = 0.0
    for step in range(1, STEPS + 1):
        loss = loss_at(p["x"], step)
        parzen.report(loss, step)
    return loss


def learning_with_handle(p: dict[str, Any], trial: TrialHandle) -> float:
    """The same curve through the second-parameter handle, which never raises: the
    objective asks ``should_prune`` and stops itself."""
    loss = 0.0
    for step in range(1, STEPS + 1):
        loss = loss_at(p["x"], step)
        trial.report(loss, step)
        if trial.should_prune():
            raise TrialPruned(f"trial {trial.tid} stopped itself at step {step}")
    return loss


def reports_nan(p: dict[str, Any]) -> float:
    """Reports a non-finite loss, which ``parzen.report`` refuses."""
    parzen.report(float("nan"), 1)
    return 0.0


def timed_reports(p: dict[str, Any]) -> dict[str, Any]:
    """Reports ``p["n"]`` steps in a tight loop and returns the mean time one report took,
    measured in the objective's process: the whole round trip to the driver's judge."""
    n = int(p["n"])
    started = time.perf_counter()
    for step in range(1, n + 1):
        parzen.report(1.0 + 1.0 / step, step)
    per_report_ms = (time.perf_counter() - started) * 1000.0 / n
    return {"loss": 1.0, "status": "ok", "per_report_ms": per_report_ms}


def reports_until_stopped(p: dict[str, Any], marks: str) -> float:
    """Quick for x <= 0; for x > 0, writes its pid to ``marks`` and reports every
    millisecond for a minute (a stopped run must stop it mid-loop)."""
    if p["x"] > 0:
        (Path(marks) / f"started-{os.getpid()}").write_text(str(os.getpid()))
        deadline = time.monotonic() + 60
        step = 0
        while time.monotonic() < deadline:
            step += 1
            parzen.report(1.0, step)
            time.sleep(0.001)
        (Path(marks) / "finished").write_text("a cancelled trial ran to its end")
    return float(p["x"] ** 2)
