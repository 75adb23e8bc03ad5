"""An objective that reports a learning curve, for the distributed pruning test.

Workers import it by name (``tests.support.pruning_objectives``). Each report's round trip
(from the call to ``parzen.report`` to its return or its ``TrialPruned``) is written to the
``PARZEN_TEST_SIDE_EFFECTS`` directory, so the test can read the prune-decision latency as
the objective saw it.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import parzen

STEPS = 27
STEP_S = 0.03  # one "epoch"


def _write(name: str) -> None:
    where = os.environ.get("PARZEN_TEST_SIDE_EFFECTS")
    if where:
        with open(os.path.join(where, name), "w"):
            pass


def curve(p: dict[str, Any]) -> float:
    """Falls towards (x - 0.3)**2 over STEPS steps of STEP_S seconds."""
    run = uuid.uuid4().hex[:8]
    loss = 0.0
    for step in range(1, STEPS + 1):
        time.sleep(STEP_S)
        loss = (p["x"] - 0.3) ** 2 + 1.0 / step
        started = time.perf_counter()
        try:
            parzen.report(loss, step)
        except parzen.TrialPruned:
            _write(f"pruned-{run}-{step}-{time.perf_counter() - started:.6f}")
            raise
        _write(f"report-{run}-{step}-{time.perf_counter() - started:.6f}")
    return loss
