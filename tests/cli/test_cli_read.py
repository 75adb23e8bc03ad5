"""The read-only tools on a Mongo experiment (wire server, ``--mongo``) and a local file."""

from __future__ import annotations

import csv
import io
import json

import pytest

from parzen.cli import main
from parzen.export import FIXED_COLUMNS
from tests.support.cli import LABELS, MONGO_EXP, N_EVALS, Cli, finished_experiment, trials_of


def test_experiments_lists_counts_best_activity_and_coordinator(cli: Cli, mongo_url: str
                                                                ) -> None:
    text = cli("experiments", "--mongo", mongo_url)
    header, *lines = text.splitlines()
    assert header.split()[:6] == ["EXPERIMENT", "NEW", "RUNNING", "DONE", "ERROR", "CANCEL"]
    assert [line.split()[0] for line in lines] == ["cifar-small", "mnist-rand", MONGO_EXP]
    live = next(line for line in lines if line.startswith(MONGO_EXP))
    assert "alive (pid 4242 on head-node)" in live and "ago" in live

    rows = json.loads(cli("experiments", "--mongo", mongo_url, "--format", "json"))
    by_key = {r["exp_key"]: r for r in rows}
    live_row = by_key[MONGO_EXP]
    assert live_row["running"] == 3 and live_row["new"] == 2
    assert live_row["done"] + live_row["error"] == N_EVALS and live_row["error"] >= 1
    assert live_row["coordinator"] == "alive" and live_row["max_evals"] == 60
    assert by_key["mnist-rand"]["coordinator"] == "none"
    assert by_key["mnist-rand"]["best_loss"] == 0.25
    assert live_row["last_activity"].endswith("+00:00")

    table = list(csv.DictReader(io.StringIO(cli("experiments", "--mongo", mongo_url,
                                                "--format", "csv"))))
    assert [r["exp_key"] for r in table] == ["cifar-small", "mnist-rand", MONGO_EXP]


def test_experiments_on_a_file_lists_its_one_experiment(cli: Cli, local_file: str) -> None:
    [row] = json.loads(cli("experiments", "--file", local_file, "--format", "json"))
    assert row["exp_key"] == "default" and row["done"] + row["error"] == N_EVALS
    assert row["coordinator"] == "none"


def test_trials_formats_share_the_columns(cli: Cli, source: list[str]) -> None:
    expected = [*FIXED_COLUMNS, "lr", "layers", "act", "act_value", "slope"]
    rows = list(csv.DictReader(io.StringIO(cli("trials", *source, "--format", "csv"))))
    assert list(rows[0]) == expected
    oracle = trials_of(source)()
    assert [int(r["tid"]) for r in rows] == [t.tid for t in oracle]

    data = json.loads(cli("trials", *source, "--format", "json"))
    assert [list(r) for r in data] == [expected] * len(data)
    for r in data:
        if r["act"] is not None and r["act"] < 2:
            assert r["act_value"] == ["relu", "tanh"][r["act"]] and r["slope"] is None
        elif r["act"] == 2:
            assert r["act_value"] == {"kind": "leaky", "slope": r["slope"]}
        if r["state"] == "done":
            assert r["loss"] is not None and r["duration_s"] >= 0 and r["worker"]

    table = cli("trials", *source)
    # No trial here reported (parzen.report): the table, for people, leaves `step` out.
    assert table.splitlines()[0].split() == [c for c in expected if c != "step"]
    assert len(table.splitlines()) == 1 + len(oracle)


def test_trials_filters_sorts_and_limits(cli: Cli, source: list[str]) -> None:
    best3 = json.loads(cli("trials", *source, "--sort", "loss", "--limit", "3",
                           "--format", "json"))
    losses = [t.loss for t in trials_of(source)() if t.loss is not None]
    assert [r["loss"] for r in best3] == sorted(losses)[:3]

    failed = json.loads(cli("trials", *source, "--state", "error", "--format", "json"))
    assert failed and {r["state"] for r in failed} == {"error"}
    assert all(r["loss"] is None and r["lr"] > 0.03 for r in failed)
    # The word the documents hold is the name; the other common words are aliases of it.
    for alias in ("failed", "FAILED"):
        assert json.loads(cli("trials", *source, "--state", alias, "--format", "json")) \
            == failed

    newest = json.loads(cli("trials", *source, "--sort", "tid", "--desc", "--limit", "2",
                            "--format", "json"))
    assert newest[0]["tid"] > newest[1]["tid"]

    text = cli("trials", *source, "--limit", "2")
    assert text.rstrip().endswith("trials shown)")


def test_trials_shows_running_and_queued_state(cli: Cli, mongo_url: str) -> None:
    rows = json.loads(cli("trials", MONGO_EXP, "--mongo", mongo_url, "--state",
                          "running,queued", "--format", "json"))
    assert sorted(r["state"] for r in rows) == ["new", "new", "running", "running", "running"]
    assert {r["worker"] for r in rows if r["state"] == "running"} == {"gpu-1", "gpu-2", "gpu-3"}


