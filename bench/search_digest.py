"""A digest of every point a seeded search proposes: the same digest means the same search.

For checking that a change which must not move the samplers (a refactor) does not: run it
on both commits and compare the lines.

    .venv/bin/python bench/search_digest.py                       # this checkout
    PYTHONPATH=/path/to/other/checkout/src .venv/bin/python bench/search_digest.py

Each line is ``problem/algorithm/batch digest`` for a seeded ``fmin`` of ``--evals``
evaluations: three problems (Branin, a mixed conditional space, a 5-D quadratic), four
algorithms (tpe, rand, anneal, a ``functools.partial`` of tpe) and batch sizes 1 and 8.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from parzen import Trials, anneal, fmin, hp, rand, tpe
from parzen.pyll import scope


def branin(p: dict[str, float]) -> float:
    x, y = p["x"], p["y"]
    return float((y - 5.1 / (4 * math.pi**2) * x**2 + 5 / math.pi * x - 6) ** 2
                 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x) + 10)


def mixed(p: dict[str, Any]) -> float:
    kind = p["kind"]
    return float((math.log(p["lr"]) + 3) ** 2 + (p["n"] - 7) ** 2 / 10
                 + (kind.get("a", 0.3) - 0.3) ** 2 + kind.get("b", 0) ** 2)


def quad5(p: dict[str, float]) -> float:
    return float(sum((v - 0.5) ** 2 for v in p.values()))


PROBLEMS: dict[str, tuple[Any, Callable[[Any], float]]] = {
    "branin": ({"x": hp.uniform("x", -5, 10), "y": hp.uniform("y", 0, 15)}, branin),
    "mixed": ({"lr": hp.loguniform("lr", -7, 0), "n": scope.int(hp.quniform("n", 1, 20, 1)),
               "kind": hp.choice("kind", [{"k": "a", "a": hp.uniform("a", 0, 1)},
                                          {"k": "b", "b": hp.normal("b", 0, 1)}])}, mixed),
    "quad5": ({f"x{i}": hp.uniform(f"x{i}", -3, 3) for i in range(5)}, quad5),
}
ALGOS: dict[str, Any] = {"tpe": tpe.suggest, "rand": rand.suggest, "anneal": anneal.suggest,
                         "tpe_partial": functools.partial(tpe.suggest, n_startup_jobs=5)}


def digest(space: Any, fn: Callable[[Any], float], algo: Any, batch: int, evals: int) -> str:
    trials = Trials()
    fmin(fn, space, algo=algo, max_evals=evals, trials=trials, max_queue_len=batch,
         rstate=np.random.default_rng(7), show_progressbar=False)
    points = [(d["tid"], sorted(d["misc"]["vals"].items()), d["result"].get("loss"),
               d["misc"].get("origin")) for d in trials.trials]
    return hashlib.sha256(json.dumps(points, default=float).encode()).hexdigest()[:16]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--evals", type=int, default=60, help="evaluations per run (default 60)")
    args = ap.parse_args()
    for name, (space, fn) in PROBLEMS.items():
        for algo_name, algo in ALGOS.items():
            for batch in (1, 8):
                print(f"{name}/{algo_name}/q{batch} {digest(space, fn, algo, batch, args.evals)}")


if __name__ == "__main__":
    main()
