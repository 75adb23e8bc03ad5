"""Store fixtures: ``store`` and ``advance`` over every backend of the contract.

Backends: ``memory`` (fake clock), ``mongomock`` (in-process, behind a lock), ``wire`` (real
pymongo over TCP to the wire-protocol test server) and ``real`` (``PARZEN_TEST_MONGO_URL``,
only when set). Each test gets an empty store; Mongo databases are dropped afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from parzen.store import InMemoryTrialStore, TrialStore
from parzen.store._mongo import MongoTrialStore
from tests.support import mongo as mf

MONGO_BACKENDS = ["mongomock", *mf.mongo_targets()]
BACKENDS = ["memory", *MONGO_BACKENDS]


class FakeClock:
    """A clock that moves only when told to (the memory store takes it)."""

    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class StoreCase:
    """A store under test, and how to let its clock run ``seconds`` forward."""

    name: str
    store: TrialStore
    advance: Callable[[float], None]


def _cases(request: pytest.FixtureRequest) -> Iterator[StoreCase]:
    name = request.param
    if name == "memory":
        clock = FakeClock()
        yield StoreCase(name, InMemoryTrialStore(clock=clock), clock.advance)
    elif name == "mongomock":
        db, lock = mf.mongomock_database()
        yield StoreCase(name, MongoTrialStore(db, lock=lock), time.sleep)
    else:
        client = request.getfixturevalue("wire_client" if name == "wire" else
                                         "real_mongo_client")
        with mf.throwaway_database(client) as db:
            # The server's clock is real time: leases expire by sleeping.
            yield StoreCase(name, MongoTrialStore(db), time.sleep)


@pytest.fixture(params=BACKENDS)
def case(request: pytest.FixtureRequest) -> Iterator[StoreCase]:
    """A store of every backend."""
    yield from _cases(request)


@pytest.fixture(params=MONGO_BACKENDS)
def mongo_case(request: pytest.FixtureRequest) -> Iterator[StoreCase]:
    """A ``MongoTrialStore`` of every Mongo backend."""
    yield from _cases(request)


@pytest.fixture
def store(case: StoreCase) -> TrialStore:
    return case.store


@pytest.fixture
def advance(case: StoreCase) -> Callable[[float], None]:
    return case.advance
