"""``cancel``, ``requeue`` and ``delete`` on MongoDB (wire server) and on a local file."""

from __future__ import annotations

import io
import os
import pickle
import shutil
from pathlib import Path

import pytest

from parzen.store import Experiment, ObjectiveKind, ObjectiveSpec
from parzen.store._mongo import MongoTrialStore
from parzen.trial import TrialState
from tests.support.cli import Cli, add_in_flight, finished_experiment

Fresh = tuple[str, MongoTrialStore]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_cancel_cancels_queued_trials_only(cli: Cli, fresh_mongo: Fresh,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    url, store = fresh_mongo
    finished_experiment(store, "run", n=2)
    add_in_flight(store, "run")
    got = main_with_stderr(capsys, "cancel", "run", "--mongo", url)
    assert got[0] == "cancelled 2 new trials of 'run'\n"
    assert "coordinator is still running" in got[1]
    counts = store.count_by_state("run")
    assert counts[TrialState.NEW] == 0 and counts[TrialState.CANCEL] == 2
    assert counts[TrialState.RUNNING] == 3 and counts[TrialState.DONE] == 2
    assert cli("cancel", "run", "--mongo", url) == "cancelled 0 new trials of 'run'\n"


def test_requeue_gives_failed_trials_another_try(cli: Cli, fresh_mongo: Fresh,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    url, store = fresh_mongo
    finished_experiment(store, "run", n=2, fail=3)
    out, err = main_with_stderr(capsys, "requeue", "run", "--mongo", url, "--state", "error")
    assert out == "requeued 3 error trials of 'run'\n"
    assert "no coordinator is running" in err and "exp_key='run'" in err
    counts = store.count_by_state("run")
    assert counts[TrialState.NEW] == 3 and counts[TrialState.ERROR] == 0
    requeued = store.find("run", states=[TrialState.NEW])
    assert all(t.history and "requeued by operator from ERROR" in t.history[-1].outcome
               for t in requeued)
    assert "only finished trials" in cli("requeue", "run", "--mongo", url, "--state",
                                         "running", code=2)


def test_delete_asks_then_removes_trials_experiment_and_payload(
        cli: Cli, fresh_mongo: Fresh, monkeypatch: pytest.MonkeyPatch) -> None:
    url, store = fresh_mongo
    finished_experiment(store, "old", n=3)
    finished_experiment(store, "keep", n=1)
    payload = store.put_payload("old", b"x" * 300_000)  # spans two GridFS chunks
    store.put_experiment(Experiment("old", objective=ObjectiveSpec(
        ObjectiveKind.PICKLE, sha256="s", fingerprint="f", payload_id=payload)))
    monkeypatch.setattr("sys.stdin", _Terminal("n\n"))
    assert "nothing deleted" in cli("delete", "old", "--mongo", url, code=1)
    assert store.get_experiment("old") is not None

    monkeypatch.setattr("sys.stdin", _Terminal("y\n"))
    text = cli("delete", "old", "--mongo", url)
    assert "delete experiment 'old'" in text and "(3 trials, 1 objective payload)? [y/N]" in text
    assert "deleted 'old': 3 trials, 1 payload" in text
    assert store.get_experiment("old") is None and sum(store.count_by_state("old").values()) == 0
    assert store._files.count_documents({}) == 0 and store._chunks.count_documents({}) == 0
    assert store.get_experiment("keep") is not None


def test_delete_refuses_without_a_terminal_a_live_run_and_a_file(
        cli: Cli, fresh_mongo: Fresh, local_file: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url, store = fresh_mongo
    finished_experiment(store, "old", n=1)
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    assert "pass --yes" in cli("delete", "old", "--mongo", url, code=2)
    assert store.get_experiment("old") is not None
    assert "deleted 'old': 1 trials" in cli("delete", "old", "--mongo", url, "--yes")

    add_in_flight(store, "live")
    assert "live coordinator" in cli("delete", "live", "--mongo", url, "--yes", code=2)
    assert "remove" in cli("delete", "--file", local_file, "--yes", code=2)
    assert os.path.exists(local_file)


def test_file_requeue_and_cancel_resave_the_file(cli: Cli, local_file: str,
                                                 tmp_path: Path) -> None:
    path = str(tmp_path / "copy.pkl")
    shutil.copy(local_file, path)
    with open(path, "rb") as f:
        before = pickle.load(f)
    n_failed = before.state_counts()[TrialState.ERROR]
    assert n_failed > 0
    assert cli("requeue", "--file", path) == f"requeued {n_failed} error trials of 'default'\n"
    with open(path, "rb") as f:
        after = pickle.load(f)
    counts = after.state_counts()
    assert counts[TrialState.NEW] == n_failed and counts[TrialState.ERROR] == 0
    assert after.attachments == before.attachments
    assert cli("cancel", "--file", path) == f"cancelled {n_failed} new trials of 'default'\n"
    with open(path, "rb") as f:
        assert pickle.load(f).state_counts()[TrialState.CANCEL] == n_failed


def test_file_requeue_then_fmin_resume_runs_them(cli: Cli, local_file: str,
                                                 tmp_path: Path) -> None:
    from tests.support.cli import N_EVALS, run_fmin

    path = str(tmp_path / "copy.pkl")
    shutil.copy(local_file, path)
    cli("requeue", "--file", path)
    run_fmin(save_file=path)
    with open(path, "rb") as f:
        counts = pickle.load(f).state_counts()
    assert counts[TrialState.NEW] == 0 and counts[TrialState.DONE] + counts[TrialState.ERROR] \
        == N_EVALS


def test_file_changed_while_working_is_not_overwritten(local_file: str, tmp_path: Path) -> None:
    from parzen.cli._source import open_file
    from parzen.exceptions import StoreError

    path = str(tmp_path / "copy.pkl")
    shutil.copy(local_file, path)
    src = open_file(path)
    with open(path, "ab") as f:
        f.write(b"\0")  # another writer
    with pytest.raises(StoreError, match="changed while parzen was working"):
        src.save()


def main_with_stderr(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[str, str]:
    from parzen.cli import main

    assert main(list(argv)) == 0
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_requeue_expired_puts_dead_workers_trials_back(
        cli: Cli, fresh_mongo: Fresh, capsys: pytest.CaptureFixture[str]) -> None:
    url, store = fresh_mongo
    add_in_flight(store, "run")
    store.release_driver("run", "coord-1")
    status = cli("status", "run", "--mongo", url)
    assert "expired leases: 1" in status and "parzen requeue run --expired" in status
    out, err = main_with_stderr(capsys, "requeue", "run", "--mongo", url, "--expired")
    assert out == "requeued 1 trials of 'run' whose lease expired\n"
    # Nothing publishes them without a coordinator: the operator is told how they will run.
    assert err == "note: no coordinator is running; the trials run when you resume fmin " \
                  "with MongoTrials(..., exp_key='run')\n"
    counts = store.count_by_state("run")
    assert counts[TrialState.RUNNING] == 2 and counts[TrialState.NEW] == 3
    assert "leave out --state" in cli("requeue", "run", "--mongo", url, "--expired",
                                      "--state", "error", code=2)
