"""Objectives and spaces for the fault tests.

Workers import this module by name, ``tests.support.fault_objectives`` (the harness puts the
repository root on their PYTHONPATH), so functions here are pickled by reference. Every
objective records each execution as a file in ``$PARZEN_TEST_SIDE_EFFECTS``
(``run-<x>-<pid>-<ns>``), which lets a test count how often a point really ran across
processes. Time and behaviour come from space constants, so
one worker pool serves several experiments.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import numpy as np

from parzen import hp

# The point that kills whichever worker evaluates it (scenario 14).
POISON_X = 0.5


def space(sleep: float = 0.0, **constants: Any) -> dict[str, Any]:
    """``x`` in [-1, 1], ``k`` in {0, 1}, plus constants the objectives read."""
    return {"x": hp.uniform("x", -1, 1), "k": hp.choice("k", [0, 1]), "sleep": sleep,
            **constants}


def mark(p: dict[str, Any], tag: str = "run") -> None:
    where = os.environ.get("PARZEN_TEST_SIDE_EFFECTS")
    if where:
        name = f"{tag}-{p['x']:.12f}-{os.getpid()}-{time.monotonic_ns()}"
        with open(os.path.join(where, name), "w"):
            pass


def runs_of(files: list[str], x: float) -> int:
    """How many execution marks in ``files`` are for the point ``x``."""
    return sum(1 for f in files if f.startswith(f"run-{x:.12f}-"))


def loss(p: dict[str, Any]) -> float:
    return float((p["x"] - 0.3) ** 2 + p["k"])


def sleepy(p: dict[str, Any]) -> float:
    """Sleeps ``sleep`` seconds, so a test can act while the trial runs."""
    mark(p)
    time.sleep(float(p["sleep"]))
    return loss(p)


def raises_for_positive(p: dict[str, Any]) -> float:
    mark(p)
    if p["x"] > 0:
        raise ValueError(f"x={p['x']:.3f} is positive")
    return loss(p)


def always_raises(p: dict[str, Any]) -> float:
    mark(p)
    raise RuntimeError(f"broken objective at x={p['x']:.3f}")


def hangs_for_positive(p: dict[str, Any]) -> float:
    mark(p)
    if p["x"] > 0:
        time.sleep(3600)
    return loss(p)


def crashes_for_positive(p: dict[str, Any]) -> float:
    """For x > 0 the evaluation process dies the way ``p["how"]`` says."""
    mark(p)
    if p["x"] > 0:
        how = p["how"]
        if how == "segfault":
            os.kill(os.getpid(), signal.SIGSEGV)
        elif how == "exit":
            os._exit(3)
        elif how == "oom":  # what the out-of-memory killer does
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(5)  # the signal is delivered before this ends
    return loss(p)


def kills_its_worker(p: dict[str, Any]) -> float:
    """The poison point kills the worker process itself (its sandbox's parent)."""
    mark(p)
    if p["x"] == POISON_X:
        os.kill(os.getppid(), signal.SIGKILL)
        time.sleep(30)  # orphaned: the sandbox notices its parent is gone and exits
    time.sleep(float(p["sleep"]))
    return loss(p)


def numpy_result(p: dict[str, Any]) -> dict[str, Any]:
    mark(p)
    return {"loss": np.float32(loss(p)), "status": "ok", "n": np.int64(7),
            "curve": np.arange(3, dtype=np.float64), "flag": np.bool_(True),
            "nested": {"best": np.float64(0.5), "ids": (np.int32(1), np.int32(2))}}


class Model:
    """Something a result cannot carry into MongoDB."""

    def __init__(self) -> None:
        self.weights = [1.0, 2.0]


def unstorable_result(p: dict[str, Any]) -> dict[str, Any]:
    mark(p)
    return {"loss": loss(p), "status": "ok", "extra": {"model": Model()}}


def unpicklable_result(p: dict[str, Any]) -> dict[str, Any]:
    mark(p)
    return {"loss": loss(p), "status": "ok", "handles": [threading.Lock()]}
