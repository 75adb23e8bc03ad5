"""How far batches fall behind sequential parzen, and how much of it 15 seeds can show.

Takes two ``quality.py`` result files of parzen runs over the same seeds, one sequential and
one batched, and prints per problem the ratio of median regret at 100 evaluations (batched /
sequential), then how often a random draw of 15 of those seeds would put that ratio within
``--limit`` (the issue's target is judged on 15 seeds, where one or two runs decide a median).

    .venv/bin/python bench/quality.py --algos parzen --first-seed 15 --seeds 200 --out /tmp/h1.json
    .venv/bin/python bench/quality.py --algos parzen --first-seed 15 --seeds 200 --batch 8 \\
        --out /tmp/h8.json
    .venv/bin/python bench/degradation.py /tmp/h1.json /tmp/h8.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np


def per_seed(path: Path, checkpoint: str) -> dict[str, np.ndarray]:
    """parzen's regret per seed at ``checkpoint``, by problem."""
    summary: dict[str, Any] = json.loads(path.read_text())["summary"]
    return {
        p: np.asarray(e["algos"]["parzen"]["per_seed_regret"][checkpoint], dtype=float)
        for p, e in summary.items()
        if "parzen" in e["algos"]
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sequential", type=Path)
    ap.add_argument("batched", type=Path)
    ap.add_argument("--checkpoint", default="100")
    ap.add_argument("--limit", type=float, default=1.5)
    ap.add_argument("--subset", type=int, default=15)
    ap.add_argument("--draws", type=int, default=4000)
    args = ap.parse_args()
    seq, bat = per_seed(args.sequential, args.checkpoint), per_seed(args.batched, args.checkpoint)
    problems = [p for p in seq if p in bat]
    rng = np.random.default_rng(0)
    passed = np.zeros((args.draws, len(problems)), dtype=bool)
    print(f"problem      ratio  P(ratio <= {args.limit} on {args.subset} seeds)")
    for j, p in enumerate(problems):
        a, b = seq[p], bat[p]
        if a.shape != b.shape:
            raise SystemExit(f"{p}: {a.shape[0]} sequential runs but {b.shape[0]} batched; "
                             "run both files over the same seeds")
        ratio = float(np.median(b) / np.median(a))
        for d in range(args.draws):
            idx = rng.choice(a.shape[0], args.subset, replace=False)
            passed[d, j] = np.median(b[idx]) <= args.limit * np.median(a[idx])
        print(f"{p:12} {ratio:5.2f}  {passed[:, j].mean():.2f}")
    n_ok = passed.sum(axis=1)
    full = sum(np.median(bat[p]) <= args.limit * np.median(seq[p]) for p in problems)
    print(f"within {args.limit}x on all {seq[problems[0]].shape[0]} seeds: {full}/{len(problems)}; "
          f"on {args.subset}-seed draws: mean {n_ok.mean():.2f}, "
          f"P(>= {len(problems) - 1}/{len(problems)}) = {(n_ok >= len(problems) - 1).mean():.2f}")


if __name__ == "__main__":
    main()
