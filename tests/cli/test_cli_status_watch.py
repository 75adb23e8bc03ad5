"""``parzen status --watch``: redraws until the run ends."""

from __future__ import annotations

import json

import pytest

from parzen.cli import tools
from parzen.store._mongo import MongoTrialStore
from parzen.trial import TrialState
from tests.support.cli import Cli, add_in_flight, finished_experiment


def _finish_run_on_sleep(store: MongoTrialStore, monkeypatch: pytest.MonkeyPatch
                         ) -> list[float]:
    """Each sleep of the watch loop moves the run on: the first cancels what is left, the
    second lets the coordinator go."""
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 1:
            store.cancel("run", (TrialState.NEW, TrialState.RUNNING))
        else:
            store.release_driver("run", "coord-1")

    monkeypatch.setattr(tools, "_sleep", sleep)
    return sleeps


def test_watch_redraws_until_the_run_ends(cli: Cli, fresh_mongo: tuple[str, MongoTrialStore],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    url, store = fresh_mongo
    finished_experiment(store, "run", n=2)
    add_in_flight(store, "run")
    sleeps = _finish_run_on_sleep(store, monkeypatch)
    text = cli("status", "run", "--mongo", url, "--watch", "--interval", "0.5")
    assert sleeps == [0.5, 0.5]
    blocks = text.split("experiment 'run'")[1:]
    assert len(blocks) == 3
    assert "new 2  running 3" in blocks[0] and "alive" in blocks[0]
    assert "new 0  running 0" in blocks[1] and "alive" in blocks[1]
    assert "coordinator  none" in blocks[2]
    assert text.rstrip().endswith("run ended: 2 done, 0 error")
    assert "\x1b[2J" not in text  # not a terminal: plain blocks, no screen clearing


def test_watch_on_a_terminal_clears_the_screen(cli: Cli, local_file: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    text = cli("status", "--file", local_file, "--watch")
    assert text.startswith("\x1b[H\x1b[2J") and "run ended" in text


def test_watch_json_prints_one_line_per_refresh(cli: Cli,
                                                fresh_mongo: tuple[str, MongoTrialStore],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    url, store = fresh_mongo
    finished_experiment(store, "run", n=2)
    add_in_flight(store, "run")
    _finish_run_on_sleep(store, monkeypatch)
    lines = cli("status", "run", "--mongo", url, "--watch", "--format", "json").splitlines()
    docs = [json.loads(line) for line in lines]
    assert [d["ended"] for d in docs] == [False, False, True]
    assert [d["running"] for d in docs] == [3, 0, 0]


def test_watch_stops_quietly_on_ctrl_c(cli: Cli, fresh_mongo: tuple[str, MongoTrialStore],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    url, store = fresh_mongo
    add_in_flight(store, "run")

    def interrupt(_: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(tools, "_sleep", interrupt)
    assert "running 3" in cli("status", "run", "--mongo", url, "--watch")
