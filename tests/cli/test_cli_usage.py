"""Help, defaults and friendly errors of the tools."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from parzen.cli import main
from parzen.cli._main import COMMANDS, build_parser
from tests.support.cli import MONGO_EXP, Cli

TOOLS = ["experiments", "trials", "best", "status", "errors", "plot", "cancel", "requeue",
         "delete", "dashboard"]


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    build_parser()
    assert set(TOOLS) <= set(COMMANDS)
    for name in TOOLS:
        with pytest.raises(SystemExit) as info:
            main([name, "--help"])
        assert info.value.code == 0
        text = capsys.readouterr().out
        assert f"usage: parzen {name}" in text and "--mongo URL" in text
        assert "examples:" in text and "PARZEN_MONGO_URL" in text


def test_python_dash_m_parzen_help_lists_the_tools() -> None:
    done = subprocess.run([sys.executable, "-m", "parzen", "--help"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    for name in TOOLS:
        assert name in done.stdout


def test_mongo_url_defaults_to_the_environment(cli: Cli, mongo_url: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARZEN_MONGO_URL", mongo_url)
    assert MONGO_EXP in cli("experiments")


def test_unknown_experiment_names_the_close_ones(cli: Cli, mongo_url: str) -> None:
    err = cli("trials", "mnist_tpe", "--mongo", mongo_url, code=2)
    assert err.startswith("parzen trials: no experiment 'mnist_tpe' in mongodb://127.0.0.1:")
    assert "Did you mean 'mnist-tpe'" in err and "'cifar-small'" not in err
    err = cli("best", "zzz", "--mongo", mongo_url, code=2)
    assert "It holds 3: 'cifar-small', 'mnist-rand', 'mnist-tpe'" in err
    err = cli("status", "--mongo", mongo_url, code=2)
    assert "name the experiment" in err and "'mnist-tpe'" in err


def test_unreachable_mongo_shows_the_host_redacted_and_the_timeout(cli: Cli) -> None:
    err = cli("experiments", "--mongo", "mongodb://alice:s3cret@127.0.0.1:1/parzen",
              "--connect-timeout", "0.2", code=2)
    assert "MongoDB unreachable at mongodb://alice:***@127.0.0.1:1/parzen" in err
    assert "Is mongod up there, and the URL right?" in err
    assert "timeout 0.2 s" in err and "s3cret" not in err


def test_missing_or_bad_sources_are_explained(cli: Cli, tmp_path: Path, local_file: str
                                              ) -> None:
    assert "pass --mongo URL (or set PARZEN_MONGO_URL), or --file PATH" in cli(
        "trials", "x", code=2)
    assert "no such file" in cli("trials", "--file", str(tmp_path / "nope.pkl"), code=2)
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"not a pickle")
    assert "is not a trials file" in cli("best", "--file", str(junk), code=2)
    assert "holds the experiment 'default', not 'other'" in cli("best", "other", "--file",
                                                                 local_file, code=2)
    assert "--state: 'bogus' is not a trial state: use one of new, running, done, error, " \
        "cancel, pruned (also accepted: queued = new, failed = error" in cli(
            "trials", "--file", local_file, "--state", "bogus", code=2)
    assert "mongodb://" in cli("trials", "x", "--mongo", "http://host/db", code=2)


def test_table_fits_the_terminal_width(cli: Cli, local_file: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    text = cli("trials", "--file", local_file, "--limit", "3")
    lines = text.splitlines()
    assert all(len(line) <= 60 for line in lines)
    assert "columns not shown: " in lines[-2] and "0.398…" not in text


def test_best_without_any_loss_says_why(cli: Cli, fresh_mongo: tuple[str, object]) -> None:
    from tests.support.cli import finished_experiment

    url, store = fresh_mongo
    finished_experiment(store, "broken", n=0, fail=2)  # type: ignore[arg-type]
    err = cli("best", "broken", "--mongo", url, code=2)
    assert "no trial of 'broken' has finished with a loss yet (2 error" in err
