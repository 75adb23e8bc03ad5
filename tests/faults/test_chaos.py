"""The short chaos run: ``bench/chaos.py`` with 40 trials on 2 workers and a ``kill -9``
every ~2 s. The full run (300 trials, 3 workers, every 3 s) is ``python bench/chaos.py``."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _chaos() -> Any:
    spec = importlib.util.spec_from_file_location("_parzen_bench_chaos", BENCH / "chaos.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(120)
def test_chaos_kill9_every_two_seconds_ends_with_exactly_max_evals() -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")  # conftest fails instead under CI
    chaos = _chaos()
    report = chaos.run_chaos(chaos.ChaosConfig(trials=40, workers=2, kill_every=2.0, seed=1),
                             log=lambda *_: None)
    assert report.problems() == [], report
    assert report.done == 40 and report.documents == 40
    assert report.duplicate_results == 0 and report.running == 0 and report.new == 0
    assert report.kills >= 2, "the run was too short for the killer to act"
    assert report.restarts == report.kills
    # Every requeue is a killed attempt; each DONE trial needed at most one per kill.
    assert report.requeues <= report.kills
    assert sum(report.attempts_histogram.values()) == 40
    assert report.executions >= 40
