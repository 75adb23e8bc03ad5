"""Shared pieces of the tool tests: the space, the objective, the in-process CLI runner and
builders of experiments (used by ``tests/cli/conftest.py`` and the CLI tests)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from parzen import fmin, hp, tpe
from parzen.cli import main
from parzen.pyll import scope
from parzen.space import describe
from parzen.store import DriverLease, Experiment, TrialStore
from parzen.trial import ErrorInfo, Owner, Trial, TrialState
from parzen.trials import Trials

SPACE = {
    "lr": hp.loguniform("lr", math.log(1e-4), math.log(1e-1)),
    "layers": scope.int(hp.quniform("layers", 1, 6, 1)),
    "act": hp.choice("act", ["relu", "tanh",
                             {"kind": "leaky", "slope": hp.uniform("slope", 0.01, 0.3)}]),
}
LABELS = ["lr", "layers", "act", "slope"]
N_EVALS = 30
MONGO_EXP = "mnist-tpe"


def objective(p: dict[str, Any]) -> float:
    if p["lr"] > 0.03:
        raise ValueError(f"diverged at lr={p['lr']:.3g}: loss is nan")
    slope = p["act"]["slope"] if isinstance(p["act"], dict) else 0.0
    return float((math.log10(p["lr"]) + 2.5) ** 2 + 0.1 * abs(p["layers"] - 3) + slope)


def run_fmin(trials: Trials | None = None, save_file: str = "") -> Any:
    """A real run: TPE, ``N_EVALS`` trials, the failures recorded as ERROR trials."""
    return fmin(objective, SPACE, algo=tpe.suggest, max_evals=N_EVALS, trials=trials,
                rstate=np.random.default_rng(7), catch_eval_exceptions=True,
                show_progressbar=False, trials_save_file=save_file)


@dataclass
class Cli:
    """Runs ``parzen`` in-process; returns stdout, or stderr when a failure is expected."""

    capsys: pytest.CaptureFixture[str]

    def __call__(self, *argv: str, code: int = 0) -> str:
        got = main(list(argv))
        captured = self.capsys.readouterr()
        assert got == code, f"exit {got}, stderr: {captured.err}\nstdout: {captured.out}"
        return captured.out if code == 0 else captured.err


def database_url(server_url: str, db: str) -> str:
    """The wire server's URL with a database name in its path."""
    return server_url.replace("/?", f"/{db}?", 1)


def add_in_flight(store: TrialStore, exp_key: str) -> None:
    """Give ``exp_key`` a live coordinator, three running trials (one with an expired
    lease) and two queued ones."""
    store.acquire_driver(exp_key, DriverLease(holder="coord-1", host="head-node", pid=4242,
                                              started="2026-01-01T00:00:00+00:00"),
                         lease_s=600)
    tids = store.allocate_tids(exp_key, 5)
    points = [{"lr": 0.002, "layers": 3.0, "act": 1}, {"lr": 0.01, "layers": 2.0, "act": 0},
              {"lr": 0.0005, "layers": 4.0, "act": 1}, {"lr": 0.003, "layers": 3.0, "act": 0},
              {"lr": 0.004, "layers": 5.0, "act": 0}]
    store.insert_new([Trial(exp_key, tid, TrialState.NEW, p)
                      for tid, p in zip(tids, points, strict=True)])
    store.claim(exp_key, tids[0], Owner("gpu-1", "node-1", 101), lease_s=600)
    store.claim(exp_key, tids[1], Owner("gpu-2", "node-2", 102), lease_s=600)
    store.claim(exp_key, tids[2], Owner("gpu-3", "node-3", 103), lease_s=-30)  # expired


def finished_experiment(store: TrialStore, key: str, n: int, fail: int = 0) -> None:
    """``n`` done trials then ``fail`` failed ones, written through the store API."""
    store.put_experiment(Experiment(key, space=describe(SPACE), max_evals=n + fail))
    tids = store.allocate_tids(key, n + fail)
    store.insert_new([Trial(key, tid, TrialState.NEW,
                            {"lr": 10.0 ** (-1 - tid % 3), "layers": 2.0, "act": tid % 2})
                      for tid in tids])
    for i, tid in enumerate(tids):
        t = store.claim(key, tid, Owner("cpu-1", "node-9", 7), lease_s=60)
        assert t is not None and t.claim_token
        if i < n:
            store.finish(key, tid, t.claim_token, TrialState.DONE,
                         {"status": "ok", "loss": 1.0 / (tid + 1)})
        else:
            message = f"trial {tid} broke"
            store.finish(key, tid, t.claim_token, TrialState.ERROR, {"status": "fail"},
                         ErrorInfo("RuntimeError", message,
                                   f"Traceback (most recent call last):\n  ...\n"
                                   f"RuntimeError: {message}\n"))


def trials_of(source: list[str]) -> Callable[[], list[Trial]]:
    """Reads the trials named by CLI ``source`` arguments straight from the store (the tests'
    oracle)."""
    from parzen.cli._source import open_file, open_mongo

    def read() -> list[Trial]:
        src = open_file(source[1]) if source[0] == "--file" else open_mongo(source[2], 5)
        try:
            key = src.trials.exp_key if src.trials is not None else source[0]
            return src.store.find(key)
        finally:
            src.close()

    return read
