"""Crash regions next to the optimum: how much of the budget does each library lose?

Three problems whose objective *raises* in part of the space (``_crash_problems.py``):
Branin with a cliff at x1 > 9.5, Hartmann-6 with a half-space cliff 0.015 from its optimum,
and a model-like mixed space (learning rate, width, depth, activation) where a third of the
prior runs out of memory or diverges, the unconstrained optimum included. Each library runs
K = 1 (sequential) and K = 4 (four trials pending; when one finishes the next is asked; the
completion order is simulated from the seed, a crash taking a quarter of a normal trial).

For every problem x K x library it prints, over the seeds, the median crash fraction (failed
/ total trials), the worst seed's crash fraction, and the median regret of the best ok trial
at the last evaluation (regret = best ok loss - best feasible value). Libraries: parzen
(``tpe.suggest``, through its own loop: a crash is an ERROR trial exactly as in ``fmin``),
optuna 5.0 (``TPESampler(seed=s)``; K = 4 adds ``constant_liar=True``; FAIL told to the
study), random search (parzen's ``rand.suggest``, same loop as parzen) and, on request,
hyperopt 0.3.0 (K = 1 only). ``_crash_runs.py`` says how each is driven.

    .venv/bin/python bench/failures.py                       # 3 problems x K=1,4 x 15 seeds
    .venv/bin/python bench/failures.py --reuse-anchors       # parzen again, others cached
    PYTHONPATH=<checkout>/src .venv/bin/python bench/failures.py --algos parzen \\
        --json /tmp/after.json                               # another checkout's parzen
    .venv/bin/python bench/failures.py --check-optima        # recompute the feasible optima
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _anchors import anchor_versions, ensure_anchor_venv  # noqa: E402
from _crash_problems import CRASH_PROBLEMS, get_crash_problem  # noqa: E402
from _crash_runs import ALGOS, CRASH_DURATION, PARZEN_SIDE, BenchCheckFailed  # noqa: E402
from _meta import base_meta  # noqa: E402
from _pool import current_python, run_jobs  # noqa: E402
from quality import fmt, summarise  # noqa: E402

BENCH = Path(__file__).resolve().parent
RESULTS_DIR = BENCH / "results"
WORKER = BENCH / "_crash_worker.py"
# Not committed (results/scratch/ is ignored): rebuilt by any run without --reuse-anchors.
CACHE_PATH = RESULTS_DIR / "scratch" / "failures_anchor_cache.json"
# Cached with --reuse-anchors: every library but parzen's TPE, the one being changed.
CACHED = ("optuna", "random", "hyperopt")
# The criteria.
LOST_RUN_SHARE = 0.5  # no parzen seed may crash more than this share of its trials ...
RARE_CRASH = 0.10  # ... where random search's median crash fraction is under this


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--problems", default=",".join(CRASH_PROBLEMS),
                    help="comma list (default: all)")
    ap.add_argument("--seeds", type=int, default=15, help="number of seeds (default 15)")
    ap.add_argument("--first-seed", type=int, default=0, help="first seed (default 0)")
    ap.add_argument("--evals", type=int, default=100, help="evaluations per run (default 100)")
    ap.add_argument("--k", default="1,4", help="comma list of pending trials (default 1,4)")
    ap.add_argument("--algos", default="parzen,optuna,random",
                    help=f"comma list of {', '.join(ALGOS)} (default parzen,optuna,random)")
    ap.add_argument("--crash-duration", type=float, default=CRASH_DURATION,
                    help="a crashed trial's duration as a share of a normal one, for the "
                         "completion order at K > 1 (default %(default)s)")
    ap.add_argument("--reuse-anchors", action="store_true",
                    help=f"take {', '.join(CACHED)} runs from {CACHE_PATH.relative_to(BENCH)} "
                         "when present")
    ap.add_argument("--workers", type=int, default=2, help="worker processes (at most 2)")
    ap.add_argument("--nice", type=int, default=10, help="niceness increment (default 10)")
    ap.add_argument("--json", type=Path, default=RESULTS_DIR / "failures.json",
                    help="JSON output; the table goes next to it as .txt")
    ap.add_argument("--check-optima", action="store_true",
                    help="recompute each problem's best feasible value and compare")
    args = ap.parse_args(argv)
    args.problems = [get_crash_problem(p).name for p in args.problems.split(",") if p]
    args.algos = [a for a in args.algos.split(",") if a]
    for a in args.algos:
        if a not in ALGOS:
            ap.error(f"--algos: unknown algo {a!r}; choose from {', '.join(ALGOS)}")
    try:
        args.k = sorted({int(k) for k in args.k.split(",") if k})
    except ValueError:
        ap.error(f"--k: {args.k!r} is not a comma list of integers, e.g. 1,4")
    if not args.k or min(args.k) < 1 or args.seeds < 1 or args.evals < 1:
        ap.error("--k, --seeds and --evals must be positive")
    # The machine has 2 cores shared with other work: never fan out wider.
    args.workers = max(1, min(args.workers, 2))
    return args


def cache_key(job: Mapping[str, Any]) -> str:
    fp = get_crash_problem(job["problem"]).fingerprint()
    return (f"{job['algo']}|{job['problem']}@{fp}|seed={job['seed']}|evals={job['evals']}"
            f"|k={job['k']}|crash_duration={job['crash_duration']:g}")


def load_cache() -> dict[str, Any]:
    return json.loads(CACHE_PATH.read_text()) if CACHE_PATH.exists() else {}


def save_cache(cache: Mapping[str, Any]) -> None:
    CACHE_PATH.parent.mkdir(parents=True, exist_ok=True)
    tmp = CACHE_PATH.with_suffix(".tmp")
    tmp.write_text(json.dumps(cache, separators=(",", ":")))
    tmp.replace(CACHE_PATH)


def regret(run: Mapping[str, Any], feasible_optimum: float) -> float:
    """Best ok loss minus the best feasible value; inf when no trial succeeded."""
    ok = [x for x in run["losses"] if x is not None]
    if not ok:
        return float("inf")
    r = min(ok) - feasible_optimum
    if r < -1e-9:
        raise BenchCheckFailed(f"a loss {min(ok)!r} below the stated best feasible value "
                               f"{feasible_optimum!r}: the constant is wrong")
    return max(r, 0.0)  # the constants are rounded to ~1e-16


def crash_fraction(run: Mapping[str, Any]) -> float:
    return run["failed"] / run["n"] if run["n"] else 1.0


def make_jobs(args: argparse.Namespace) -> list[dict[str, Any]]:
    jobs = []
    for algo in args.algos:
        for prob in args.problems:
            for k in args.k:
                if algo == "hyperopt" and k != 1:
                    continue  # hyperopt's fmin has no pending-trials mode
                for seed in range(args.first_seed, args.first_seed + args.seeds):
                    jobs.append({"algo": algo, "problem": prob, "seed": seed,
                                 "evals": args.evals, "k": k,
                                 "crash_duration": args.crash_duration})
    return jobs


def run_all(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every run's record (the job's fields, the result's, ``cached``)."""
    cache = load_cache()
    runs: list[dict[str, Any]] = []
    todo: dict[str, list[dict[str, Any]]] = {"anchor": [], "parzen": []}
    for job in make_jobs(args):
        key = cache_key(job)
        if job["algo"] in CACHED and args.reuse_anchors and key in cache:
            runs.append({**job, **cache[key], "cached": True})
        else:
            todo["parzen" if job["algo"] in PARZEN_SIDE else "anchor"].append(job)
    total, done = len(todo["anchor"]) + len(todo["parzen"]), [0]
    t0 = time.perf_counter()

    def on_result(job: Mapping[str, Any], res: dict[str, Any]) -> None:
        done[0] += 1
        prob = get_crash_problem(job["problem"])
        print(f"[{done[0]}/{total}] {job['algo']:8s} {job['problem']:15s} K={job['k']} "
              f"seed={job['seed']:<3d} crashed {res['failed']:3d}/{res['n']} "
              f"regret={fmt(regret(res, prob.feasible_optimum))} ({res['seconds']:.1f}s)",
              file=sys.stderr, flush=True)
        runs.append({**job, **res, "cached": False})
        if job["algo"] in CACHED:
            cache[cache_key(job)] = res

    # One side after the other, so that at most `workers` processes share the 2 cores.
    if todo["anchor"]:
        try:
            run_jobs(ensure_anchor_venv(), todo["anchor"], args.workers, on_result, WORKER)
        finally:
            save_cache(cache)
    if todo["parzen"]:
        try:
            run_jobs(current_python(), todo["parzen"], args.workers, on_result, WORKER)
        finally:
            if any(j["algo"] in CACHED for j in todo["parzen"]):
                save_cache(cache)
    args.run_seconds = time.perf_counter() - t0
    print(f"ran {total} jobs in {args.run_seconds:.0f}s", file=sys.stderr)
    return runs


