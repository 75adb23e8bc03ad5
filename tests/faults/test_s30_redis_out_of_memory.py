"""Redis runs out of memory under a running experiment (scenario 30, issue 15, item 7).

With ``maxmemory`` reached and the ``noeviction`` policy Redis refuses every write that needs
memory with ``OOM command not allowed``. Every worker logged ``Unrecoverable error:
OutOfMemoryError`` and exited 0, which neither systemd's ``Restart=on-failure`` nor Slurm
restarts, and the run never finished after memory was freed. Workers now ride it out as they
ride out a lost connection (back off, retry, log the cause), a worker that does stop on an
unrecoverable error exits non-zero, and the coordinator warns that it cannot publish, naming
the cause, then publishes once memory is freed.
"""

from __future__ import annotations

import logging
import sys
import time

import numpy as np
import pytest

from parzen import fmin, tpe
from parzen.mongoexp import MongoTrials
from parzen.trial import TrialState
from parzen.worker.celery_app import TASK_NAME, make_app
from tests.support.fault_objectives import sleepy, space
from tests.support.faults import Background, FaultCluster, assert_clean_end, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXP = "s30"


def start_fmin(cluster: FaultCluster, max_evals: int) -> Background:
    """fmin in a thread; a 2 s dispatch timeout republishes what Redis could not take."""
    trials = MongoTrials(cluster.mongo_url, exp_key=EXP, parallelism=2,
                         **cluster.kwargs(dispatch_timeout=2.0))

    def run() -> None:
        try:
            fmin(sleepy, space(1.5), algo=tpe.suggest, max_evals=max_evals, trials=trials,
                 show_progressbar=False, rstate=np.random.default_rng(30))
        finally:
            trials.close()

    return Background(run)


def out_of_memory(cluster: FaultCluster, full: bool) -> None:
    """Make Redis refuse every write that needs memory (``full``), or lift the limit."""
    client = cluster.redis.client()
    try:
        client.config_set("maxmemory-policy", "noeviction")
        # 1 byte is below what any Redis uses: every write that needs memory is refused.
        client.config_set("maxmemory", "1" if full else "0")
    finally:
        client.close()


@pytest.mark.timeout(180)
def test_s30_workers_and_coordinator_ride_out_redis_out_of_memory(
        cluster: FaultCluster, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    workers = cluster.start_ready(2)
    max_evals = 8
    run = start_fmin(cluster, max_evals)

    def both_busy() -> bool:
        c = cluster.counts(EXP)
        return c[TrialState.DONE] >= 2 and c[TrialState.RUNNING] == 2
    # Each worker is then mid-trial: acknowledging it is a write Redis will refuse. (An idle
    # worker waits in BRPOP, which Redis allows: it meets no refusal to ride out.)
    wait_for(both_busy, 60, "two trials done and both workers busy")
    out_of_memory(cluster, full=True)
    try:
        wait_for(lambda: "maxmemory" in caplog.text, 30,
                 "the coordinator to warn that it cannot publish")
        # Long enough for each worker to hit the refusal more than once.
        wait_for(lambda: all("OutOfMemoryError" in cluster.log_of(w) for w in workers), 30,
                 "both workers to log the cause")
        time.sleep(3.0)
        assert all(w.poll() is None for w in workers), \
            [(w.returncode, cluster.log_of(w)[-2000:]) for w in workers]
    finally:
        out_of_memory(cluster, full=False)
    freed = time.monotonic()
    run.join(90)
    assert time.monotonic() - freed < 60, "the run took too long to recover"

    assert_clean_end(cluster, EXP, done=max_evals)
    assert all(w.poll() is None for w in workers), "the workers recover without a restart"
    warned = [r.getMessage() for r in caplog.records
              if r.name == "parzen.runners.celery" and "could not publish" in r.getMessage()]
    assert warned and "could not publish trial" in warned[0], warned
    assert "Redis is out of memory" in warned[0] and "raise the limit" in warned[0], warned
    assert "republished every 2 s" in warned[0], warned
    for w in workers:
        log = cluster.log_of(w)
        assert "Unrecoverable error" not in log, log[-3000:]
        refusals = [line for line in log.splitlines() if "refused a command" in line]
        assert refusals, log[-3000:]
        assert f"the broker at redis://127.0.0.1:{cluster.redis.port}/0 refused a command: " \
               "OutOfMemoryError" in refusals[0] and "raise the limit" in refusals[0]
        # It backs off: a few reconnections over the outage, not several a second.
        assert len(refusals) <= 8 and "Frequent restarts detected" not in log, refusals
        assert "reconnects in 1 s" in refusals[0]


# Breaks the worker the way Celery calls unrecoverable (an error that is neither a lost
# connection nor a refused command), when the first message arrives.
BREAK_ON_DELIVERY = """
import sys
from kombu.transport import redis as transport

def broken(*args, **kwargs):
    raise RuntimeError("injected by the test: not a broker error")

transport.QoS.append = broken
from parzen.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.timeout(90)
def test_s30_a_worker_stopped_by_an_unrecoverable_error_exits_non_zero(
        cluster: FaultCluster) -> None:
    """Celery's worker_main dropped the exit status: "Unrecoverable error" exited 0, which
    systemd's Restart=on-failure does not restart."""
    worker = cluster.start_worker(entry=[sys.executable, "-c", BREAK_ON_DELIVERY])
    cluster.wait_ready(worker)
    make_app(cluster.redis_url, queue=cluster.queue).send_task(
        TASK_NAME, args=["s30-none", 0], queue=cluster.queue)
    code = worker.wait(60)
    log = cluster.log_of(worker)
    assert "Unrecoverable error" in log and "injected by the test" in log, log[-3000:]
    assert code == 1, log[-3000:]
