"""Pruning benchmark: how many steps parzen's pruners save, and how they compare with
optuna 5.0's.

Four learning-curve problems (``_pruning_problems.py``), cost counted in steps (epochs), a
complete trial is R = 27 steps. For each of ``--seeds`` seeds:

- parzen TPE without pruning, for the full budget FULL = 45 complete trials (1215 steps);
- parzen TPE with each pruner (ASHA, Hyperband, median), for FULL steps;
- optuna 5.0 TPE with its SuccessiveHalving and Hyperband pruners, for FULL steps.

The runs are sequential and deterministic, so a run's first FULL / 3 steps are the run a
budget of FULL / 3 would have made: one run per seed gives the regret at every budget.

The regret of a run at a budget of b steps is the true final loss of the completed trial it
reports as best among those completed within b steps, minus the problem's best. Printed:

- median regret of each method at FULL / 3 (and parzen without pruning at FULL);
- *saving*: the fewest steps at which parzen with its best pruner reaches (median over
  seeds) the final median regret of parzen without pruning, as a fraction of FULL (target:
  <= 1/3 on every problem; "never": not within FULL); the same for optuna's best pruner;
- parzen's best pruner against optuna's best pruner at FULL / 3 (target: no worse on >= 3
  of 4 problems).

Run from the repo root (parzen from this tree, optuna from bench/.anchors-venv)::

    .venv/bin/python bench/pruning.py --seeds 15            # 7-25 min on 2 cores
    .venv/bin/python bench/pruning.py --seeds 15 --impute   # also parzen without learning
                                                             # from pruned trials
    .venv/bin/python bench/pruning.py --seeds 15 --oracle   # the same pruners with perfect
                                                             # early information
    .venv/bin/python bench/pruning.py --seeds 15 --eta 9    # every pruner's reduction factor

``--oracle`` runs every pruner of both libraries on the problems with perfect early
information (``_pruning_problems.with_oracle``: each report is the trial's final loss) and
prints their saving there, against the same target (parzen without pruning on the real
curves, at FULL). It separates the two reasons a pruner saves little: what a trial's first
steps say about its end (the problem), and how many steps the rule spends on the trials it
keeps (the pruner and the sampler). Written to ``pruning_oracle.json`` / ``.txt``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from _anchors import ensure_anchor_venv  # noqa: E402
from _pruning_problems import ORACLE, R, eta, problems  # noqa: E402

FULL = 45 * R
THIRD = FULL // 3
PARZEN_PRUNERS = ("asha", "hyperband", "median")
OPTUNA_PRUNERS = ("sha", "hyperband")


RUNS = Path("/tmp/parzen-pruning-runs")  # each job's seeds, so a stopped run can resume


def _job(lib: str, pruner: str, problem: str, budget: int, seeds: list[int]) -> list[Any]:
    # The reduction factor changes every pruner's runs, not the runs without pruning.
    factor = "" if pruner == "none" or eta() == 3 else f"-eta{eta():g}"
    cached = RUNS / f"{lib}-{pruner}{factor}-{problem}-{budget}-{'_'.join(map(str, seeds))}.jsonl"
    if cached.exists():
        return [json.loads(line) for line in cached.read_text().splitlines() if line.strip()]
    python = str(ensure_anchor_venv(quiet=True)) if lib == "optuna" else sys.executable
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    out = subprocess.run(["nice", python, str(BENCH / "_pruning_problems.py"), lib, pruner,
                          problem, str(budget), *map(str, seeds)],
                         capture_output=True, text=True, env=env, check=False)
    if out.returncode:
        raise RuntimeError(f"{lib} {pruner} {problem}: {out.stderr[-3000:]}")
    RUNS.mkdir(parents=True, exist_ok=True)
    cached.write_text(out.stdout)
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def regret_at(run: dict[str, Any], budget: int, best: float) -> float:
    """True regret of the reported-best trial completed within ``budget`` steps."""
    done = [(rep, true) for steps, rep, true in run["completed"] if steps <= budget]
    if not done:
        return float("inf")
    return min(done)[1] - best


def median_regret(runs: list[dict[str, Any]], budget: int, best: float) -> float:
    return float(statistics.median(regret_at(r, budget, best) for r in runs))


def steps_to_reach(runs: list[dict[str, Any]], target: float, best: float) -> int | None:
    """The fewest steps at which the median regret over ``runs`` is <= ``target``."""
    marks = sorted({s for r in runs for s, _, _ in r["completed"]})
    for b in marks:
        if median_regret(runs, b, best) <= target + 1e-12:
            return b
    return None


def _run(jobs: list[tuple[str, str, str, int]], seeds: list[int]
         ) -> dict[tuple[str, str, str], list[Any]]:
    """Every job's runs over ``seeds``, keyed by (library, pruner, problem)."""
    # One process per (method, problem, half of the seeds): 2 cores, 2 at a time.
    halves = [seeds[0::2], seeds[1::2]]
    with ThreadPoolExecutor(2) as pool:
        futures = {(job, i): pool.submit(_job, *job, half)
                   for job in jobs for i, half in enumerate(halves) if half}
        results: dict[tuple[str, str, str], list[Any]] = {}
        for (job, _), fut in futures.items():
            results.setdefault(job[:3], []).extend(fut.result())
    return results


