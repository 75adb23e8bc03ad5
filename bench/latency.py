"""Suggestion-latency benchmark: one TPE suggestion with n completed trials.

The space is 10-D mixed (4 uniform, 2 loguniform, 2 quantised ints,
2 categoricals).  Every library gets the same n random completed trials
(hyperopt/parzen: trial docs inserted into Trials; optuna: add_trials), then
we time consecutive real suggestions (the history grows by one per step).
parzen runs in this interpreter; hyperopt 0.3.0 and optuna 5.0.0 in the
anchor venv, one worker, never concurrently with anything we run.

    .venv/bin/python bench/latency.py
    .venv/bin/python bench/latency.py --n 100,1000 --algos hyperopt,optuna
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from _anchors import anchor_versions, ensure_anchor_venv  # noqa: E402
from _meta import base_meta, git_revision  # noqa: E402
from _pool import Worker  # noqa: E402
from _runners import run_job  # noqa: E402

ANCHORS = ("hyperopt", "optuna")
RESULTS_DIR = BENCH_DIR / "results"
# Targets from the parzen brief.
TARGET_N = 1000
TARGET_VS_OPTUNA = 1 / 10
TARGET_VS_HYPEROPT = 1 / 30
TARGET_BIG_N = 10000
TARGET_BIG_MS = 25.0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", default="100,1000,2000,10000", help="history sizes, comma list")
    ap.add_argument("--algos", default="parzen,hyperopt,optuna", help="comma list")
    ap.add_argument(
        "--repeats", type=int, default=15, help="timed suggestions per (algo, n, round)"
    )
    ap.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="interleaved rounds: each round times every algo once per n; ratios are taken per "
        "round and their median reported, so a slow spell of the shared machine that hits one "
        "library's turn does not decide the ratio",
    )
    ap.add_argument(
        "--budget",
        type=float,
        default=60.0,
        help="seconds of suggestion time per (algo, n); stop repeating (and mark 'capped') "
        "once exceeded",
    )
    ap.add_argument("--no-memory", action="store_true", help="skip the tracemalloc pass")
    ap.add_argument("--out", type=Path, default=RESULTS_DIR / "latency.json")
    args = ap.parse_args(argv)
    args.n = [int(x) for x in args.n.split(",") if x]
    args.algos = [a for a in args.algos.split(",") if a]
    for a in args.algos:
        if a not in ("parzen", *ANCHORS):
            ap.error(f"unknown algo {a!r}")
    return args


def merge_rounds(rounds: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One algo's results over interleaved rounds: samples pooled, the first round's cold
    time, the memory pass of whichever round made it, each round's median kept."""
    first = rounds[0]
    peaks = [r["peak_bytes"] for r in rounds if r.get("peak_bytes") is not None]
    return {
        **first,
        "times_ms": [t for r in rounds for t in r["times_ms"]],
        "cpu_ms": [t for r in rounds for t in r.get("cpu_ms") or []],
        "fmin_step_ms": [t for r in rounds for t in r.get("fmin_step_ms") or []],
        "capped": any(r["capped"] for r in rounds),
        "peak_bytes": peaks[0] if peaks else None,
        "round_medians_ms": [float(np.median(r["times_ms"])) if r["times_ms"] else None
                             for r in rounds],
        "round_cpu_medians_ms": [float(np.median(r["cpu_ms"])) if r.get("cpu_ms") else None
                                 for r in rounds],
    }


def stats(res: Mapping[str, Any]) -> dict[str, Any]:
    t = res["times_ms"]
    return {
        "median_ms": float(np.median(t)) if t else None,
        "min_ms": float(np.min(t)) if t else None,
        "cpu_median_ms": float(np.median(res["cpu_ms"])) if res.get("cpu_ms") else None,
        "cold_ms": res["cold_ms"],
        "repeats": len(t),
        "capped": res["capped"],
        "peak_bytes": res["peak_bytes"],
        "history": res["history"],
        "history_digest": res["history_digest"],
        "build_seconds": res["build_seconds"],
        "fmin_step_median_ms": float(np.median(res["fmin_step_ms"]))
        if res.get("fmin_step_ms")
        else None,
        "round_medians_ms": res.get("round_medians_ms"),
        "round_cpu_medians_ms": res.get("round_cpu_medians_ms"),
    }


