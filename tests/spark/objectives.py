"""Objectives the Spark tests send to the executors.

The executors import this module by name (``tests.spark.objectives``): SparkTrials puts the
driver's source directories, the repository root among them, on the objective's import
path. Files in ``marks`` (a directory the test gives) let a test see what ran where.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any


def quadratic(p: dict[str, Any]) -> float:
    return float((p["x"] - 0.3) ** 2)


def raises_for_positive(p: dict[str, Any]) -> float:
    if p["x"] > 0:
        raise ValueError(f"x={p['x']:.3f} is positive")
    return float(p["x"] ** 2)


def slow_for_positive(p: dict[str, Any], marks: str) -> float:
    """Quick for x <= 0; for x > 0, writes its pid to ``marks`` and sleeps a minute."""
    if p["x"] > 0:
        (Path(marks) / f"started-{os.getpid()}").write_text(str(os.getpid()))
        time.sleep(60)
        (Path(marks) / "finished").write_text("a cancelled trial ran to its end")
    return float(p["x"] ** 2)


def kills_its_worker(p: dict[str, Any], marks: str) -> float:
    """Kills the Spark Python worker that runs it (its sandbox's supervisor): for x < 0.5
    on the first attempt only, for x >= 0.5 on every attempt."""
    first = Path(marks) / f"killed-{p['x']:.6f}"
    if p["x"] >= 0.5 or not first.exists():
        first.write_text("")
        os.kill(os.getppid(), signal.SIGKILL)
        time.sleep(30)  # the sandbox child follows its supervisor within half a second
    return float(p["x"])
