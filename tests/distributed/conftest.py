"""Fixtures for multi-process tests: the wire-protocol Mongo test server, real Redis, and
``parzen worker`` processes (see ``tests/support/cluster.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import mongo as mf
from tests.support.cluster import Cluster, db_url


@pytest.fixture
def cluster(wire_server: Any, redis_url: str, tmp_path: Path) -> Iterator[Cluster]:
    """Workers and a fresh database for one test; everything is killed afterwards."""
    real = mf.real_mongo_url()
    url = db_url(real if real else wire_server.url, mf.unique_db_name())
    effects = tmp_path / "effects"
    effects.mkdir()
    c = Cluster(url, redis_url, effects)
    try:
        yield c
    finally:
        c.stop()