def fmt_ms(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.3g}" if v < 100 else f"{v:.0f}"


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def paired_ratio(
    row: Mapping[str, Any], algo: str, other: str, key: str = "round_medians_ms"
) -> float | None:
    """Median over rounds of algo's median / other's median in the same round."""
    a, b = row.get(algo), row.get(other)
    if a is None or b is None or not a.get(key) or not b.get(key):
        return None
    rs = [ratio(x, y) for x, y in zip(a[key], b[key], strict=True)]
    vals = [r for r in rs if r is not None]
    return float(np.median(vals)) if vals else None


def render(args: argparse.Namespace, table: Mapping[int, Mapping[str, Any]]) -> str:
    lines = [
        "Suggestion latency, ms per suggestion: wall median / min and CPU-time median over"
        f" {args.rounds} interleaved rounds of {args.repeats} repeats (cold = first call, wall);"
        " ratios are the median over rounds of each round's ratio of medians;"
        f" load average at start {args.loadavg[0]:.1f} on {os.cpu_count()} cores"
    ]
    head = f"{'n':>6s}"
    for a in args.algos:
        head += f"{a + ' med/min':>20s}{'cpu':>7s}{'cold':>7s}"
    others = [o for o in ANCHORS if o in args.algos] if "parzen" in args.algos else []
    # Ratios of parzen's median to each anchor's: wall (cpu).
    head += "".join(f"{'p/' + o + ' wall(cpu)':>24s}" for o in others)
    lines.append(head)
    for n, row in table.items():
        line = f"{n:>6d}"
        for a in args.algos:
            s = row.get(a)
            if s is None:
                line += f"{'skipped':>20s}{'':>14s}"
                continue
            cell = f"{fmt_ms(s['median_ms'])} / {fmt_ms(s['min_ms'])}"
            if s["capped"]:
                cell += "*"
            line += f"{cell:>20s}{fmt_ms(s['cpu_median_ms']):>7s}{fmt_ms(s['cold_ms']):>7s}"
        for o in others:
            rw = paired_ratio(row, "parzen", o)
            rc = paired_ratio(row, "parzen", o, "round_cpu_medians_ms")
            line += f"{f'{_r(rw)} ({_r(rc)})':>24s}"
        lines.append(line)
    for n, row in table.items():
        digests = {a: s["history_digest"] for a, s in row.items() if s}
        if len(set(digests.values())) > 1 or None in digests.values():
            # e.g. a Trials without the doc API fell back to an fmin+rand history.
            lines.append(f"  note: n={n} histories differ between libraries: {digests}")
    if any(s and s["capped"] for row in table.values() for s in row.values()):
        lines.append(f"* capped: stopped repeating after {args.budget:.0f}s of suggestion time")

    hp_like = [a for a in args.algos if a != "optuna"]
    if hp_like:
        lines.append("")
        lines.append("Whole fmin step (suggest + fmin bookkeeping), median ms:")
        for n, row in table.items():
            cells = [
                f"{a} {fmt_ms((row.get(a) or {}).get('fmin_step_median_ms'))}" for a in hp_like
            ]
            lines.append(f"{n:>6d}  " + "   ".join(cells))

    if others:
        lines.append("")
        lines.append("Targets (on wall medians; CPU-time version in brackets):")
        lines.extend(_targets(table))

    if not args.no_memory:
        lines.append("")
        lines.append("Peak traced memory during one suggestion (tracemalloc), MB and bytes/trial:")
        lines.append(f"{'n':>6s}" + "".join(f"{a:>24s}" for a in args.algos))
        for n, row in table.items():
            line = f"{n:>6d}"
            for a in args.algos:
                pk = (row.get(a) or {}).get("peak_bytes")
                cell = "-" if pk is None else f"{pk / 2**20:.2f} MB ({pk / n:.0f} B/t)"
                line += f"{cell:>24s}"
            lines.append(line)
        for a in args.algos:
            slope = _loglog_slope(table, a)
            if slope is not None:
                lines.append(
                    f"  {a}: log-log slope of peak vs n between the two largest n = {slope:.2f}"
                    " (1.0 = linear, 2.0 = quadratic)"
                )
    return "\n".join(lines)


def _med(row: Mapping[str, Any], algo: str, key: str = "median_ms") -> float | None:
    s = row.get(algo)
    return None if s is None else s[key]


