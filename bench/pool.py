"""parzen with an asynchronous worker pool: W trials always running, one point asked per result.

This is how a cluster runs (the coordinator refills each worker as it finishes), unlike the
synchronous batches of ``quality.py --batch K``. Results come back in a random order, one at a
time; after each, the sampler is asked for one point with the other W - 1 still pending. Every
run makes 100 evaluations; the score is the median regret at 100 over seeds, per setting.

    .venv/bin/python bench/pool.py                                  # W=8, local steps on/off
    .venv/bin/python bench/pool.py --workers 24 --seeds 100
    .venv/bin/python bench/pool.py --settings '{}' '{"parallel_local": 1}'
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from problems import PROBLEMS, build_hp_space, get_problem, native_point  # noqa: E402


def pool_regret(problem: str, workers: int, seed: int, evals: int,
                settings: dict[str, Any]) -> float:
    """Best regret after ``evals`` results from a pool of ``workers``."""
    import parzen
    from parzen.samplers._history import HistoryBuilder
    from parzen.samplers.tpe import TPESampler
    from parzen.space import compile_space

    prob = get_problem(problem)
    space = compile_space(build_hp_space(parzen.hp, prob.params))
    sampler, history = TPESampler(**settings), HistoryBuilder(space)
    rng, order = np.random.default_rng(seed), np.random.default_rng([seed, 1])
    running: list[tuple[int, dict[str, Any]]] = []
    best, asked, done = np.inf, 0, 0

    def ask() -> None:
        nonlocal asked
        (point,) = sampler.suggest(space, history.view(), 1, rng)
        history.set_row(asked, point, None, True)
        running.append((asked, point))
        asked += 1

    for _ in range(min(workers, evals)):
        ask()
    while done < evals:
        tid, point = running.pop(int(order.integers(len(running))))
        loss = float(prob.objective(native_point(prob.params, parzen.space_eval(space, point))))
        history.set_row(tid, point, loss, False)
        best = min(best, loss - prob.optimum)
        done += 1
        if asked < evals:
            ask()
    return float(best)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--problems", default=",".join(PROBLEMS))
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--settings", nargs="+", type=json.loads,
                    default=[{"local_every": 0}, {}],
                    help="tpe.suggest settings to compare, one JSON object each")
    ap.add_argument("--seeds", type=int, default=60)
    ap.add_argument("--first-seed", type=int, default=15)
    ap.add_argument("--evals", type=int, default=100)
    args = ap.parse_args()
    names = [json.dumps(s) for s in args.settings]
    print(f"median regret at {args.evals} evaluations, pool of {args.workers}, {args.seeds} "
          f"seeds from {args.first_seed}")
    print(f"{'problem':<12}" + "".join(f"{n:>24}" for n in names))
    for problem in [p for p in args.problems.split(",") if p]:
        row = [float(np.median([pool_regret(problem, args.workers, seed, args.evals, s)
                                for seed in range(args.first_seed,
                                                  args.first_seed + args.seeds)]))
               for s in args.settings]
        print(f"{problem:<12}" + "".join(f"{v:>24.4g}" for v in row), flush=True)


if __name__ == "__main__":
    main()
