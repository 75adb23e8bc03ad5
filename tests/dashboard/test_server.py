"""The dashboard's server on a real loopback socket, over a local run's file: what the API
answers, who it refuses, what it never shows, and that no bad input stops it."""

from __future__ import annotations

import pickle
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

from parzen.cli import main
from parzen.cli._source import Source
from parzen.cli.dashboard import server
from parzen.cli.dashboard.server import is_loopback
from parzen.store import InMemoryTrialStore, MongoTrialStore
from parzen.trial import TrialState
from parzen.trials import Trials
from tests.support import mongo as mf
from tests.support.cli import (
    N_EVALS,
    add_in_flight,
    database_url,
    finished_experiment,
    run_fmin,
)
from tests.support.dashboard import SlowFirstRead, serving

ACTION = {"X-Parzen-Action": "1"}


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("dash") / "run.pkl")
    run_fmin(save_file=path)
    return path


@pytest.fixture
def run_file(saved_run: str, tmp_path: Path) -> str:
    """A copy of the saved run that a test may change."""
    path = str(tmp_path / "run.pkl")
    shutil.copy(saved_run, path)
    return path


def _stored(path: str) -> Trials:
    with open(path, "rb") as f:
        trials = pickle.load(f)
    assert isinstance(trials, Trials)
    return trials


def _column(poll: dict[str, Any], name: str) -> list[Any]:
    """A column of a poll's rows (they travel column by column)."""
    column: list[Any] = poll["data"][poll["columns"].index(name)]
    return column


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_api_answers_with_the_stored_trials(saved_run: str) -> None:
    stored = _stored(saved_run)
    counts = stored.state_counts()
    with serving(file=saved_run) as d:
        status, page = d.get("/")
        assert status == 200 and "uPlot.iife.min.js" in page
        status, listing = d.get("/api/experiments")
        assert status == 200
        (row,) = listing["experiments"]
        assert row["exp_key"] == stored.exp_key
        assert row["counts"]["done"] == counts[TrialState.DONE]
        assert row["counts"]["error"] == counts[TrialState.ERROR]
        assert row["best_loss"] == stored.best_loss
        status, poll = d.get(f"/api/exp/{stored.exp_key}?since=")
        assert status == 200 and poll["reset"] is True
        assert _column(poll, "tid") == list(range(N_EVALS))
        assert poll["summary"]["best"]["loss"] == stored.best_loss
        # Asked again with the number it gave: nothing changed, nothing sent.
        status, again = d.get(f"/api/exp/{stored.exp_key}?since={poll['since']}")
        assert _column(again, "tid") == [] and again["reset"] is False
        status, errors = d.get(f"/api/exp/{stored.exp_key}/errors")
        assert errors["groups"][0]["type"] == "ValueError"
        status, imp = d.get(f"/api/exp/{stored.exp_key}/importance")
        assert {i["label"] for i in imp["importance"]} == {"lr", "layers", "act", "slope"}
        status, detail = d.get(f"/api/exp/{stored.exp_key}/trial/0")
        assert status == 200 and detail["row"]["tid"] == 0


def test_bad_requests_get_a_message_and_the_server_goes_on(saved_run: str,
                                                           tmp_path: Path) -> None:
    with serving(file=saved_run) as d:
        status, body = d.get("/api/exp/no-such-exp")
        assert status == 404 and "no experiment 'no-such-exp'" in body["error"]
        status, body = d.get("/api/exp/default/trial/99999")
        assert status == 404 and "no trial 99999" in body["error"]
        status, body = d.get("/static/../../etc/passwd")
        assert status == 404
        status, body = d.get("/nothing-here")
        assert status == 404 and body.startswith("parzen dashboard: no page")
        assert d.get("/api/config")[0] == 200
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"not a pickle at all")
    with serving(file=str(bad)) as d:
        status, body = d.get("/api/experiments")
        assert status == 409 and "is not a trials file" in body["error"]
        assert d.get("/api/config")[0] == 200


def test_mongodb_down_is_a_message_without_the_password() -> None:
    url = f"mongodb://admin:hunter2-secret@127.0.0.1:{_free_port()}/parzen"
    with serving(mongo_url=url, connect_timeout_s=0.3) as d:
        status, config = d.get("/api/config")
        assert status == 200 and "hunter2" not in str(config)
        assert config["where"] == f"mongodb://admin:***@127.0.0.1:{url.split(':')[3]}"
        status, body = d.get("/api/experiments")
        assert status == 503
        assert "127.0.0.1" in body["error"] and "hunter2" not in body["error"]
        status, body = d.get("/api/exp/mnist?since=")
        assert status == 503 and "hunter2" not in body["error"]
        assert d.get("/api/config")[0] == 200


