"""Suite-wide fixtures (the real Redis, the wire-protocol Mongo test server) and test tiers.

Redis is real (``PARZEN_TEST_REDIS_URL``, default a spare database on 127.0.0.1:6379). MongoDB
is mongomock in-process or the wire-protocol test double in ``tests/support/wire_server.py``,
unless ``PARZEN_TEST_MONGO_URL`` points at a real mongod. Under ``CI=true`` a missing service
fails the run; it never silently skips (``tests.support.services.require_service``).

Tiers: ``make test-fast`` runs ``-m "not integration and not slow"``, ``make test`` runs
everything. A test is marked ``integration`` here, without anyone remembering to, when it
lives in ``tests/distributed`` or ``tests/faults`` or uses a service fixture (directly or
through another fixture); parametrized backends that need a server carry the mark on their
``pytest.param`` (``tests.support.mongo.mongo_targets``, ``tests/cli/conftest.py``). Tests
that run parzen's worker processes outside those directories carry the mark themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mongo import real_mongo_client, wire_client, wire_server
from tests.support.services import REDIS_URL, require_service

# Registered here for the whole suite (pytest collects fixtures from conftest's namespace).
__all__ = ["real_mongo_client", "wire_client", "wire_server"]

TESTS = Path(__file__).resolve().parent
# Every test in these directories starts worker processes against Redis and the wire server.
INTEGRATION_DIRS = frozenset({"distributed", "faults"})
# Using any of these (even through another fixture) makes a test an integration test.
SERVICE_FIXTURES = frozenset({"redis_url", "wire_server", "wire_client", "real_mongo_client",
                              "private_redis"})


def _is_integration(item: pytest.Item) -> bool:
    try:
        top = item.path.resolve().relative_to(TESTS).parts[0]
    except ValueError:  # collected from outside tests/
        top = ""
    fixtures = getattr(item, "fixturenames", ())
    return top in INTEGRATION_DIRS or not SERVICE_FIXTURES.isdisjoint(fixtures)


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _is_integration(item) and item.get_closest_marker("integration") is None:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The test Redis database, flushed before the session."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        try:
            client.ping()
        except redis.exceptions.ConnectionError:
            require_service(False, f"Redis at {REDIS_URL} (run scripts/ensure-redis)")
        client.flushdb()
    finally:
        client.close()
    yield REDIS_URL
