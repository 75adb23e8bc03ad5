"""The dashboard at scale: an experiment of 20,000 trials, how fast its page loads and renders,
and how soon a result stored afterwards is on the page.

The dashboard's server runs in this process over an in-memory store, which this script
writes as workers would (claim, finish), and headless Chromium, driven over its DevTools pipe
(``tests/support/browser.py``), shows the page. The in-memory store answers each query in
the time a MongoDB with parzen's indexes would take for these small reads; the wire-protocol
test double scans every document per query (about 1 ms per 25 trials), which would measure
the double, not the dashboard.

    .venv/bin/python bench/dashboard.py                 # 20,000 trials, 20 live updates
    .venv/bin/python bench/dashboard.py --trials 5000 --updates 5

Figures:
- page load, cold: from navigation to the history plot drawn with every trial, when the
  dashboard has not read the experiment yet (its first, whole read is included);
- page load, warm: the same on a second page (the server's view is current);
- trial table: switching to it, and sorting the 20,000 rows by loss (one click);
- update latency: a result stored (``finish`` returns) until the page shows it, over
  ``--updates`` results spaced by a random 0-1 s; the page polls every second;
- a poll's cost on the server with nothing new, and what it read from the store.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from parzen.cli._source import Source  # noqa: E402
from parzen.store import Experiment, InMemoryTrialStore, TrialStore  # noqa: E402
from parzen.trial import ErrorInfo, Owner, Trial, TrialState  # noqa: E402
from tests.support.browser import Browser  # noqa: E402
from tests.support.dashboard import serving  # noqa: E402

KEY = "bench-20k"


def fill(store: TrialStore, n: int, seed: int = 0) -> None:
    """``n`` finished trials (5% failed) of a 6-parameter space, from 32 workers, written as
    fmin's imports are (``insert_new`` keeps a finished trial's state)."""
    rng = random.Random(seed)
    now = store.now()
    store.put_experiment(Experiment(KEY, max_evals=n + 1000,
                                    settings={"heartbeat_s": 10.0, "lease_s": 60.0}))
    tids = store.allocate_tids(KEY, n)
    batch: list[Trial] = []
    for tid in tids:
        params = {"lr": 10 ** rng.uniform(-5, -1), "layers": float(rng.randint(1, 8)),
                  "dropout": rng.uniform(0, 0.6), "act": rng.randint(0, 2),
                  "batch": float(2 ** rng.randint(4, 9)), "wd": 10 ** rng.uniform(-6, -2)}
        start = now - timedelta(seconds=(n - tid) * 0.5)
        owner = Owner(f"node-{tid % 32}/slot-{tid % 4}", f"node-{tid % 32}", 1000 + tid % 32)
        if rng.random() < 0.05:
            state, result = TrialState.ERROR, {"status": "fail"}
            error = ErrorInfo("RuntimeError", f"CUDA out of memory at batch {params['batch']:g}",
                              "Traceback (most recent call last):\n  ...\nRuntimeError: CUDA")
        else:
            loss = (abs(params["lr"] - 3e-3) * 100 + 0.05 * params["layers"]
                    + params["dropout"] * 0.3 + rng.gauss(0, 0.02) + 0.5)
            state, result, error = TrialState.DONE, {"status": "ok", "loss": loss}, None
        batch.append(Trial(KEY, tid, state, params, result=result, attempts=1, owner=owner,
                           created=start, book_time=start, heartbeat_time=start,
                           end_time=start + timedelta(seconds=0.4), error=error))
        if len(batch) == 1000:
            store.insert_new(batch)
            batch = []
    store.insert_new(batch)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--trials", type=int, default=20_000)
    p.add_argument("--updates", type=int, default=20)
    args = p.parse_args()

    store = InMemoryTrialStore()
    t0 = time.perf_counter()
    fill(store, args.trials)
    print(f"stored {args.trials} trials in {time.perf_counter() - t0:.1f} s")
    with serving(opened=Source(store=store, where="memory")) as d:
        page = d.url
        done = sum(1 for t in store.find(KEY, states=[TrialState.DONE]))
        history = f"{page}#/exp/{KEY}/history"
        ready = (f"document.querySelector('#history-plot canvas') && document.querySelector("
                 f"'#history-plot').dataset.points === '{done}'")
        with Browser(width=1280, height=860) as b:
            for label in ("cold", "warm"):
                b.open("about:blank")
                start = time.perf_counter()
                b.open(history)
                b.wait_for(ready, timeout_s=120, every_s=0.01)
                load = time.perf_counter() - start
                print(f"page load, {label}: {load:.2f} s from navigation to the history plot "
                      f"drawn with {done} points")

            start = time.perf_counter()
            b.js(f"location.hash = '#/exp/{KEY}/trials'")
            b.wait_for(f"document.querySelector('#trial-count') && document.querySelector("
                       f"'#trial-count').innerText.endsWith('of {args.trials} trials')",
                       timeout_s=60, every_s=0.01)
            table_s = time.perf_counter() - start
            sort_ms = b.js("(() => { const t = performance.now(); document.querySelector("
                           "'th[data-col=loss]').click(); return performance.now() - t; })()")
            print(f"trial table: {table_s:.2f} s to show {args.trials} rows; "
                  f"sorting them by loss: {sort_ms:.0f} ms")

            b.js(f"location.hash = '#/exp/{KEY}/history'")
            b.wait_for(ready, timeout_s=60)
            latencies = []
            rng = random.Random(1)
            for i in range(args.updates):
                time.sleep(rng.uniform(0, 1))
                tid = store.allocate_tids(KEY, 1)[0]
                store.insert_new([Trial(KEY, tid, TrialState.NEW, {"lr": 3e-3})])
                t = store.claim(KEY, tid, Owner("live/slot-1", "live", 1), 60)
                assert t is not None and t.claim_token
                store.finish(KEY, tid, t.claim_token, TrialState.DONE,
                             {"status": "ok", "loss": 0.5 - i * 1e-3})
                stored = time.perf_counter()
                b.wait_for(f"window.parzenDash.exp.trials.get({tid})?.state === 'done' && "
                           f"document.querySelector('#history-plot').dataset.points === "
                           f"'{done + i + 1}'", timeout_s=30, every_s=0.005)
                latencies.append(time.perf_counter() - stored)
            lat = sorted(latencies)
            p95 = lat[min(len(lat) - 1, round(0.95 * (len(lat) - 1)))]
            print(f"update latency over {len(lat)} results: median "
                  f"{statistics.median(lat):.2f} s, p95 {p95:.2f} s, max {lat[-1]:.2f} s "
                  "(the page polls twice a second)")

        view = d.dashboard.views[KEY]
        with urllib.request.urlopen(f"{page}api/exp/{KEY}?since=", timeout=60) as r:
            since = json.loads(r.read())["since"]
        reads = view.reads.trials_read
        costs = []
        for _ in range(10):
            time.sleep(0.45)  # past the refresh interval: every poll reads the store
            start = time.perf_counter()
            with urllib.request.urlopen(f"{page}api/exp/{KEY}?since={since}", timeout=60) as r:
                body = json.loads(r.read())
            costs.append(time.perf_counter() - start)
        print(f"a poll with nothing new: median {statistics.median(costs) * 1000:.0f} ms, "
              f"{len(body['rows'])} rows sent, {view.reads.trials_read - reads} trials read "
              f"from the store in 10 polls; store reads in the run: {view.reads.full} whole, "
              f"{view.reads.incremental} incremental")
    return 0


if __name__ == "__main__":
    sys.exit(main())