def test_a_token_is_required_on_every_request_when_set(saved_run: str) -> None:
    with serving(file=saved_run, token="tok-123", loopback=False) as d:
        for path in ("/", "/static/app.js", "/api/config", "/api/experiments"):
            status, body = d.get(path)
            assert status == 401, path
            assert "access token" in str(body) and "tok-123" not in str(body)
        assert d.get("/api/config", {"X-Parzen-Token": "wrong"})[0] == 401
        assert d.get("/api/config", {"X-Parzen-Token": "tok-123"})[0] == 200
        assert d.get("/api/config", {"Authorization": "Bearer tok-123"})[0] == 200
        assert d.get("/api/experiments", {"Cookie": "parzen_dashboard_token=tok-123"})[0] == 200
        assert d.get("/?token=tok-123")[0] == 200


def test_loopback_without_a_token_answers_only_loopback_host_names(saved_run: str) -> None:
    with serving(file=saved_run) as d:
        assert d.get("/api/config", {"Host": "localhost:8421"})[0] == 200
        assert d.get("/api/config", {"Host": "[::1]:8421"})[0] == 200
        status, body = d.get("/api/config", {"Host": "attacker.example:8421"})
        assert status == 403 and "localhost" in body["error"]


def test_actions_are_off_unless_allowed(run_file: str) -> None:
    with serving(file=run_file) as d:
        assert d.get("/api/config")[1]["actions"] == []
        status, body = d.get("/api/exp/default/action/requeue", ACTION, method="POST")
        assert status == 403 and "--allow-actions" in body["error"]
    assert _stored(run_file).state_counts()[TrialState.ERROR] > 0


def test_an_allowed_action_runs_the_parzen_command_and_the_page_sees_it(run_file: str) -> None:
    failed = _stored(run_file).state_counts()[TrialState.ERROR]
    assert failed > 0
    with serving(file=run_file, allow_actions=True) as d:
        # No stop over a file: a local run has no coordinator to ask (parzen stop says so).
        assert d.get("/api/config")[1]["actions"] == ["cancel", "requeue", "requeue-expired"]
        status, body = d.get("/api/exp/default/action/requeue", method="POST")
        assert status == 403 and "X-Parzen-Action" in body["error"]  # no cross-site forms
        status, body = d.get("/api/exp/default/action/requeue", ACTION, method="POST")
        assert status == 200 and body["ok"], body
        assert body["output"] == f"requeued {failed} error trials of 'default'"  # the CLI's
        status, poll = d.get("/api/exp/default?since=")
        assert poll["summary"]["counts"]["error"] == 0
        assert poll["summary"]["counts"]["new"] == failed
        status, body = d.get("/api/exp/default/action/delete", ACTION, method="POST")
        assert status == 404 and "no action 'delete'" in body["error"]
        status, body = d.get("/api/exp/default/action/stop", ACTION, method="POST")
        assert status == 404 and "no action 'stop'" in body["error"]
    assert _stored(run_file).state_counts()[TrialState.NEW] == failed  # the file was saved


