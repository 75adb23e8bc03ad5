"""Shared test fixtures: the real Redis the integration tests use, and service policy.

Redis is real (``PARZEN_TEST_REDIS_URL``, default a spare database on 127.0.0.1:6379). MongoDB
is mongomock in-process or the wire-protocol test double in ``tests/wire_server.py``, unless
``PARZEN_TEST_MONGO_URL`` points at a real mongod. Under ``CI=true`` a missing service fails
the run; it never silently skips.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

REDIS_URL = os.environ.get("PARZEN_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def missing_service(what: str) -> None:
    """Fail under CI, skip elsewhere."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is required under CI=true")
    pytest.skip(f"{what} is not available")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The test Redis database, flushed before the session."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        client.close()
        missing_service(f"Redis at {REDIS_URL} (run scripts/ensure-redis)")
    client.flushdb()
    client.close()
    yield REDIS_URL
