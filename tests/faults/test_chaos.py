"""The short chaos run: ``bench/chaos.py`` with 40 trials on 2 workers and a ``kill -9``
every ~2 s. The full run (300 trials, 3 workers, every 3 s) is ``python bench/chaos.py``."""

from __future__ import annotations

import pytest

from tests.support.bench import bench_module
from tests.support.services import require_redis_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

@pytest.mark.timeout(120)
def test_chaos_kill9_every_two_seconds_ends_with_exactly_max_evals() -> None:
    require_redis_server()
    chaos = bench_module("chaos")
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
