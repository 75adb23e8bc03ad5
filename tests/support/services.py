"""Services the integration tests need, and the one rule for when one is missing.

Redis is real (``PARZEN_TEST_REDIS_URL``, default a spare database on 127.0.0.1:6379; see
``scripts/ensure-redis``). MongoDB is mongomock in-process or the wire-protocol test double
(``tests/support/wire_server.py``), unless ``PARZEN_TEST_MONGO_URL`` points at a real mongod.
"""

from __future__ import annotations

import os
import shutil

import pytest

REDIS_URL = os.environ.get("PARZEN_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def under_ci() -> bool:
    """``CI=true``: the environment promises every service."""
    return os.environ.get("CI", "").lower() == "true"


def require_service(available: bool, what: str) -> None:
    """Return when ``available``; otherwise fail the test under ``CI=true`` and skip it
    elsewhere. Under CI a missing service is a broken set-up, never a silent skip.

    Args:
        available: whether the service was found.
        what: what is missing and how to get it, for the skip or failure message.
    """
    if available:
        return
    if under_ci():
        pytest.fail(f"{what} is required under CI=true")
    pytest.skip(f"{what} is not available")


def require_redis_server() -> None:
    """The ``redis-server`` binary: the fault tests start private servers of their own."""
    require_service(shutil.which("redis-server") is not None,
                    "redis-server (the fault tests start private ones)")
