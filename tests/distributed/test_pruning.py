"""Pruning with MongoTrials: two ``parzen worker`` processes, Redis and the wire server."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from parzen import fmin, hp
from parzen.mongoexp import MongoTrials
from parzen.pruners import AshaPruner
from parzen.trial import TrialState
from tests.support.pruning_objectives import STEPS, curve

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def _p95(values: list[float]) -> float:
    return float(np.percentile(values, 95)) if values else float("nan")


def test_pruned_trials_stop_early_and_free_their_slots(cluster):
    for _ in range(2):
        cluster.wait_ready(cluster.start_worker(concurrency=2))
    trials = MongoTrials(cluster.mongo_url, exp_key="prune", parallelism=4,
                         **cluster.trials_kwargs())
    fmin(curve, {"x": hp.uniform("x", 0, 1)}, max_evals=24, trials=trials,
         pruner=AshaPruner(min_resource=1, reduction_factor=3, max_resource=STEPS),
         show_progressbar=False, rstate=np.random.default_rng(0))

    everything = trials.all_trials()
    pruned = [t for t in everything if t.state is TrialState.PRUNED]
    done = [t for t in everything if t.state is TrialState.DONE]
    assert len(pruned) + len(done) == 24 and pruned and done
    # Stopped early, with the values it reported kept in its document.
    docs = {d["tid"]: d for d in cluster.store._trials.find({"exp_key": "prune"})}
    for t in pruned:
        doc = docs[t.tid]
        assert doc["state"] == "pruned"
        steps = [r["step"] for r in doc["intermediate"]]
        assert steps == list(range(1, len(steps) + 1)) and steps[-1] < STEPS
        assert doc["result"]["pruned"] == {"step": steps[-1],
                                           "loss": doc["intermediate"][-1]["loss"]}
    for t in done:
        assert [r["step"] for r in docs[t.tid]["intermediate"]] == list(range(1, STEPS + 1))

    # The slot of a pruned trial takes the next trial: a later claim by the same slot.
    reuse_gaps, after_done = [], []
    by_slot: dict[str, list] = {}
    for t in everything:
        assert t.owner is not None and t.book_time is not None and t.end_time is not None
        by_slot.setdefault(f"{t.owner.pid}/{t.owner.worker}/{t.owner.slot}", []).append(t)
    for runs in by_slot.values():
        runs.sort(key=lambda t: t.book_time)
        for before, after in zip(runs, runs[1:], strict=False):
            gap = (after.book_time - before.end_time).total_seconds()
            (reuse_gaps if before.state is TrialState.PRUNED else after_done).append(gap)
    assert reuse_gaps, "a slot that ran a pruned trial must run another one"
    assert len(by_slot) == 4  # both workers, two slots each

    # The decision's latency as the objective saw it: from calling report to TrialPruned.
    files = cluster.executions(prefix="pruned-")
    latencies = [float(name.rsplit("-", 1)[1]) for name in files]
    reports = [float(name.rsplit("-", 1)[1]) for name in cluster.executions(prefix="report-")]
    assert len(latencies) == len(pruned)
    print(f"\nprune decisions: {len(latencies)}; report-to-TrialPruned latency "
          f"p50 {statistics.median(latencies) * 1000:.1f} ms, "
          f"p95 {_p95(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms; "
          f"all reports p95 {_p95(reports) * 1000:.1f} ms over {len(reports)}; "
          f"slot reuse after a pruned trial: median "
          f"{statistics.median(reuse_gaps) * 1000:.0f} ms over {len(reuse_gaps)} (after a "
          f"done one: {statistics.median(after_done or [float('nan')]) * 1000:.0f} ms)")


def test_a_worker_killed_mid_trial_leaves_its_reported_values(cluster):
    import signal
    import threading
    import time

    first = cluster.start_worker(concurrency=1)
    cluster.wait_ready(first)
    trials = MongoTrials(cluster.mongo_url, exp_key="killed", parallelism=1,
                         **cluster.trials_kwargs())
    done = threading.Event()

    def search() -> None:
        try:
            fmin(curve, {"x": hp.uniform("x", 0, 1)}, max_evals=1, trials=trials,
                 pruner=AshaPruner(1, 3, STEPS), show_progressbar=False,
                 rstate=np.random.default_rng(0))
        finally:
            done.set()

    thread = threading.Thread(target=search, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    reported: list = []
    while time.monotonic() < deadline and len(reported) < 8:
        doc = cluster.store._trials.find_one({"exp_key": "killed", "tid": 0}) or {}
        reported = doc.get("intermediate") or []
        time.sleep(0.05)
    assert len(reported) >= 8, "the first attempt should have written its reports"
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    cluster.wait_ready(cluster.start_worker(concurrency=1))
    assert done.wait(120)
    thread.join(5)

    doc = cluster.store._trials.find_one({"exp_key": "killed", "tid": 0})
    assert doc["state"] == "done" and doc["attempts"] == 2
    by_attempt: dict[int, list[int]] = {}
    for r in doc["intermediate"]:
        by_attempt.setdefault(r["attempt"], []).append(r["step"])
    # What the killed attempt had written is kept; the next attempt's curve starts afresh.
    assert by_attempt[1][:len(reported)] == [r["step"] for r in reported]
    assert by_attempt[2] == list(range(1, STEPS + 1))