def test_trials_of_one_worker(cli: Cli, mongo_url: str, capsys: pytest.CaptureFixture[str]
                              ) -> None:
    rows = json.loads(cli("trials", MONGO_EXP, "--mongo", mongo_url, "--worker", "gpu-2",
                          "--format", "json"))
    assert [(r["state"], r["worker"]) for r in rows] == [("running", "gpu-2")]
    # Every slot of a worker is the worker: the fmin run's in-process trials are "inline".
    done = json.loads(cli("trials", MONGO_EXP, "--mongo", mongo_url, "--worker", "inline",
                          "--state", "done", "--limit", "2", "--format", "json"))
    assert len(done) == 2 and {r["worker"] for r in done} == {"inline"}
    assert main(["trials", MONGO_EXP, "--mongo", mongo_url, "--worker", "gpu-9"]) == 0
    out = capsys.readouterr()
    assert "(no trials of worker 'gpu-9')" in out.out
    assert "the workers of these trials: gpu-1, gpu-2, gpu-3, inline" in out.err


def test_best_shows_raw_params_and_space_eval_values(cli: Cli, source: list[str]) -> None:
    doc = json.loads(cli("best", *source, "--format", "json"))
    best = min((t for t in trials_of(source)() if t.loss is not None), key=lambda t: t.loss or 0)
    assert doc["tid"] == best.tid and doc["loss"] == best.loss
    assert doc["params"] == dict(best.params)
    act = doc["params"]["act"]
    expected_act = ["relu", "tanh", {"kind": "leaky", "slope": doc["params"].get("slope")}][act]
    assert doc["value"] == {"lr": doc["params"]["lr"], "layers": int(doc["params"]["layers"]),
                            "act": expected_act}
    assert isinstance(doc["value"]["layers"], int)

    text = cli("best", *source)
    assert f"tid {best.tid}" in text and "space_eval" in text
    assert json.dumps(expected_act, indent=2).splitlines()[0] in text


def test_status_shows_counts_workers_leases_and_eta(cli: Cli, mongo_url: str) -> None:
    text = cli("status", MONGO_EXP, "--mongo", mongo_url)
    assert "coordinator  alive (pid 4242 on head-node, lease renewed, " in text
    assert "trials       new 2  running 3  done " in text and "of max_evals 60" in text
    assert "trials/min" in text and "eta " in text
    for worker in ("gpu-1", "gpu-2", "gpu-3", "inline"):
        assert worker in text
    assert "expired leases: 1" in text and "EXPIRED" in text

    doc = json.loads(cli("status", MONGO_EXP, "--mongo", mongo_url, "--format", "json"))
    assert doc["running"] == 3 and doc["new"] == 2 and doc["coordinator"]["alive"]
    assert doc["done"] + doc["error"] == N_EVALS and doc["cancel"] == 0
    assert doc["remaining"] == 60 - N_EVALS
    assert doc["finished_per_minute"] > 0 and doc["eta_s"] > 0
    assert len(doc["expired_leases"]) == 1 and not doc["ended"]
    assert {w["worker"] for w in doc["workers"]} == {"gpu-1", "gpu-2", "gpu-3", "inline"}
    assert all(r["age_s"] >= 0 for r in doc["running_trials"])


def test_status_of_a_finished_local_run(cli: Cli, local_file: str) -> None:
    text = cli("status", "--file", local_file)
    assert "coordinator  none" in text and "the run is not active" in text
    assert "running trials: none" in text and "expired leases: none" in text
    doc = json.loads(cli("status", "--file", local_file, "--format", "json"))
    assert doc["ended"] and doc["eta_s"] is None


def test_errors_groups_by_type_with_one_traceback(cli: Cli, source: list[str]) -> None:
    failed = [t for t in trials_of(source)() if t.error is not None]
    groups = json.loads(cli("errors", *source, "--format", "json"))
    assert [g["type"] for g in groups] == ["ValueError"]
    assert groups[0]["count"] == len(failed) and groups[0]["tids"] == [t.tid for t in failed]
    assert "diverged" in groups[0]["traceback"] and "Traceback" in groups[0]["traceback"]

    text = cli("errors", *source)
    assert f"== ValueError: {len(failed)} trials" in text
    assert text.count("Traceback (most recent call last)") == 1


def test_errors_with_several_groups_and_none(cli: Cli, fresh_mongo: tuple[str, object]
                                             ) -> None:


    url, store = fresh_mongo
    finished_experiment(store, "ok-run", n=3)  # type: ignore[arg-type]
    assert "no error trials in 'ok-run'" in cli("errors", "ok-run", "--mongo", url)
    finished_experiment(store, "bad-run", n=1, fail=2)  # type: ignore[arg-type]
    groups = json.loads(cli("errors", "bad-run", "--mongo", url, "--format", "json"))
    assert [(g["type"], g["count"]) for g in groups] == [("RuntimeError", 2)]
    # "trial 1 broke" and "trial 2 broke" differ only in a number: one kind of message
    assert groups[0]["messages"] == [{"message": "trial 1 broke", "count": 2,
                                      "pattern": "trial # broke", "distinct": 2}]
    assert "2 x  trial 1 broke (and similar)" in cli("errors", "bad-run", "--mongo", url)


def test_plot_writes_a_png_with_one_panel_per_parameter(cli: Cli, source: list[str],
                                                        tmp_path: object) -> None:
    import pathlib

    out = pathlib.Path(str(tmp_path)) / "run.png"
    text = cli("plot", *source, "--out", str(out), "--dpi", "40")
    assert f"{1 + len(LABELS)} panels" in text
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000
