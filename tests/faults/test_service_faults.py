"""The broker and the database fail under a running experiment (scenarios 6, 17 and 18).

Redis is a private ``redis-server`` the test flushes, kills and restarts on the same port;
MongoDB is a private wire-protocol test server the test stops and restarts (its data lives
in the test process and survives, as a mongod's would).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from parzen import fmin, tpe
from parzen.mongoexp import MongoTrials
from parzen.trial import TrialState
from tests.support import mongo as mf
from tests.support.fault_objectives import runs_of, sleepy, space
from tests.support.faults import (
    Background,
    FaultCluster,
    PrivateRedis,
    assert_clean_end,
    make_cluster,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PASSWORD = "s3cret-broker-pw-" + "7" * 8


def start_fmin(cluster: FaultCluster, exp_key: str, max_evals: int, sleep: float,
               parallelism: int = 2, **kw: Any) -> Background:
    trials = MongoTrials(cluster.mongo_url, exp_key=exp_key, parallelism=parallelism,
                         **cluster.kwargs(**kw))

    def run() -> MongoTrials:
        try:
            fmin(sleepy, space(sleep), algo=tpe.suggest, max_evals=max_evals, trials=trials,
                 show_progressbar=False, rstate=np.random.default_rng(6))
        finally:
            trials.close()
        return trials

    return Background(run)


def republished(caplog: pytest.LogCaptureFixture) -> int:
    """The coordinator's count of messages it republished, from its closing log line."""
    for r in caplog.records:
        if r.name == "parzen.runners.celery" and "messages republished" in r.getMessage():
            return int(r.getMessage().split(", ")[1].split()[0])
    raise AssertionError("the coordinator logged no summary")


@pytest.mark.timeout(90)
@pytest.mark.parametrize("loss", ["flush", "restart"])
def test_s06_lost_queue_is_republished_after_the_dispatch_timeout(
        cluster: FaultCluster, caplog: pytest.LogCaptureFixture, loss: str) -> None:
    worker, = cluster.start_ready(1)
    caplog.set_level(logging.INFO, logger="parzen.runners")
    run = start_fmin(cluster, "s06", max_evals=8, sleep=0.4, parallelism=4,
                     dispatch_timeout=1.5)
    wait_for(lambda: cluster.redis.queue_length(cluster.queue) >= 2, 30,
             "messages waiting in the queue")
    queued = {t.tid for t in cluster.store.find("s06", states=[TrialState.NEW])}
    if loss == "flush":
        cluster.redis.flush()
    else:
        cluster.redis.restart()  # no persistence: it comes back empty
    run.join(60)

    trials = assert_clean_end(cluster, "s06", done=8)
    assert queued <= {t.tid for t in trials if t.state is TrialState.DONE}
    assert republished(caplog) >= 1
    assert all(runs_of(cluster.executions(), t.params["x"]) == 1 for t in trials)
    assert worker.poll() is None, "the worker recovers without a restart"


def assert_no_password(text: str) -> None:
    assert PASSWORD not in text, "a log line shows the broker password"


@pytest.mark.timeout(90)
def test_s17_worker_waits_for_redis_then_rides_out_a_flap(
        wire_server: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    redis = PrivateRedis(tmp_path / "redis", password=PASSWORD)
    cluster = make_cluster(wire_server.url, redis, tmp_path)
    try:
        # Redis is down when the worker starts: it retries, naming the URL redacted.
        worker = cluster.start_worker()
        wait_for(lambda: "Trying again in" in cluster.log_of(worker), 20,
                 "the worker to report that it retries the broker")
        assert worker.poll() is None
        redis.start()
        cluster.wait_ready(worker, timeout=40)
        log = cluster.log_of(worker)
        assert f"broker=redis://:***@127.0.0.1:{redis.port}/0" in log
        assert f"Cannot connect to redis://:**@127.0.0.1:{redis.port}/0" in log
        assert_no_password(log)

        # Redis dies mid-run and comes back empty on the same port 2 s later.
        run = start_fmin(cluster, "s17", max_evals=8, sleep=0.5, dispatch_timeout=1.5)
        wait_for(lambda: cluster.counts("s17")[TrialState.DONE] >= 2, 30, "two trials done")
        redis.kill()
        time.sleep(2.0)  # the outage itself
        redis.start()
        run.join(60)

        assert_clean_end(cluster, "s17", done=8)
        assert worker.poll() is None, "the worker recovers without a restart"
        log = cluster.log_of(worker)
        assert "Connection to broker lost" in log
        assert_no_password(log)
        assert_no_password(caplog.text)
    finally:
        cluster.stop()
        redis.kill()


@pytest.fixture
def own_wire_server() -> Iterator[Any]:
    """A wire server this test may stop and restart without disturbing other tests."""
    with mf.running_wire_server() as server:
        yield server


@pytest.mark.timeout(120)
def test_s18_mongo_outage_loses_and_double_counts_nothing(
        own_wire_server: Any, private_redis: PrivateRedis, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    cluster = make_cluster(own_wire_server.url, private_redis, tmp_path)
    try:
        workers = cluster.start_ready(2)
        # A 1 s server selection timeout: the 3 s outage fails the coordinator's reads and
        # writes instead of merely delaying them, so its retries are exercised every time.
        run = start_fmin(cluster, "s18", max_evals=12, sleep=0.5, dispatch_timeout=2.0,
                         connect_timeout=1.0)
        wait_for(lambda: cluster.counts("s18")[TrialState.DONE] >= 3, 30,
                 "three trials done")
        own_wire_server.stop()
        time.sleep(3.0)  # the outage itself
        own_wire_server.restart()
        run.join(90)

        trials = assert_clean_end(cluster, "s18", done=12)
        # Each point ran once, or again only after its lease expired in the outage.
        for t in trials:
            reruns = sum(a.outcome == "lease expired" for a in t.history)
            assert runs_of(cluster.executions(), t.params["x"]) <= 1 + reruns
        assert all(w.poll() is None for w in workers), "the workers recover without a restart"
        assert "MongoDB unreachable" in caplog.text and "retrying in" in caplog.text
    finally:
        cluster.stop()


@pytest.mark.timeout(90)
def test_s22_a_queue_without_workers_is_reported_once_with_the_command_to_start_one(
        cluster: FaultCluster, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="parzen.runners")

    def idle() -> list[str]:
        return [r.getMessage() for r in caplog.records if "no worker is running" in
                r.getMessage()]

    run = start_fmin(cluster, "s22", max_evals=4, sleep=0.1, dispatch_timeout=0.5)
    wait_for(idle, 20, "the coordinator to say that no worker runs its trials")
    time.sleep(1.6)  # three more republish rounds: said once, not on every one
    said, = idle()
    assert f"waited 0.5 s on queue '{cluster.queue}'" in said
    assert f"PARZEN_MONGO_URL='{cluster.mongo_url}' PARZEN_BROKER_URL='" in said
    assert f"parzen worker --queue {cluster.queue} " in said
    assert said.split("PARZEN_BROKER_URL='")[1].startswith(
        f"redis://127.0.0.1:{cluster.redis.port}")
    # A worker that starts late takes the republished messages; the run ends cleanly.
    cluster.start_ready(1)
    run.join(60)
    trials = assert_clean_end(cluster, "s22", done=4)
    assert all(runs_of(cluster.executions(), t.params["x"]) == 1 for t in trials)
