"""Objectives for bench/throughput.py, imported by name in the workers' sandbox children.

The workers get ``bench/`` on their PYTHONPATH, so cloudpickle ships these by reference. Each
returns the wall-clock start and end of the objective itself (``t0``/``t1``, ``time.time()``)
in its result, so the benchmark can split a trial's book-to-end time into the objective and
the worker's own overhead.
"""

from __future__ import annotations

import time
from typing import Any


def noop(p: dict[str, Any]) -> dict[str, Any]:
    """Returns at once."""
    t0 = time.time()
    return {"status": "ok", "loss": float(p["x"]) ** 2, "t0": t0, "t1": time.time()}


def sleeper(p: dict[str, Any]) -> dict[str, Any]:
    """Sleeps ``p["sleep"]`` seconds (a constant in the space), using no CPU."""
    t0 = time.time()
    time.sleep(float(p["sleep"]))
    return {"status": "ok", "loss": float(p["x"]) ** 2, "t0": t0, "t1": time.time()}


def noop_with_blob(p: dict[str, Any], blob: bytes = b"") -> dict[str, Any]:
    """``noop`` that carries ``blob`` (bound with functools.partial), so the pickled objective,
    stored inline in the experiment document up to 4 MB, is as large as a closure over a
    data set would be."""
    t0 = time.time()
    return {"status": "ok", "loss": float(p["x"]) ** 2 + 0 * len(blob), "t0": t0,
            "t1": time.time()}
