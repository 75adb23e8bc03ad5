"""A wrong-key worker's cost: fmin with MongoTrials on good ``parzen worker`` processes, with
and without one more worker whose signing key is not the coordinator's (issue 18 item 3).
Before the fix that worker stopped every run (``ObjectiveUnloadable`` at its first trial);
now it refuses the experiment and passes its trials to the good workers.

    .venv/bin/python bench/wrong_key.py                 # 3 pairs of runs, 40 trials of 1 s
    .venv/bin/python bench/wrong_key.py --alone         # the wrong-key worker alone: time to
                                                        # the error (default dispatch_timeout)

The runs alternate (without, with, without, ...) so that load on the machine falls on both
alike. Everything is private to the run, as in ``chaos.py``: a ``redis-server`` on a free
port, the MongoDB wire-protocol test server as a subprocess, workers on a private queue.

Reported: wall time of each run, the medians and their ratio; the wrong-key worker's trials
(claimed once, then passed on unclaimed) and the refusal recorded on the experiment.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from chaos import SECRET, PrivateCluster, _wait_ready, start_worker  # noqa: E402

WRONG = "a-key-that-is-not-the-coordinators-" + "9" * 8


def _worker(mongo_url: str, redis_url: str, queue: str, log: Path, concurrency: int,
            key: str, name: str) -> subprocess.Popen[bytes]:
    return start_worker(mongo_url, redis_url, queue, log, concurrency=concurrency, secret=key,
                        env_extra={"PARZEN_WORKER_NAME": name})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--trials", type=int, default=40)
    p.add_argument("--sleep", type=float, default=1.0, help="seconds per evaluation")
    p.add_argument("--good", type=int, default=2, help="workers with the right key")
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--pairs", type=int, default=3, help="runs without and with, each")
    p.add_argument("--alone", action="store_true",
                   help="instead, time the error of a run with the wrong-key worker alone")
    args = p.parse_args(argv)

    import numpy as np
    from _chaos_objective import objective

    from parzen import fmin, hp, tpe
    from parzen.exceptions import ObjectiveUnloadable
    from parzen.mongoexp import MongoTrials
    from parzen.store._mongo import MongoTrialStore

    cluster = PrivateCluster.start("wrong-key")
    workdir, redis, wire = cluster.workdir, cluster.redis, cluster.wire
    mongo_url, queue = cluster.mongo_url, cluster.queue
    good = [] if args.alone else [
        _worker(mongo_url, redis.url, queue, workdir / f"good-{i}.log", args.concurrency,
                SECRET, f"good-{i}") for i in range(args.good)]
    store = MongoTrialStore.from_url(mongo_url)
    space = {"x": hp.uniform("x", -1, 1), "y": hp.uniform("y", -1, 1), "sleep": args.sleep}
    parallelism = max(1, len(good)) * args.concurrency
    bad: subprocess.Popen[bytes] | None = None

    def run(exp_key: str) -> float:
        trials = MongoTrials(mongo_url, exp_key=exp_key, broker=redis.url, queue=queue,
                             secret=SECRET, parallelism=parallelism)
        started = time.monotonic()
        try:
            fmin(objective, space, algo=tpe.suggest, max_evals=args.trials, trials=trials,
                 show_progressbar=False, rstate=np.random.default_rng(0))
        finally:
            trials.close()
        return time.monotonic() - started

    try:
        for i, proc in enumerate(good):
            _wait_ready(proc, workdir / f"good-{i}.log")
        if args.alone:
            bad = _worker(mongo_url, redis.url, queue, workdir / "wrong-key.log",
                          args.concurrency, WRONG, "wrong-key")
            _wait_ready(bad, workdir / "wrong-key.log")
            started = time.monotonic()
            try:
                run("alone")
            except ObjectiveUnloadable as exc:
                print(f"ObjectiveUnloadable after {time.monotonic() - started:.1f} s: "
                      f"{str(exc)[:300]}...")
            return 0
        walls: dict[bool, list[float]] = {False: [], True: []}
        for pair in range(args.pairs):
            for with_bad in (False, True):
                if with_bad and bad is None:
                    bad = _worker(mongo_url, redis.url, queue, workdir / "wrong-key.log",
                                  args.concurrency, WRONG, "wrong-key")
                    _wait_ready(bad, workdir / "wrong-key.log")
                if not with_bad and bad is not None:
                    bad.terminate()
                    bad.wait(30)
                    bad = None
                exp_key = f"{'with' if with_bad else 'without'}-{pair}"
                wall = run(exp_key)
                walls[with_bad].append(wall)
                exp = store.get_experiment(exp_key)
                refused = [r.worker for r in exp.refusals] if exp is not None else []
                claimed = sum(1 for t in store.find(exp_key) for a in t.history
                              if a.owner is not None and a.owner.worker == "wrong-key")
                print(f"{exp_key}: wall {wall:.1f} s; refusals {refused}; trials the "
                      f"wrong-key worker claimed then gave back: {claimed}", flush=True)
        without, with_ = statistics.median(walls[False]), statistics.median(walls[True])
        print(f"{args.trials} trials of {args.sleep:g} s on {len(good)} good workers x "
              f"{args.concurrency} (parallelism {parallelism}): median wall {without:.1f} s "
              f"without, {with_:.1f} s with a wrong-key worker (x {args.concurrency}); "
              f"ratio {with_ / without:.2f}")
        print(f"logs in {workdir}")
    finally:
        for proc in [*good, *([bad] if bad is not None else [])]:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
        store.close()
        redis.stop()
        wire.stop()
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.exit(main())
