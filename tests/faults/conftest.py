"""Fixtures for the fault-injection suite: a private Redis per test, the wire-protocol Mongo
test server, and a ``FaultCluster`` of ``parzen worker`` processes (see
``tests/support/faults.py``).

Every test here is a real multi-process test. Workers, sandboxes, private Redis servers and
coordinator subprocesses are killed when the test ends, pass or fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.faults import FaultCluster, PrivateRedis, make_cluster
from tests.support.services import require_redis_server


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A ``redis-server`` of this test's own on a free port; killed afterwards."""
    require_redis_server()
    redis = PrivateRedis(tmp_path / "redis")
    redis.start()
    try:
        yield redis
    finally:
        redis.kill()


@pytest.fixture
def cluster(wire_server: Any, private_redis: PrivateRedis,
            tmp_path: Path) -> Iterator[FaultCluster]:
    """A fresh database and a private broker; the test starts the workers it needs."""
    c = make_cluster(wire_server.url, private_redis, tmp_path)
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def shared_cluster(wire_server: Any,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultCluster]:
    """Two running workers (concurrency 1) for a whole module, for scenarios that do not
    harm workers; each test uses its own exp_key and clears the side-effect files."""
    require_redis_server()
    root = tmp_path_factory.mktemp("shared")
    redis = PrivateRedis(root / "redis")
    redis.start()
    c = make_cluster(wire_server.url, redis, root)
    try:
        c.start_ready(2)
        yield c
    finally:
        c.stop()
        redis.kill()
