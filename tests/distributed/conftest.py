"""Fixtures for multi-process tests: the wire-protocol Mongo test server, real Redis, and
``parzen worker`` processes (see ``_cluster.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _cluster import Cluster, db_url

try:
    import _mongo_fixtures as mf
except ModuleNotFoundError:  # tests/ is a package
    from tests import _mongo_fixtures as mf  # type: ignore[no-redef]

wire_server = mf.wire_server


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
