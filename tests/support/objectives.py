"""Objectives the distributed tests send to workers.

Workers import this module by name, ``tests.support.objectives`` (the harness puts the
repository root on the workers' PYTHONPATH), the way a user's workers import the user's own
code. Side effects go to files named by the
``PARZEN_TEST_SIDE_EFFECTS`` directory so a test can count executions across processes.
"""

from __future__ import annotations

import os
import time
from typing import Any


def _mark(tag: str) -> None:
    where = os.environ.get("PARZEN_TEST_SIDE_EFFECTS")
    if where:
        with open(os.path.join(where, f"{tag}-{os.getpid()}-{time.monotonic_ns()}"), "w"):
            pass


def quadratic(p: dict[str, Any]) -> float:
    """Fast, with an interior optimum at x=0.3, k=0."""
    _mark(f"run-{p['x']:.12f}")
    return float((p["x"] - 0.3) ** 2 + p["k"])


def raises(p: dict[str, Any]) -> float:
    raise ValueError(f"bad x={p['x']:.3f}")


def nan_for_positive(p: dict[str, Any]) -> Any:
    """A NaN loss for x > 0 (a diverged run), an infinite one in a dict for x < -0.5, else the
    quadratic's loss."""
    if p["x"] > 0:
        return float("nan")
    if p["x"] < -0.5:
        return {"status": "ok", "loss": float("inf")}
    return quadratic(p)