def test_the_stop_action_asks_the_live_coordinator_through_parzen_stop(
        wire_server: Any, wire_client: Any) -> None:
    with mf.throwaway_database(wire_client) as db:
        url = database_url(wire_server.url, db.name)
        store = MongoTrialStore.from_url(url)
        finished_experiment(store, "live", n=3)
        add_in_flight(store, "live")  # a coordinator (holder coord-1) holds the driver lease
        finished_experiment(store, "over", n=3)  # no coordinator
        try:
            with serving(mongo_url=url) as d:  # read-only: refused, nothing written
                status, body = d.get("/api/exp/live/action/stop", ACTION, method="POST")
                assert status == 403 and "--allow-actions" in body["error"]
            assert store.get_experiment("live").stop_request is None  # type: ignore[union-attr]
            with serving(mongo_url=url, allow_actions=True) as d:
                assert "stop" in d.get("/api/config")[1]["actions"]
                status, body = d.get("/api/exp/live/action/stop", ACTION, method="POST")
                assert status == 200 and body["ok"], body
                assert body["command"] == "parzen stop live --wait 0"
                # parzen stop's own words, and the request it writes for the lease holder.
                assert body["output"] == ("asked the coordinator of 'live' (pid 4242 on "
                                          "head-node) to end its run")
                exp = store.get_experiment("live")
                assert exp is not None and exp.stop_request is not None
                assert exp.stop_request.holder == "coord-1"
                # No coordinator: parzen stop's refusal, on the page, and nothing written.
                status, body = d.get("/api/exp/over/action/stop", ACTION, method="POST")
                assert status == 200 and not body["ok"]
                assert "no coordinator is running 'over'" in body["message"]
                assert "mongodb://" not in body["message"] + body["command"]
            assert store.get_experiment("over").stop_request is None  # type: ignore[union-attr]
        finally:
            store.close()


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("localhost", True),
                                                ("::1", True), ("0.0.0.0", False),
                                                ("10.1.2.3", False), ("head-node", False)])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_an_unreadable_trial_document_is_named_and_the_rest_shown(wire_server: Any,
                                                                   wire_client: Any) -> None:
    with mf.throwaway_database(wire_client) as db:
        url = database_url(wire_server.url, db.name)
        store = MongoTrialStore.from_url(url)
        finished_experiment(store, "cifar", n=4)
        # A document edited by hand: its state is not one parzen knows.
        store._trials.insert_one({"exp_key": "cifar", "tid": 99, "state": "exploded"})
        store.close()
        with serving(mongo_url=url) as d:
            status, poll = d.get("/api/exp/cifar?since=")
            assert status == 200 and len(_column(poll, "tid")) == 4
            assert len(poll["unreadable"]) == 1 and "'cifar'" in poll["unreadable"][0]
            status, listing = d.get("/api/experiments")
            assert status == 200 and listing["unreadable"]


def test_the_command_refuses_another_interface_without_a_token(
        saved_run: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("PARZEN_DASHBOARD_TOKEN", raising=False)
    assert main(["dashboard", "--file", saved_run, "--host", "0.0.0.0", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "--host 0.0.0.0" in err and "PARZEN_DASHBOARD_TOKEN" in err and "SSH tunnel" in err
    assert main(["dashboard", "--file", saved_run, "--port", "70000"]) == 2
    assert "--port 70000" in capsys.readouterr().err
    assert main(["dashboard", "--file", saved_run + ".missing", "--port", "0"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_a_page_asking_during_the_first_read_is_told_so_and_the_warm_up_serves_it() -> None:
    store = SlowFirstRead()
    finished_experiment(store, "cifar", n=4, fail=1)
    with serving(opened=Source(store=store, where="memory"), warm_up=True) as d:
        assert store.reading.wait(30)  # the warm-up, started with the server, is reading
        status, poll = d.get("/api/exp/cifar?since=")
        assert status == 200 and "still reading the trials of 'cifar'" in poll["loading"]
        status, body = d.get("/api/exp/cifar/errors")
        assert status == 503 and "still reading" in body["error"]
        assert d.get("/api/experiments")[0] == 200  # the rest of the dashboard answers
        store.release.set()
        assert d.warm_up is not None
        d.warm_up.join(30)
        status, poll = d.get("/api/exp/cifar?since=")
        assert status == 200 and _column(poll, "tid") == [0, 1, 2, 3, 4]
        assert d.dashboard.views["cifar"].reads.full == 1  # the warm-up's read, not the page's


def test_the_warm_up_reads_the_most_recently_active_experiments_within_its_budget(
        monkeypatch: pytest.MonkeyPatch) -> None:
    store = InMemoryTrialStore()
    finished_experiment(store, "older", n=4)
    finished_experiment(store, "newer", n=4)
    finished_experiment(store, "large", n=9)
    monkeypatch.setattr(server, "WARM_TRIALS", 8)
    with serving(opened=Source(store=store, where="memory"), warm_up=True) as d:
        assert d.warm_up is not None
        d.warm_up.join(30)
        # "large" would overrun the budget; "newer" and then "older" fit, newest first.
        assert sorted(d.dashboard.views) == ["newer", "older"]
    monkeypatch.setattr(server, "WARM_TRIALS", 6)
    with serving(opened=Source(store=store, where="memory"), warm_up=True) as d:
        assert d.warm_up is not None
        d.warm_up.join(30)
        assert list(d.dashboard.views) == ["newer"]