def _r(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _targets(table: Mapping[int, Mapping[str, Any]]) -> list[str]:
    out: list[str] = []

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("MET" if ok else "MISSED")

    row = table.get(TARGET_N, {})
    for other, target in (("optuna", TARGET_VS_OPTUNA), ("hyperopt", TARGET_VS_HYPEROPT)):
        r = paired_ratio(row, "parzen", other)
        rc = paired_ratio(row, "parzen", other, "round_cpu_medians_ms")
        ok = None if r is None else r <= target
        per_round = [ratio(x, y) for x, y in zip(
            (row.get("parzen") or {}).get("round_medians_ms") or [],
            (row.get(other) or {}).get("round_medians_ms") or [], strict=False)]
        rounds = ", ".join(_r(v) for v in per_round)
        out.append(
            f"  n={TARGET_N}: parzen/{other} = {_r(r)} [{_r(rc)}] (target <= {target:.3f})"
            f" {verdict(ok)}; per round: {rounds}"
        )
    big_row = table.get(TARGET_BIG_N, {})
    big = _med(big_row, "parzen")
    ok = None if big is None else big <= TARGET_BIG_MS
    out.append(
        f"  n={TARGET_BIG_N}: parzen median = {fmt_ms(big)} ms"
        f" [{fmt_ms(_med(big_row, 'parzen', 'cpu_median_ms'))}]"
        f" (target <= {TARGET_BIG_MS:g} ms) {verdict(ok)}"
    )
    return out


def _loglog_slope(table: Mapping[int, Mapping[str, Any]], algo: str) -> float | None:
    raw = [(n, (row.get(algo) or {}).get("peak_bytes")) for n, row in table.items()]
    pts: list[tuple[int, int]] = sorted((n, int(p)) for n, p in raw if p)
    if len(pts) < 2:
        return None
    (n1, p1), (n2, p2) = pts[-2], pts[-1]
    return math.log(p2 / p1) / math.log(n2 / n1)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.loadavg = os.getloadavg()
    meta: dict[str, Any] = base_meta() | {
        "loadavg_at_start": list(args.loadavg),
        "space": "10-D: 4 uniform, 2 loguniform, 2 quniform-int, 2 categorical",
        "repeats": args.repeats,
        "rounds": args.rounds,
        "budget_s": args.budget,
    }
    if "parzen" in args.algos:
        try:
            import parzen
        except ImportError as exc:
            raise SystemExit(
                f"parzen is not importable ({exc}); pass --algos hyperopt,optuna"
            ) from exc
        meta["parzen_version"] = str(getattr(parzen, "__version__", "unknown"))
    worker = None
    if any(a in ANCHORS for a in args.algos):
        worker = Worker(ensure_anchor_venv())
        meta["anchor_versions"] = anchor_versions()

    table: dict[int, dict[str, Any]] = {}
    try:
        for n in args.n:
            table[n] = {}
            per_algo: dict[str, list[dict[str, Any]]] = {a: [] for a in args.algos}
            for rnd in range(args.rounds):
                for algo in args.algos:
                    job = {
                        "kind": "latency",
                        "algo": algo,
                        "n": n,
                        "repeats": args.repeats,
                        "budget_s": args.budget,
                        # One tracemalloc pass per (algo, n) is enough.
                        "memory": not args.no_memory and rnd == 0,
                    }
                    # parzen in-process (the interpreter under test); anchors in their venv.
                    res = run_job(job) if algo == "parzen" else worker.call(job)  # type: ignore[union-attr]
                    per_algo[algo].append(res)
                    t = res["times_ms"]
                    print(
                        f"n={n:<6d} round {rnd + 1} {algo:8s} median "
                        f"{fmt_ms(float(np.median(t)) if t else None)} ms over {len(t)}"
                        f" ({res['history']})",
                        file=sys.stderr,
                        flush=True,
                    )
            for algo in args.algos:
                table[n][algo] = stats(merge_rounds(per_algo[algo]))
    finally:
        if worker is not None:
            worker.close()

    text = render(args, table)
    if "parzen" in args.algos:
        text = f"parzen from git {git_revision()}; anchors hyperopt 0.3.0, optuna 5.0.0\n" + text
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"meta": meta, "results": {str(n): row for n, row in table.items()}, "table": text}
    args.out.write_text(json.dumps(payload, indent=1))
    args.out.with_suffix(".txt").write_text(text + "\n")
    print(f"\nwrote {args.out} and {args.out.with_suffix('.txt')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
