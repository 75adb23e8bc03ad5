"""parzen on noisy versions of the benchmark problems: does a setting still help with noise?

Each evaluation returns the problem's value plus Gaussian noise of the given standard
deviation. The optimiser sees only the noisy losses; a run is scored by the *true* regret of
the trial it would report, the one with the lowest noisy loss. The noise comes from its own
generator per seed, so every setting sees the same noise for the same point order.

    .venv/bin/python bench/noisy.py                                   # default comparison
    .venv/bin/python bench/noisy.py --settings '{"local_every": 0}' '{}' --seeds 60
    .venv/bin/python bench/noisy.py --problems hartmann6:0.2,branin:1 --batch 8
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _runners import run_hp_quality  # noqa: E402
from problems import get_problem  # noqa: E402
from quality import regrets  # noqa: E402

# Noise standard deviations: about 1.5% and 6% of Hartmann6's range, 0.3% of Branin's, and
# a tenth of rf_mixed's spread between criteria.
DEFAULT_PROBLEMS = "hartmann6:0.05,hartmann6:0.2,branin:1.0,rf_mixed:0.005"


def true_regret(problem: str, sd: float, seed: int, evals: int, batch: int,
                settings: dict[str, Any]) -> float:
    """One run's true regret at the trial with the lowest noisy loss."""
    run = run_hp_quality("parzen", problem, seed, evals, batch, settings=settings, noise_sd=sd)
    return regrets(run, get_problem(problem).optimum, [evals])[str(evals)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--problems", default=DEFAULT_PROBLEMS,
                    help="comma list of problem:noise_sd (default %(default)s)")
    ap.add_argument("--settings", nargs="+", type=json.loads,
                    default=[{"local_every": 0}, {}],
                    help="tpe.suggest settings to compare, one JSON object each")
    ap.add_argument("--seeds", type=int, default=60)
    ap.add_argument("--first-seed", type=int, default=300)
    ap.add_argument("--evals", type=int, default=100)
    ap.add_argument("--batch", type=int, default=1)
    args = ap.parse_args()
    cases = [(p.split(":")[0], float(p.split(":")[1])) for p in args.problems.split(",") if p]
    names = [json.dumps(s) for s in args.settings]
    print(f"median true regret at {args.evals} evaluations, {args.seeds} seeds from "
          f"{args.first_seed}, batch {args.batch}")
    print(f"{'problem':<12}{'noise sd':>9}" + "".join(f"{n:>24}" for n in names))
    for problem, sd in cases:
        row = []
        for settings in args.settings:
            regrets = [true_regret(problem, sd, seed, args.evals, args.batch, settings)
                       for seed in range(args.first_seed, args.first_seed + args.seeds)]
            row.append(float(np.median(regrets)))
        print(f"{problem:<12}{sd:>9g}" + "".join(f"{v:>24.4g}" for v in row), flush=True)


if __name__ == "__main__":
    main()
