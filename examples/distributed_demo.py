"""A distributed parzen run: the coordinator for the docker-compose cluster.

It minimises the Branin function (a standard 2-D test function, minimum 0.397887) with TPE.
Trials go to MongoDB, messages to Redis, and the ``parzen worker`` containers evaluate them;
each evaluation sleeps a little so the trials visibly spread over the workers.

In the compose cluster (see docker-compose.yml)::

    docker compose --profile demo run --rm coordinator

From this host, against the cluster's 127.0.0.1 ports (use Python 3.11, as the workers do)::

    PARZEN_MONGO_URL=mongodb://127.0.0.1:27017/parzen \\
    PARZEN_BROKER_URL=redis://127.0.0.1:6379/0 PARZEN_SECRET=<the key in .env> \\
    python examples/distributed_demo.py --max-evals 40

Environment: ``PARZEN_MONGO_URL``, ``PARZEN_BROKER_URL``, ``PARZEN_SECRET`` (or
``PARZEN_SECRET_FILE``), optional ``PARZEN_QUEUE`` (must match the workers') and
``DEMO_MAX_EVALS``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections import Counter

import numpy as np

from parzen import AllTrialsFailed, ParzenError, fmin, hp, space_eval, tpe
from parzen.mongoexp import MongoTrials

SPACE = {
    "x": hp.uniform("x", -5.0, 10.0),
    "y": hp.uniform("y", 0.0, 15.0),
}


def make_objective(sleep_s: float):
    """The Branin function of ``{"x", "y"}``, taking ``sleep_s`` seconds per evaluation.

    Defined in ``__main__``, so it travels to the workers pickled by value (signed with
    ``PARZEN_SECRET``): the workers do not need this file.
    """

    def branin(params):
        time.sleep(sleep_s)
        x, y = params["x"], params["y"]
        b, c = 5.1 / (4 * math.pi**2), 5 / math.pi
        t = 1 / (8 * math.pi)
        return (y - b * x**2 + c * x - 6) ** 2 + 10 * (1 - t) * math.cos(x) + 10

    return branin


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-evals", type=int,
                        default=int(os.environ.get("DEMO_MAX_EVALS") or 40))
    parser.add_argument("--parallelism", type=int, default=8,
                        help="trials queued or running at once (default 8)")
    parser.add_argument("--exp-key", default=f"branin-demo-{time.strftime('%Y%m%d-%H%M%S')}",
                        help="experiment name; reuse one to resume it (default: a new one)")
    parser.add_argument("--sleep", type=float, default=0.5,
                        help="seconds each evaluation sleeps (default 0.5)")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="give up after this many seconds (default 600)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    mongo_url = os.environ.get("PARZEN_MONGO_URL")
    broker_url = os.environ.get("PARZEN_BROKER_URL")
    if not mongo_url or not broker_url:
        print("set PARZEN_MONGO_URL and PARZEN_BROKER_URL, e.g. "
              "mongodb://127.0.0.1:27017/parzen and redis://127.0.0.1:6379/0",
              file=sys.stderr)
        return 2

    started = time.monotonic()
    try:
        trials = MongoTrials(mongo_url, exp_key=args.exp_key, broker=broker_url,
                             parallelism=args.parallelism,
                             queue=os.environ.get("PARZEN_QUEUE") or "parzen")
        print(f"experiment {args.exp_key!r}: {args.max_evals} trials, "
              f"{args.parallelism} at once", flush=True)
        best = fmin(make_objective(args.sleep), SPACE, algo=tpe.suggest,
                    max_evals=args.max_evals, timeout=args.timeout, trials=trials,
                    rstate=np.random.default_rng(args.seed), show_progressbar=False)
    except AllTrialsFailed as exc:
        print(f"no trial succeeded within {args.timeout:g} s ({exc}): are the workers "
              "running, with the same PARZEN_SECRET? (docker compose logs worker)",
              file=sys.stderr)
        return 1
    except ParzenError as exc:
        print(f"distributed_demo: {exc}", file=sys.stderr)
        return 2
    elapsed = time.monotonic() - started

    losses = [loss for loss in trials.losses() if loss is not None]
    by_worker = Counter(str(t["owner"][0]) for t in trials.trials if t["owner"])
    print(f"{len(losses)} trials in {elapsed:.1f} s on {len(by_worker)} worker host(s): "
          + ", ".join(f"{host}={n}" for host, n in sorted(by_worker.items())))
    print(f"best loss: {min(losses):.6f} (Branin minimum: 0.397887)")
    print(f"best params: {space_eval(SPACE, best)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
