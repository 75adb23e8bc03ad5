"""Optimisation-quality benchmark: parzen TPE vs hyperopt 0.3.0 and optuna 5.0.0.

For each problem and seed, every algorithm runs ``--evals`` evaluations and
we record regret (best loss so far minus the known optimum) at 25, 50 and
100 evaluations.  ``--batch K`` suggests K points before any of them is
evaluated (fmin ``max_queue_len=K`` / optuna ask K then tell K) and checks
that this really happened.

    .venv/bin/python bench/quality.py                     # all, 15 seeds
    .venv/bin/python bench/quality.py --algos hyperopt,optuna
    .venv/bin/python bench/quality.py --reuse-anchors     # parzen only reruns
    .venv/bin/python bench/quality.py --batch 8 --reuse-anchors
    .venv/bin/python bench/quality.py --noise             # noisy objectives, see NOISE_SD
    .venv/bin/python bench/quality.py --noise branin:2,rf_mixed:0.01 --problems branin,rf_mixed

With ``--noise`` each evaluation returns the problem's value plus Gaussian noise, drawn in
evaluation order from a generator per seed (the same for every algorithm). A run is scored
as a user would see it: the true regret of the trial with the lowest noisy loss so far.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from _anchors import anchor_versions, ensure_anchor_venv  # noqa: E402
from _meta import base_meta, git_revision  # noqa: E402
from _pool import current_python, run_jobs  # noqa: E402
from problems import PROBLEMS, get_problem  # noqa: E402

ANCHORS = ("hyperopt", "optuna")
RESULTS_DIR = BENCH_DIR / "results"
CACHE_PATH = RESULTS_DIR / "anchor_cache.json"
BASE_CHECKPOINTS = (25, 50, 100)
# Noise standard deviations for --noise: about the spread between the good trials of a run
# (the regret the optimisers reach between 50 and 100 evaluations), where noise decides which
# of them looks best, as cross-validation noise does when tuning a model. rf_mixed: half a
# point of error rate, a typical CV spread.
NOISE_SD = {"branin": 1.0, "hartmann6": 0.05, "rosenbrock5": 5.0, "ackley5": 0.2,
            "levy5": 0.2, "rf_mixed": 0.005}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--problems", default=",".join(PROBLEMS), help="comma list (default: all)")
    ap.add_argument("--seeds", type=int, default=15, help="number of seeds, 0..N-1 (default 15)")
    ap.add_argument("--first-seed", type=int, default=0,
                    help="first seed (default 0); e.g. --first-seed 15 --seeds 200 --algos parzen "
                         "for held-out seeds when tuning")
    ap.add_argument("--evals", type=int, default=100, help="evaluations per run (default 100)")
    ap.add_argument("--algos", default="parzen,hyperopt,optuna", help="comma list")
    ap.add_argument("--batch", type=int, default=1, help="suggest K points before evaluating")
    ap.add_argument("--workers", type=int, default=2, help="parallel worker processes (max 2)")
    ap.add_argument(
        "--parzen-settings",
        type=json.loads,
        default=None,
        help='JSON of tpe.suggest settings for parzen when tuning, e.g. \'{"parallel_polish": 0}\'',
    )
    ap.add_argument(
        "--reuse-anchors",
        action="store_true",
        help="take hyperopt/optuna runs from results/anchor_cache.json when present",
    )
    ap.add_argument(
        "--noise", nargs="?", const="", default=None, metavar="PROBLEM:SD,...",
        help="add Gaussian noise to every evaluation: the sd per problem from NOISE_SD, or as "
             "given (e.g. branin:2,rf_mixed:0.01)",
    )
    ap.add_argument("--out", type=Path, default=None, help="JSON output path")
    args = ap.parse_args(argv)
    args.problems = [get_problem(p).name for p in args.problems.split(",") if p]
    args.noise_sd = {}
    if args.noise is not None:
        args.noise_sd = {p: NOISE_SD[p] for p in args.problems if p in NOISE_SD}
        for item in filter(None, args.noise.split(",")):
            name, _, sd = item.partition(":")
            try:
                args.noise_sd[get_problem(name).name] = float(sd)
            except ValueError:
                ap.error(f"--noise: {item!r} is not PROBLEM:SD, e.g. branin:1.5")
        missing = [p for p in args.problems if args.noise_sd.get(p, 0.0) <= 0.0]
        if missing:
            ap.error(f"--noise: no positive sd for {', '.join(missing)}; give PROBLEM:SD")
    args.algos = [a for a in args.algos.split(",") if a]
    for a in args.algos:
        if a not in ("parzen", *ANCHORS):
            ap.error(f"unknown algo {a!r}")
    if args.batch < 1 or args.evals < 1 or args.seeds < 1:
        ap.error("--batch, --evals and --seeds must be positive")
    if args.first_seed < 0:
        ap.error("--first-seed must be >= 0")
    # The machine has 2 cores shared with other work: never fan out wider.
    args.workers = max(1, min(args.workers, 2))
    if args.out is None:
        suffix = ("" if args.batch == 1 else f"_batch{args.batch}") + (
            "_noisy" if args.noise_sd else "")
        args.out = RESULTS_DIR / f"quality{suffix}.json"
    return args


def checkpoints(evals: int) -> list[int]:
    return sorted({c for c in BASE_CHECKPOINTS if c <= evals} | {evals})


def cache_key(algo: str, problem: str, seed: int, evals: int, batch: int,
              noise_sd: float = 0.0) -> str:
    fp = get_problem(problem).fingerprint()
    noise = f"|noise={noise_sd:g}" if noise_sd else ""
    return f"{algo}|{problem}@{fp}|seed={seed}|evals={evals}|batch={batch}{noise}"


def load_cache() -> dict[str, Any]:
    if CACHE_PATH.exists():
        return json.loads(CACHE_PATH.read_text())
    return {}


def save_cache(cache: Mapping[str, Any]) -> None:
    # Drop runs of problems whose definition changed since (stale fingerprint).
    live = {f"|{p.name}@{p.fingerprint()}|" for p in PROBLEMS.values()}
    kept = {k: v for k, v in cache.items() if any(tag in k for tag in live)}
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    tmp = CACHE_PATH.with_suffix(".tmp")
    tmp.write_text(json.dumps(kept, separators=(",", ":")))
    tmp.replace(CACHE_PATH)


def regrets(run: Mapping[str, Any], optimum: float, cps: Sequence[int]) -> dict[str, float]:
    """Regret at each checkpoint: the true loss of the trial with the lowest loss seen so far
    (with noise, ``true_losses`` differ from the ``losses`` the optimiser saw)."""
    seen = np.asarray(run["losses"], dtype=float)
    true = np.asarray(run.get("true_losses", seen), dtype=float)
    out = {}
    for c in cps:
        # Clip float noise: the optimum constants are rounded to ~1e-15.
        out[str(c)] = max(float(true[int(np.argmin(seen[:c]))] - optimum), 0.0)
    return out


def summarise(values: Sequence[float]) -> dict[str, float]:
    q25, med, q75 = np.percentile(np.asarray(values, dtype=float), [25, 50, 75])
    return {"median": float(med), "q25": float(q25), "q75": float(q75)}


def prob_better(a: Sequence[float], b: Sequence[float]) -> float:
    """P(a < b) over all cross pairs, ties counted half (Mann-Whitney AUC)."""
    x = np.asarray(a, dtype=float)[:, None]
    y = np.asarray(b, dtype=float)[None, :]
    return float(np.mean((x < y) + 0.5 * (x == y)))


def fmt(v: float) -> str:
    if v == 0:
        return "0"
    return f"{v:.3g}" if 1e-3 <= abs(v) < 1e4 else f"{v:.2e}"


def run_all(args: argparse.Namespace) -> dict[str, list[dict[str, Any]]]:
    """Return {algo: [run records]} for every (problem, seed)."""
    runs: dict[str, list[dict[str, Any]]] = {a: [] for a in args.algos}
    cache = load_cache()
    todo: dict[str, list[dict[str, Any]]] = {"anchor": [], "parzen": []}
    for algo in args.algos:
        for prob in args.problems:
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                job = {
                    "kind": "quality",
                    "algo": algo,
                    "problem": prob,
                    "seed": seed,
                    "evals": args.evals,
                    "batch": args.batch,
                }
                if algo == "parzen" and args.parzen_settings:
                    job["settings"] = args.parzen_settings
                if prob in args.noise_sd:
                    job["noise_sd"] = args.noise_sd[prob]
                key = cache_key(algo, prob, seed, args.evals, args.batch,
                                args.noise_sd.get(prob, 0.0))
                if algo in ANCHORS and args.reuse_anchors and key in cache:
                    runs[algo].append({**job, **cache[key], "cached": True})
                else:
                    todo["parzen" if algo == "parzen" else "anchor"].append(job)

    total = len(todo["anchor"]) + len(todo["parzen"])
    done = [0]
    t_start = time.perf_counter()

    def on_result(job: Mapping[str, Any], res: dict[str, Any]) -> None:
        done[0] += 1
        prob = get_problem(job["problem"])
        best = regrets(res, prob.optimum, [args.evals])[str(args.evals)]
        print(
            f"[{done[0]}/{total}] {job['algo']:8s} {job['problem']:11s} seed={job['seed']:<3d}"
            f" regret@{args.evals}={fmt(best)} ({res['seconds']:.1f}s)",
            file=sys.stderr,
            flush=True,
        )
        runs[job["algo"]].append({**job, **res, "cached": False})
        if job["algo"] in ANCHORS:
            key = cache_key(job["algo"], job["problem"], job["seed"], args.evals, args.batch,
                            job.get("noise_sd", 0.0))
            # Points are not needed again (near-dup is already computed): keep the cache small.
            cache[key] = {k: v for k, v in res.items() if k != "points"}

    # Anchors and parzen run one after the other so at most `workers`
    # processes compete for the 2 cores at any time.
    if todo["anchor"]:
        py = ensure_anchor_venv()
        try:
            run_jobs(py, todo["anchor"], args.workers, on_result)
        finally:
            save_cache(cache)
    if todo["parzen"]:
        run_jobs(current_python(), todo["parzen"], args.workers, on_result)
    print(f"ran {total} jobs in {time.perf_counter() - t_start:.0f}s", file=sys.stderr)
    return runs


def build_summary(
    args: argparse.Namespace, runs: Mapping[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    cps = checkpoints(args.evals)
    summary: dict[str, Any] = {}
    for prob_name in args.problems:
        prob = get_problem(prob_name)
        entry: dict[str, Any] = {
            "optimum": prob.optimum,
            "description": prob.description,
            "algos": {},
            "verdicts": {},
        }
        per_algo: dict[str, dict[str, list[float]]] = {}
        for algo, recs in runs.items():
            mine = sorted((r for r in recs if r["problem"] == prob_name), key=lambda r: r["seed"])
            if not mine:
                continue
            reg = [regrets(r, prob.optimum, cps) for r in mine]
            per_algo[algo] = {str(c): [g[str(c)] for g in reg] for c in cps}
            nd = [r["near_dup"] for r in mine if r.get("near_dup") is not None]
            entry["algos"][algo] = {
                "n_runs": len(mine),
                "regret": {str(c): summarise(per_algo[algo][str(c)]) for c in cps},
                "near_dup": float(np.mean(nd)) if nd else None,
                "mean_seconds": float(np.mean([r["seconds"] for r in mine])),
                "per_seed_regret": per_algo[algo],
            }
        if "parzen" in per_algo:
            for other, op in (("optuna", "<="), ("hyperopt", "<")):
                if other not in per_algo:
                    continue
                v: dict[str, Any] = {}
                for c in map(str, cps):
                    mp = entry["algos"]["parzen"]["regret"][c]["median"]
                    mo = entry["algos"][other]["regret"][c]["median"]
                    v[c] = {
                        "holds": bool(mp <= mo if op == "<=" else mp < mo),
                        "p_parzen_better": prob_better(per_algo["parzen"][c], per_algo[other][c]),
                    }
                entry["verdicts"][f"parzen {op} {other}"] = v
        summary[prob_name] = entry
    return summary


def render_table(args: argparse.Namespace, summary: Mapping[str, Any]) -> str:
    cps = checkpoints(args.evals)
    lines = [
        f"Regret (best loss - optimum): median [q25, q75] over {args.seeds} seeds,"
        f" {args.evals} evals, batch={args.batch}" + (
            "; noisy: true regret of the trial with the lowest noisy loss" if args.noise_sd
            else ""),
    ]
    batch_col = args.batch > 1
    for prob_name, entry in summary.items():
        lines.append("")
        noise = f"; noise sd {args.noise_sd[prob_name]:g}" if prob_name in args.noise_sd else ""
        lines.append(f"{prob_name}  (optimum {entry['optimum']:.6g}; {entry['description']}"
                     f"{noise})")
        head = f"  {'algo':9s}" + "".join(f"{'@' + str(c):>30s}" for c in cps)
        if batch_col:
            head += f"{'near-dup':>10s}"
        lines.append(head)
        for algo, a in entry["algos"].items():
            row = f"  {algo:9s}"
            for c in map(str, cps):
                r = a["regret"][c]
                cell = f"{fmt(r['median'])} [{fmt(r['q25'])}, {fmt(r['q75'])}]"
                row += f"{cell:>30s}"
            if batch_col:
                row += f"{(fmt(a['near_dup']) if a['near_dup'] is not None else '-'):>10s}"
            lines.append(row)
        for name, v in entry["verdicts"].items():
            cells = "  ".join(
                f"@{c}: {'yes' if x['holds'] else 'NO '} (P={x['p_parzen_better']:.2f})"
                for c, x in v.items()
            )
            lines.append(f"  {name + '?':20s} {cells}")
    verdict_names = sorted({n for e in summary.values() for n in e["verdicts"]})
    if verdict_names:
        lines.append("")
        last = str(cps[-1])
        for name in verdict_names:
            held = [
                p
                for p, e in summary.items()
                if e["verdicts"].get(name, {}).get(last, {}).get("holds")
            ]
            lines.append(f"{name}? @{last}: holds on {len(held)}/{len(summary)} problems")
    return "\n".join(lines)


def gather_meta(args: argparse.Namespace) -> dict[str, Any]:
    meta: dict[str, Any] = base_meta() | {
        "seeds": list(range(args.first_seed, args.first_seed + args.seeds)),
        "evals": args.evals,
        "batch": args.batch,
        "checkpoints": checkpoints(args.evals),
        "near_dup_metric": "Euclidean/sqrt(d) in [0,1]-scaled space (log for log params; "
        "categorical 0/1); pair counted when < 0.01",
        "noise_sd": dict(args.noise_sd),
    }
    if any(a in ANCHORS for a in args.algos):
        meta["anchor_versions"] = anchor_versions()
    if "parzen" in args.algos:
        import parzen

        meta["parzen_version"] = str(getattr(parzen, "__version__", "unknown"))
    return meta


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if "parzen" in args.algos:
        try:
            import parzen  # noqa: F401
        except ImportError as exc:
            raise SystemExit(
                f"parzen is not importable ({exc}); install it "
                "(.venv/bin/pip install -e .) or pass --algos hyperopt,optuna"
            ) from exc
    runs = run_all(args)
    summary = build_summary(args, runs)
    table = render_table(args, summary)
    if "parzen" in args.algos:
        table = f"parzen from git {git_revision()}; anchors hyperopt 0.3.0, optuna 5.0.0\n" + table
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "meta": gather_meta(args),
        "summary": summary,
        "runs": {
            algo: [
                {
                    k: r[k]
                    for k in ("problem", "seed", "seconds", "near_dup", "batch_check", "cached")
                    if k in r
                }
                | {
                    "regret": regrets(
                        r, get_problem(r["problem"]).optimum, checkpoints(args.evals)
                    )
                }
                for r in recs
            ]
            for algo, recs in runs.items()
        },
        "table": table,
    }
    args.out.write_text(json.dumps(payload, indent=1))
    args.out.with_suffix(".txt").write_text(table + "\n")
    print(f"\nwrote {args.out} and {args.out.with_suffix('.txt')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