def oracle(names: list[str], seeds: list[int], out: Path) -> None:
    """Every pruner's saving with perfect early information (``--oracle``)."""
    pruners = [("parzen", p) for p in PARZEN_PRUNERS] + [("optuna", p) for p in OPTUNA_PRUNERS]
    jobs = [("parzen", "none", name, FULL) for name in names]
    jobs += [(lib, p, name + ORACLE, FULL) for name in names for lib, p in pruners]
    started = time.time()
    results = _run(jobs, seeds)
    probs = problems()
    report: dict[str, Any] = {"full": FULL, "seeds": len(seeds), "problems": {}}
    lines = [f"pruning with perfect early information ({ORACLE}: every report is the trial's "
             f"final loss), {len(seeds)} seeds, FULL = {FULL} steps, reduction factor "
             f"{eta():g}",
             "saving = steps to reach the median regret of parzen without pruning on the "
             "real curves at FULL, / FULL ('never': not within FULL)",
             f"{'problem':<12} {'target':>8} " + " ".join(
                 f"{lib[0] + '-' + p:>12}" for lib, p in pruners)]
    for name in names:
        best = probs[name].best
        target = median_regret(results[("parzen", "none", name)], FULL, best)
        row: dict[str, Any] = {"target": target}
        cells = []
        for lib, p in pruners:
            runs = results[(lib, p, name + ORACLE)]
            reach = steps_to_reach(runs, target, best)
            row[f"{lib}_{p}"] = {"saving": None if reach is None else reach / FULL,
                                 "regret_third": median_regret(runs, THIRD, best),
                                 "regret_full": median_regret(runs, FULL, best)}
            cells.append("never" if reach is None else f"{reach / FULL:.3f}")
        report["problems"][name] = row
        lines.append(f"{name:<12} {target:>8.4f} " + " ".join(f"{c:>12}" for c in cells))
    lines.append(f"({round(time.time() - started)} s)")
    text = "\n".join(lines)
    print(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    out.with_suffix(".txt").write_text(text + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=15)
    ap.add_argument("--problems", default=",".join(problems()))
    ap.add_argument("--impute", action="store_true",
                    help="also run parzen + ASHA with pruned trials left out of the sampler")
    ap.add_argument("--oracle", action="store_true",
                    help="instead, every pruner with perfect early information")
    ap.add_argument("--eta", type=int, default=3,
                    help="every pruner's reduction factor (both libraries; default 3)")
    ap.add_argument("--out", default=None,
                    help="JSON file (default bench/results/pruning.json, or "
                         "pruning_oracle.json with --oracle, _eta<N> added for --eta other "
                         "than 3); a .txt is written beside it")
    args = ap.parse_args()
    if args.eta < 2:
        ap.error(f"--eta {args.eta}: a reduction factor must be 2 or more (at 1 every "
                 "trial goes on)")
    os.environ["PARZEN_BENCH_ETA"] = str(args.eta)  # read by every run's process
    seeds = list(range(args.seeds))
    names = args.problems.split(",")
    suffix = "" if args.eta == 3 else f"_eta{args.eta}"
    if args.oracle:
        oracle(names, seeds,
               Path(args.out or BENCH / "results" / f"pruning_oracle{suffix}.json"))
        return
    args.out = args.out or str(BENCH / "results" / f"pruning{suffix}.json")
    jobs: list[tuple[str, str, str, int]] = []
    for name in names:
        jobs.append(("parzen", "none", name, FULL))
        jobs += [("parzen", p, name, FULL) for p in PARZEN_PRUNERS]
        jobs += [("optuna", p, name, FULL) for p in OPTUNA_PRUNERS]
        if args.impute:
            jobs.append(("parzen-noimpute", "asha", name, FULL))
    started = time.time()
    results = _run(jobs, seeds)
    probs = problems()
    report: dict[str, Any] = {"full": FULL, "third": THIRD, "R": R, "seeds": args.seeds,
                              "seconds": round(time.time() - started), "problems": {}}
    lines = [f"pruning benchmark: {args.seeds} seeds, R = {R} steps per complete trial, "
             f"FULL = {FULL} steps, FULL/3 = {THIRD} steps, reduction factor {args.eta}", ""]
    header = (f"{'problem':<12} {'none@FULL':>10} {'none@1/3':>9} "
              + " ".join(f"{'p-' + p:>11}" for p in PARZEN_PRUNERS)
              + (f" {'p-asha-noimp':>12}" if args.impute else "")
              + " ".join(f"{'o-' + p:>12}" for p in OPTUNA_PRUNERS)
              + f" {'saving':>8} {'o-saving':>8} {'vs optuna':>10}")
    lines += ["median regret (lower is better); saving = steps for parzen's best pruner to "
              "reach none@FULL, / FULL", header]
    met_saving, met_optuna = 0, 0
    for name in names:
        best = probs[name].best
        none = results[("parzen", "none", name)]
        target = median_regret(none, FULL, best)
        row: dict[str, Any] = {"none_full": target,
                               "none_third": median_regret(none, THIRD, best)}
        for p in PARZEN_PRUNERS:
            row[f"parzen_{p}"] = median_regret(results[("parzen", p, name)], THIRD, best)
        for p in OPTUNA_PRUNERS:
            row[f"optuna_{p}"] = median_regret(results[("optuna", p, name)], THIRD, best)
        if args.impute:
            row["parzen_asha_noimpute"] = median_regret(
                results[("parzen-noimpute", "asha", name)], THIRD, best)
        best_p = min(PARZEN_PRUNERS, key=lambda p: row[f"parzen_{p}"])
        best_o = min(OPTUNA_PRUNERS, key=lambda p: row[f"optuna_{p}"])
        reach = steps_to_reach(results[("parzen", best_p, name)], target, best)
        o_reach = steps_to_reach(results[("optuna", best_o, name)], target, best)
        row["best_parzen_pruner"], row["best_optuna_pruner"] = best_p, best_o
        row["saving"] = None if reach is None else reach / FULL
        row["optuna_saving"] = None if o_reach is None else o_reach / FULL
        for lib, pruners in (("parzen", PARZEN_PRUNERS), ("optuna", OPTUNA_PRUNERS)):
            for p in pruners:
                row[f"{lib}_{p}_at_full"] = median_regret(results[(lib, p, name)], FULL, best)
        row["beats_optuna"] = bool(row[f"parzen_{best_p}"] <= row[f"optuna_{best_o}"])
        row["trials"] = {f"{lib}_{p}": statistics.median(r["trials"] for r in runs)
                         for (lib, p, n), runs in results.items() if n == name}
        row["pruned"] = {f"{lib}_{p}": statistics.median(r["pruned"] for r in runs)
                         for (lib, p, n), runs in results.items() if n == name}
        met_saving += row["saving"] is not None and row["saving"] <= 1 / 3
        met_optuna += row["beats_optuna"]
        report["problems"][name] = row
        saving = "never" if row["saving"] is None else f"{row['saving']:.3f}"
        o_saving = "never" if row["optuna_saving"] is None else f"{row['optuna_saving']:.3f}"
        lines.append(
            f"{name:<12} {row['none_full']:>10.4f} {row['none_third']:>9.4f} "
            + " ".join(f"{row['parzen_' + p]:>11.4f}" for p in PARZEN_PRUNERS)
            + (f" {row['parzen_asha_noimpute']:>12.4f}" if args.impute else "")
            + " ".join(f"{row['optuna_' + p]:>12.4f}" for p in OPTUNA_PRUNERS)
            + f" {saving:>8} {o_saving:>8} {('yes' if row['beats_optuna'] else 'no'):>10}")
    lines += ["", "median regret at FULL (the pruners given the whole budget too)",
              f"{'problem':<12} {'none':>8}  " + " ".join(
                  f"{lib[0] + '-' + p:>11}" for lib, ps in (("parzen", PARZEN_PRUNERS),
                                                     ("optuna", OPTUNA_PRUNERS)) for p in ps)]
    for name in names:
        row = report["problems"][name]
        lines.append(f"{name:<12} {row['none_full']:>8.4f} " + " ".join(
            f"{row[f'{lib}_{p}_at_full']:>11.4f}" for lib, ps in
            (("parzen", PARZEN_PRUNERS), ("optuna", OPTUNA_PRUNERS)) for p in ps))
    # The comparison with optuna at every budget, not only at FULL / 3: each library's best
    # pruner at that budget, per problem.
    budgets = [(f"{k}/6", FULL * k // 6) for k in range(2, 7)]
    lines += ["", "parzen's best pruner vs optuna's best pruner at equal budgets "
              "(median regret; '<=' where parzen's is no worse)",
              f"{'problem':<12} " + " ".join(f"{label + ' FULL':>21}" for label, _ in budgets)]
    wins = {label: 0 for label, _ in budgets}
    for name in names:
        best, cells = probs[name].best, []
        for label, b in budgets:
            p_best = min(median_regret(results[("parzen", p, name)], b, best)
                         for p in PARZEN_PRUNERS)
            o_best = min(median_regret(results[("optuna", p, name)], b, best)
                         for p in OPTUNA_PRUNERS)
            wins[label] += p_best <= o_best
            report["problems"][name].setdefault("by_budget", {})[label] = [p_best, o_best]
            cells.append(f"{p_best:.4f} {'<=' if p_best <= o_best else '> '} {o_best:.4f}")
        lines.append(f"{name:<12} " + " ".join(f"{c:>21}" for c in cells))
    lines.append(f"{'no worse on':<12} " + " ".join(
        f"{f'{wins[label]} of {len(names)}':>21}" for label, _ in budgets))
    lines += ["", f"saving <= 1/3 on {met_saving} of {len(names)} problems (target: all); "
              f"parzen + best pruner <= optuna + best pruner at FULL/3 on {met_optuna} of "
              f"{len(names)} (target: >= 3 of 4)", f"({report['seconds']} s)"]
    text = "\n".join(lines)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    Path(args.out).with_suffix(".txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