def build_summary(args: argparse.Namespace, runs: Sequence[Mapping[str, Any]]
                  ) -> dict[str, Any]:
    """{problem: {"K=k": {"algos": {algo: stats}, "verdicts": {...}}}}."""
    summary: dict[str, Any] = {}
    for prob_name in args.problems:
        prob = get_crash_problem(prob_name)
        entry: dict[str, Any] = {"feasible_optimum": prob.feasible_optimum,
                                 "crash_volume": prob.crash_volume,
                                 "description": prob.description}
        for k in args.k:
            algos: dict[str, Any] = {}
            for algo in args.algos:
                mine = sorted((r for r in runs if r["algo"] == algo
                               and r["problem"] == prob_name and r["k"] == k),
                              key=lambda r: r["seed"])
                if not mine:
                    continue
                crash = [crash_fraction(r) for r in mine]
                reg = [regret(r, prob.feasible_optimum) for r in mine]
                worst = int(np.argmax(crash))
                algos[algo] = {
                    "n_runs": len(mine),
                    "crash_fraction": summarise(crash) | {"worst": crash[worst],
                                                          "worst_seed": mine[worst]["seed"]},
                    "regret": summarise(reg),
                    "runs_without_ok_trial": sum(1 for r in reg if not np.isfinite(r)),
                    "failed_repeats_median": float(np.median(
                        [r["failed_repeats"] for r in mine])),
                    "stopped_early": sum(1 for r in mine if r.get("stopped")),
                    "runs_with_warnings": sum(1 for r in mine if r.get("warnings")),
                    "mean_seconds": float(np.mean([r["seconds"] for r in mine])),
                    "per_seed": {"seed": [r["seed"] for r in mine], "crash_fraction": crash,
                                 "regret": reg},
                }
            entry[f"K={k}"] = {"algos": algos, "verdicts": verdicts(algos)}
        summary[prob_name] = entry
    return summary


