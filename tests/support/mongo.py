"""Reusable MongoDB test fixtures: the wire-protocol test server and throwaway databases.

``tests/conftest.py`` registers the fixtures (``wire_server``, ``wire_client``,
``real_mongo_client``) for the whole suite, and marks every test that uses one
``integration``. Without pytest::

    with running_wire_server() as server:
        store = MongoTrialStore.from_url(server.url)

``PARZEN_TEST_MONGO_URL`` (a real mongod) is honoured by ``mongo_targets``; every database
made here is named ``parzen_test_<pid>_<n>`` and dropped after use. The server is a test
double: see ``wire_server.py``.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import mongomock
import pytest
from pymongo import MongoClient

from tests.support.wire_server import WireServer

ENV_URL = "PARZEN_TEST_MONGO_URL"
_names = itertools.count()


def real_mongo_url() -> str | None:
    """The real mongod to test against, if the user configured one."""
    return os.environ.get(ENV_URL) or None


def mongo_targets() -> list[Any]:
    """Backends for parametrizing: always ``"wire"``; ``"real"`` when a URL is configured.
    Both are marked ``integration``: they need a server."""
    names = ["wire", "real"] if real_mongo_url() else ["wire"]
    return [pytest.param(name, marks=pytest.mark.integration) for name in names]


def unique_db_name() -> str:
    """A database name no other test (or test process) uses."""
    return f"parzen_test_{os.getpid()}_{next(_names)}"


@contextmanager
def running_wire_server(port: int = 0) -> Iterator[WireServer]:
    """A started ``WireServer``, stopped on exit."""
    server = WireServer(port)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def throwaway_database(client: MongoClient[Any]) -> Iterator[Any]:
    """A fresh database on ``client``, dropped on exit."""
    name = unique_db_name()
    try:
        yield client[name]
    finally:
        client.drop_database(name)


def mongomock_database() -> tuple[Any, threading.Lock]:
    """A fresh in-process mongomock database and the lock every user of it must hold."""
    return mongomock.MongoClient(tz_aware=True)[unique_db_name()], threading.Lock()


@pytest.fixture(scope="session")
def wire_server() -> Iterator[WireServer]:
    """One wire-protocol test server for the whole session."""
    with running_wire_server() as server:
        yield server


def connect(url: str) -> MongoClient[Any]:
    """A pymongo client for tests: tz-aware, and failing within 5 s if nobody answers."""
    return MongoClient(url, serverSelectionTimeoutMS=5000, tz_aware=True)


@pytest.fixture(scope="session")
def wire_client(wire_server: WireServer) -> Iterator[MongoClient[Any]]:
    """A pymongo client connected to the session's wire server."""
    client = connect(wire_server.url)
    yield client
    client.close()


@pytest.fixture(scope="session")
def real_mongo_client() -> Iterator[MongoClient[Any]]:
    """A pymongo client on ``PARZEN_TEST_MONGO_URL``; fails (never skips) when unreachable."""
    url = real_mongo_url()
    if url is None:
        pytest.fail(f"{ENV_URL} is not set; request this fixture only via mongo_targets()")
    client = connect(url)
    client.admin.command("ping")  # fail here, loudly, if the configured server is down
    yield client
    client.close()
