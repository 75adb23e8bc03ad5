"""A dead worker's cost: fmin with MongoTrials on three ``parzen worker`` processes
(concurrency 2, ``parallelism=6``), one of them ``kill -9``ed mid-run, with the default
60 s lease and 10 s heartbeat. Issue 18 item 4 measured this run at 73 s against 36 s
without the kill: the dead worker's two trials waited out their lease.

    .venv/bin/python bench/dead_worker.py              # 60 trials of 3 s, kill after 9 s
    .venv/bin/python bench/dead_worker.py --no-kill    # the same run, nobody killed

Everything is private to the run, as in ``chaos.py``: a ``redis-server`` on a free port,
the MongoDB wire-protocol test server as a subprocess, workers on a private queue. All on
this host, so the coordinator's reaper can see that the killed worker's pid is gone.

Reported: wall time; for each trial the dead worker held, how it ended (``worker died``:
requeued at once; ``lease expired``: waited out the lease) and how long after the kill
(store clock); DONE count.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from chaos import SECRET, PrivateCluster, _wait_ready, start_worker  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--trials", type=int, default=60)
    p.add_argument("--sleep", type=float, default=3.0, help="seconds per evaluation")
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=2)
    p.add_argument("--kill-after", type=float, default=9.0,
                   help="seconds into the run to kill -9 one worker")
    p.add_argument("--no-kill", action="store_true")
    args = p.parse_args(argv)

    import numpy as np
    from _chaos_objective import objective

    from parzen import fmin, hp, tpe
    from parzen.mongoexp import MongoTrials
    from parzen.store._mongo import MongoTrialStore
    from parzen.trial import TrialState

    cluster = PrivateCluster.start("dead-worker")
    workdir, redis, wire = cluster.workdir, cluster.redis, cluster.wire
    mongo_url, queue = cluster.mongo_url, cluster.queue
    procs = [start_worker(mongo_url, redis.url, queue, workdir / f"worker-{i}.log",
                          concurrency=args.concurrency) for i in range(args.workers)]
    store = MongoTrialStore.from_url(mongo_url)
    exp_key = "dead-worker"
    try:
        for i, proc in enumerate(procs):
            _wait_ready(proc, workdir / f"worker-{i}.log")
        trials = MongoTrials(mongo_url, exp_key=exp_key, broker=redis.url, queue=queue,
                             secret=SECRET, parallelism=args.workers * args.concurrency)
        space = {"x": hp.uniform("x", -1, 1), "y": hp.uniform("y", -1, 1),
                 "sleep": args.sleep}
        killed: dict[str, object] = {}

        def killer() -> None:
            time.sleep(args.kill_after)
            victim = procs[0]
            held = [t.tid for t in store.find(exp_key, states=[TrialState.RUNNING])
                    if t.owner is not None and t.owner.pid == victim.pid]
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            killed.update(pid=victim.pid, tids=held, at=store.now())

        if not args.no_kill:
            threading.Thread(target=killer, daemon=True).start()
        started = time.monotonic()
        fmin(objective, space, algo=tpe.suggest, max_evals=args.trials, trials=trials,
             show_progressbar=False, rstate=np.random.default_rng(0))
        wall = time.monotonic() - started
        trials.close()
        counts = store.count_by_state(exp_key)
        print(f"wall {wall:.1f} s for {args.trials} trials of {args.sleep:g} s on "
              f"{args.workers} workers x {args.concurrency} "
              f"({'no kill' if args.no_kill else f'kill -9 after {args.kill_after:g} s'}); "
              f"DONE {counts[TrialState.DONE]}")
        if killed:
            at = killed["at"]
            assert isinstance(at, datetime)
            print(f"killed pid {killed['pid']} holding trials {killed['tids']}")
            for t in store.find(exp_key):
                for a in t.history:
                    if a.owner is not None and a.owner.pid == killed["pid"]:
                        end = a.end_time or datetime.now(timezone.utc)
                        print(f"  trial {t.tid}: {a.outcome!r} {(end - at).total_seconds():.1f}"
                              " s after the kill")
        print(f"logs in {workdir}")
    finally:
        for proc in procs:
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
