"""What SECURITY.md promises, checked against real processes: Celery messages are JSON with
ids only, a worker refuses pickled messages without deserializing them, and neither the
signing key nor the broker password reaches a log."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from parzen import fmin, tpe
from parzen.exceptions import AllTrialsFailed
from parzen.mongoexp import MongoTrials
from parzen.trial import Trial, TrialState
from parzen.worker.celery_app import TASK_NAME, make_app
from tests.support.fault_objectives import sleepy, space
from tests.support.faults import SECRET, FaultCluster, PrivateRedis, make_cluster, wait_for

pytestmark = [pytest.mark.integration]


class _Bomb:
    """Unpickling this creates a file: proof that a message was unpickled."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (open, (self.path, "w"))


@pytest.mark.timeout(60)
def test_messages_are_json_with_ids_only(cluster: FaultCluster) -> None:
    # No worker: the coordinator's messages stay in Redis for us to read.
    trials = MongoTrials(cluster.mongo_url, exp_key="sec-json", parallelism=2,
                         **cluster.kwargs())
    with pytest.raises(AllTrialsFailed):  # nothing ran: there is no best trial
        fmin(sleepy, space(0.0), algo=tpe.suggest, max_evals=2, trials=trials, timeout=1.5,
             show_progressbar=False, rstate=np.random.default_rng(0))
    trials.close()
    client = cluster.redis.client()
    try:
        raw = client.lrange(cluster.queue, 0, -1)
    finally:
        client.close()
    assert len(raw) >= 2
    for message in raw:
        envelope = json.loads(message)
        assert envelope["content-type"] == "application/json"
        assert envelope["headers"]["task"] == TASK_NAME
        args, kwargs, _ = json.loads(base64.b64decode(envelope["body"]))
        assert kwargs == {} and args[0] == "sec-json" and isinstance(args[1], int)
        assert len(args) == 2, "a message carries the exp_key and the tid, nothing else"


@pytest.mark.timeout(60)
def test_worker_refuses_pickled_messages_without_unpickling(cluster: FaultCluster,
                                                            tmp_path: Path) -> None:
    worker, = cluster.start_ready(1)
    proof = tmp_path / "unpickled"
    cluster.store.insert_new([Trial("sec-pickle", 0, TrialState.NEW, {"x": 0.1, "k": 0})])
    app = make_app(cluster.redis_url, queue=cluster.queue)
    app.conf.accept_content = ["json", "pickle"]
    app.send_task(TASK_NAME, args=["sec-pickle", 0, _Bomb(str(proof))], serializer="pickle",
                  queue=cluster.queue)
    wait_for(lambda: "Refusing to deserialize untrusted content of type pickle"
             in cluster.log_of(worker), 20, "the worker to refuse the pickled message")
    wait_for(lambda: cluster.redis.queue_length(cluster.queue) == 0
             and cluster.redis.unacked() == 0, 20, "the message to be dropped")
    assert not proof.exists(), "the worker unpickled a message"
    assert cluster.store.get("sec-pickle", 0).state is TrialState.NEW
    assert cluster.executions() == []
    assert worker.poll() is None


@pytest.mark.timeout(60)
def test_logs_never_show_the_signing_key_or_passwords(
        wire_server: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    password = "broker-pw-" + "9" * 12
    redis = PrivateRedis(tmp_path / "redis", password=password)
    redis.start()
    cluster = make_cluster(wire_server.url, redis, tmp_path)
    caplog.set_level(logging.DEBUG)
    try:
        worker, = cluster.start_ready(1)
        trials = MongoTrials(cluster.mongo_url, exp_key="sec-logs", parallelism=1,
                             **cluster.kwargs())
        fmin(sleepy, space(0.0), algo=tpe.suggest, max_evals=2, trials=trials,
             show_progressbar=False, rstate=np.random.default_rng(0))
        trials.close()
        worker.terminate()
        worker.wait(20)
        text = cluster.log_of(worker) + caplog.text
        assert "parzen worker ready" in text and ":***@" in text
        assert SECRET not in text and password not in text
    finally:
        cluster.stop()
        redis.kill()
