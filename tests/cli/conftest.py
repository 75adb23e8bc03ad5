"""Experiments for the tool tests: a local run saved by fmin, and MongoDB experiments on the
wire-protocol test server, which the CLI reaches through ``--mongo URL`` like a real server.

``mnist-tpe`` is a real fmin run over a ``MongoTrialStore``, then given what a live
distributed run has: a coordinator holding the driver lease, workers with running trials (one
lease expired), queued trials, and the space description and ``max_evals`` on the experiment
document. Read-only tests share these; tests that change a store get ``fresh_mongo``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from parzen.space import describe
from parzen.store import Experiment
from parzen.store._mongo import MongoTrialStore
from parzen.trials import Trials
from tests.support import mongo as mf
from tests.support.cli import (
    MONGO_EXP,
    SPACE,
    Cli,
    add_in_flight,
    database_url,
    finished_experiment,
    run_fmin,
)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.delenv("PARZEN_MONGO_URL", raising=False)
    monkeypatch.delenv("COLUMNS", raising=False)
    return Cli(capsys)


@pytest.fixture(scope="session")
def local_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A finished local run saved by ``fmin(..., trials_save_file=...)``."""
    path = str(tmp_path_factory.mktemp("local") / "run.pkl")
    run_fmin(save_file=path)
    return path


@pytest.fixture(scope="session")
def mongo_url(wire_server: Any, wire_client: Any) -> Iterator[str]:
    """A database on the wire server with ``mnist-tpe`` (live), ``mnist-rand`` and
    ``cifar-small`` (finished)."""
    with mf.throwaway_database(wire_client) as db:
        url = database_url(wire_server.url, db.name)
        store = MongoTrialStore.from_url(url)
        run_fmin(Trials(exp_key=MONGO_EXP, store=store))
        store.put_experiment(Experiment(MONGO_EXP, space=describe(SPACE), max_evals=60))
        add_in_flight(store, MONGO_EXP)
        for key in ("mnist-rand", "cifar-small"):
            finished_experiment(store, key, n=4)
        store.close()
        yield url


@pytest.fixture
def fresh_mongo(wire_server: Any, wire_client: Any) -> Iterator[tuple[str, MongoTrialStore]]:
    """An empty database for a test that changes it, and a store on it."""
    with mf.throwaway_database(wire_client) as db:
        url = database_url(wire_server.url, db.name)
        store = MongoTrialStore.from_url(url)
        yield url, store
        store.close()


@pytest.fixture(params=[pytest.param("mongo", marks=pytest.mark.integration), "file"])
def source(request: pytest.FixtureRequest) -> list[str]:
    """CLI arguments naming an experiment: ``EXP --mongo URL``, or ``--file PATH``."""
    if request.param == "mongo":
        return [MONGO_EXP, "--mongo", request.getfixturevalue("mongo_url")]
    return ["--file", request.getfixturevalue("local_file")]
