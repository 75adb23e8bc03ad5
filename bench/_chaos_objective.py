"""The chaos run's objective. Workers import it by name (``bench/`` is on their PYTHONPATH),
so it is pickled by reference and never reloaded per trial.
"""

from __future__ import annotations

import os
import time
from typing import Any


def objective(p: dict[str, Any]) -> float:
    """Sleeps ``sleep`` seconds and records each execution as a file in
    ``$PARZEN_CHAOS_EXECUTIONS``, so reruns of killed trials can be counted."""
    where = os.environ.get("PARZEN_CHAOS_EXECUTIONS")
    if where:
        with open(os.path.join(where, f"{p['x']:.12f}-{os.getpid()}-{time.monotonic_ns()}"),
                  "w"):
            pass
    time.sleep(float(p["sleep"]))
    return float((p["x"] - 0.3) ** 2 + (p["y"] + 0.2) ** 2)