def verdicts(algos: Mapping[str, Any]) -> dict[str, bool]:
    """The issue's three criteria, for parzen, where the needed libraries ran."""
    out: dict[str, bool] = {}
    if "parzen" not in algos:
        return out
    p = algos["parzen"]
    if "random" in algos:
        r = algos["random"]["crash_fraction"]["median"]
        out["crash median <= random's"] = p["crash_fraction"]["median"] <= r
        if r < RARE_CRASH:
            out[f"no seed crashes > {LOST_RUN_SHARE:.0%}"] = \
                p["crash_fraction"]["worst"] <= LOST_RUN_SHARE
    if "optuna" in algos:
        out["regret median <= optuna's"] = \
            p["regret"]["median"] <= algos["optuna"]["regret"]["median"]
    return out


def render_table(args: argparse.Namespace, summary: Mapping[str, Any]) -> str:
    lines = [
        f"Crash problems: {args.seeds} seeds from {args.first_seed}, {args.evals} evaluations; "
        f"K pending trials (K > 1: simulated completion order, a crash takes "
        f"{args.crash_duration:g} of a trial's time)",
        "crash = failed / total trials per run (median, and the worst seed); regret = best ok "
        "loss - best feasible value (median [q25, q75]); repeats = failed points within 0.01 "
        "of an earlier failed point (median)",
    ]
    for prob_name, entry in summary.items():
        lines += ["", f"{prob_name}  (best feasible {entry['feasible_optimum']:.6g}; "
                      f"{entry['description']})"]
        lines.append(f"  {'K':>2s} {'algo':9s}{'crash med':>10s}{'worst (seed)':>14s}"
                     f"{'regret median [q25, q75]':>32s}{'repeats':>9s}{'no ok':>7s}")
        for k in args.k:
            block = entry[f"K={k}"]
            for algo, a in block["algos"].items():
                c, r = a["crash_fraction"], a["regret"]
                worst = f"{c['worst']:.0%} ({c['worst_seed']})"
                reg = f"{fmt(r['median'])} [{fmt(r['q25'])}, {fmt(r['q75'])}]"
                lines.append(f"  {k:>2d} {algo:9s}{c['median']:>10.0%}{worst:>14s}{reg:>32s}"
                             f"{a['failed_repeats_median']:>9g}"
                             f"{a['runs_without_ok_trial']:>7d}")
            if block["verdicts"]:
                lines.append("     parzen: " + "; ".join(
                    f"{name}? {'yes' if ok else 'NO'}" for name, ok in block["verdicts"].items()))
    held = [ok for e in summary.values() for k in args.k for ok in e[f"K={k}"]["verdicts"].values()]
    if held:
        lines += ["", f"criteria held: {sum(held)} of {len(held)}"]
    return "\n".join(lines)


