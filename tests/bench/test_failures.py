"""``bench/failures.py``: the crash regions raise where they are documented to, a crash
reaches parzen's records as an ERROR trial, and a short run writes the table and JSON."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.support.bench import bench_module

crash_problems, crash_runs = bench_module("_crash_problems"), bench_module("_crash_runs")
failures = bench_module("failures")
CRASH_PROBLEMS, Crash = crash_problems.CRASH_PROBLEMS, crash_problems.Crash

# Two points per problem: one in the crash region (next to the best feasible point), and the
# exception it must raise.
INSIDE = {
    "branin_cliff": ({"x1": 9.51, "x2": 2.475}, "Crash"),
    "hartmann6_cliff": ({"x0": 0.2, "x1": 0.129, "x2": 0.4769, "x3": 0.2753, "x4": 0.3117,
                         "x5": 0.6573}, "Crash"),
    "model_oom": ({"lr": 0.01, "width": 800, "depth": 8, "activation": "gelu"}, "OutOfMemory"),
}


@pytest.mark.parametrize("name", list(CRASH_PROBLEMS))
def test_the_crash_region_raises_and_the_best_feasible_point_runs(name: str) -> None:
    prob = CRASH_PROBLEMS[name]
    point, kind = INSIDE[name]
    with pytest.raises(Crash) as raised:
        prob.objective(point)
    assert type(raised.value).__name__ == kind
    assert prob.objective(prob.feasible_argmin) == pytest.approx(prob.feasible_optimum,
                                                                 abs=1e-9)


def test_the_model_diverges_above_the_depths_learning_rate() -> None:
    prob = CRASH_PROBLEMS["model_oom"]
    edge = crash_problems.model_lr_max(8)
    ok = {"lr": edge, "width": 768, "depth": 8, "activation": "relu"}
    assert prob.crash(ok) is None
    assert type(prob.crash(ok | {"lr": edge * 1.001})).__name__ == "Diverged"
    assert prob.crash(ok | {"depth": 9, "width": 704}) is not None  # the limit falls with depth


def test_a_run_whose_records_disagree_with_the_objective_is_refused() -> None:
    prob = CRASH_PROBLEMS["branin_cliff"]
    rows = [({"x1": 9.6, "x2": 1.0}, None, "Crash"), ({"x1": 1.0, "x2": 1.0}, 20.0, None)]
    out = crash_runs._record(prob, rows, Counter({"Crash": 1}), 0.0, None)
    assert (out["n"], out["failed"], out["losses"]) == (2, 1, [None, 20.0])
    with pytest.raises(crash_runs.BenchCheckFailed, match="raised {'Crash': 2}"):
        crash_runs._record(prob, rows, Counter({"Crash": 2}), 0.0, None)


@pytest.mark.timeout(120)
def test_a_short_parzen_run_records_the_crashes_as_errors(tmp_path: Path) -> None:
    out = tmp_path / "failures.json"
    code = failures.main(["--problems", "model_oom", "--seeds", "1", "--evals", "12",
                          "--k", "1,4", "--algos", "parzen", "--workers", "1", "--nice", "0",
                          "--json", str(out)])
    assert code == 0
    payload = json.loads(out.read_text())
    runs = payload["runs"]
    assert [(r["algo"], r["k"], r["n"]) for r in runs] == [("parzen", 1, 12), ("parzen", 4, 12)]
    assert runs[1]["max_pending"] == 4  # K = 4: four trials outstanding
    for r in runs:
        # A third of the prior crashes: 12 evaluations hit it, and every crash the objective
        # raised is an ERROR trial of its type (the run checks the two counts agree).
        assert r["failed"] > 0 and sum(r["errors"].values()) == r["failed"]
        assert set(r["errors"]) <= {"OutOfMemory", "Diverged"}
        assert r["crash_fraction"] == r["failed"] / 12 and r["regret"] >= 0.0
    block = payload["summary"]["model_oom"]["K=4"]["algos"]["parzen"]
    assert set(block["crash_fraction"]) == {"median", "q25", "q75", "worst", "worst_seed"}
    assert block["per_seed"]["seed"] == [0]
    table = out.with_suffix(".txt").read_text()
    assert "model_oom" in table and " 4 parzen" in table