def parzen_source() -> str:
    """Where the imported parzen comes from, with its checkout's git revision when it has
    one ("+dirty" when its src/ has uncommitted changes), for the table's first line."""
    import parzen

    src = Path(parzen.__file__).resolve().parent.parent
    try:
        def git(*cmd: str) -> str:
            return subprocess.run(["git", "-C", str(src), *cmd], capture_output=True,
                                  text=True, check=True, timeout=10).stdout.strip()

        rev = git("rev-parse", "--short", "HEAD")
        dirty = "+dirty" if git("status", "--porcelain", "--", ".") else ""
        where = f"git {rev}{dirty}"
    except (OSError, subprocess.SubprocessError):
        where = "not a git checkout"
    return f"parzen {parzen.__version__} from {src} ({where})"


def check_optima(names: Sequence[str]) -> int:
    """Recompute each feasible optimum; 1 when one differs from the stated constant."""
    from _crash_optima import SOLVERS  # scipy, needed by this option only

    bad = 0
    for name in names:
        prob = get_crash_problem(name)
        value, argmin = SOLVERS[name]()
        gap = value - prob.feasible_optimum
        ok = abs(gap) <= 1e-9 and prob.crash(argmin) is None
        bad += not ok
        print(f"{name}: stated {prob.feasible_optimum!r}, computed {value!r} at "
              f"{ {k: (round(v, 6) if isinstance(v, float) else v) for k, v in argmin.items()} }"
              f" ({'ok' if ok else f'DIFFERS by {gap:.3g}'})")
    return 1 if bad else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.nice > 0:
        os.nice(args.nice)  # the workers inherit it
    # Two single-threaded workers fill the 2 cores; numpy's BLAS threads on top of them only
    # contend (the workers inherit these, read when they import numpy).
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    if args.check_optima:
        return check_optima(args.problems)
    runs = run_all(args)
    summary = build_summary(args, runs)
    head = []
    if any(a in PARZEN_SIDE for a in args.algos):
        head.append(parzen_source())
    if any(a not in PARZEN_SIDE for a in args.algos):
        head.append("anchors: hyperopt 0.3.0, optuna 5.0.0; random = parzen's rand.suggest")
    table = "\n".join(head + [render_table(args, summary)])
    print(table)
    meta = base_meta() | {
        "seeds": list(range(args.first_seed, args.first_seed + args.seeds)),
        "evals": args.evals, "k": args.k, "crash_duration": args.crash_duration,
        "algos": args.algos, "run_seconds": args.run_seconds,
        "reuse_anchors": args.reuse_anchors,
    }
    if any(a in PARZEN_SIDE for a in args.algos):
        meta["parzen"] = head[0]
    if any(a not in PARZEN_SIDE for a in args.algos):
        meta["anchor_versions"] = anchor_versions()
    keep = ("algo", "problem", "k", "seed", "n", "failed", "errors", "failed_repeats",
            "max_pending", "seconds", "stopped", "warnings", "cached")
    payload = {
        "meta": meta,
        "summary": summary,
        "runs": [{f: r[f] for f in keep if f in r}
                 | {"crash_fraction": crash_fraction(r),
                    "regret": regret(r, get_crash_problem(r["problem"]).feasible_optimum)}
                 for r in sorted(runs, key=lambda r: (r["problem"], r["k"], r["algo"],
                                                      r["seed"]))],
        "table": table,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    # inf (a run without an ok trial) is written as JSON's Infinity, which Python reads back.
    args.json.write_text(json.dumps(payload, indent=1))
    args.json.with_suffix(".txt").write_text(table + "\n")
    print(f"\nwrote {args.json} and {args.json.with_suffix('.txt')} "
          f"({args.run_seconds:.0f}s of runs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
