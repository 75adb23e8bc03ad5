"""Distributed throughput benchmark: MongoTrials + ``parzen worker`` + Redis + wire test server.

Measures, against the wire-protocol test double (``tests/support/wire_server.py``, run as a separate
process so its CPU is accounted apart) and the local Redis, with 2 workers x 4 slots:

util      worker busy time / wall time, 0.5 s sleeping trials on 8 slots, parallelism 16,
          fresh workers each repeat: with and without the warm-up (sandbox start-up); and
          once more, warm, with parallelism = slots.
lat       dispatch-to-claim (``send_task`` called -> the trial's ``book_time``), no-op
          objective, parallelism 1 on idle workers: the pipeline, not queueing.
tp        trials/s with a no-op objective at parallelism 16 and 64; CPU per trial of every
          process (coordinator, wire double, workers, sandboxes, Redis); the coordinator loop.
payload   the same with a 3 MB pickled objective (stored inline in the experiment document).
coord     coordinator time per trial with n = 100, 1,000, 10,000 completed trials
          (pre-populated in the store), split into sampler / blocked on the store / blocked
          on Redis / the loop's own work, with rand and tpe; plus each store call's latency
          and the double's CPU for it, called directly at each n.

    .venv/bin/python bench/throughput.py            # ~4-5 min on a busy 2-core box
    .venv/bin/python bench/throughput.py --quick    # ~1.5 min: fewer trials, 1 repeat
    .venv/bin/python bench/throughput.py --phases coord --n 100,10000

Writes bench/results/throughput.json and .txt (or --out). Uses Redis db 13 by default and a
private queue whose keys are deleted at the end; never flushes anything.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import _throughput_objectives as objectives  # noqa: E402
from _meta import base_meta  # noqa: E402
from _throughput_cluster import (  # noqa: E402
    SECRET,
    WireProcess,
    Workers,
    clean_queue,
    redis_cpu,
)
from _throughput_probe import BenchMongoTrials, Probe  # noqa: E402

from parzen import fmin, hp  # noqa: E402
from parzen.samplers.rand import RandomSampler  # noqa: E402
from parzen.samplers.tpe import suggest as tpe_suggest  # noqa: E402

RESULTS_DIR = BENCH_DIR / "results"
TARGET_UTIL = 0.95
TARGET_D2C_P50_MS = 20.0
TARGET_COORD_RATIO = 1.5
SAMPLERS: dict[str, Callable[[], Any]] = {
    "rand": RandomSampler,
    "tpe": tpe_suggest.make,
}


def space(sleep: float | None = None) -> dict[str, Any]:
    s: dict[str, Any] = {"x": hp.uniform("x", -1, 1), "y": hp.uniform("y", -1, 1)}
    if sleep is not None:
        s["sleep"] = sleep
    return s


# ---- small statistics -------------------------------------------------------------------

def pct(xs: Sequence[float], q: float) -> float | None:
    return float(np.percentile(xs, q)) if len(xs) else None


def med(xs: Sequence[float | None]) -> float | None:
    ys = [x for x in xs if x is not None]
    return float(statistics.median(ys)) if ys else None


def ts(d: Any) -> float | None:
    return None if d is None else d.timestamp()


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]
    return float(sum(parts) - idle), float(sum(parts))


# ---- one fmin run -----------------------------------------------------------------------

class Env:
    """The wire server, Redis and the current set of workers."""

    def __init__(self, args: argparse.Namespace) -> None:
        import redis

        self.args = args
        self.wire = WireProcess()
        self.redis = redis.Redis.from_url(args.redis)
        self.redis.ping()
        # kombu keys shared by every Celery app on this db; we remove only those we created.
        self._shared = {k for k in ("_kombu.binding_deadlines", "_kombu.binding.celery.pidbox")
                        if not self.redis.exists(k)}
        self.workers: Workers | None = None
        self.db = ""
        from pymongo import MongoClient

        self.client: Any = MongoClient(self.wire.url, tz_aware=True)

    def start_workers(self, db: str) -> float:
        self.stop_workers()
        self.db = db
        self.workers = Workers(self.wire.db_url(db), self.args.redis, self.args.worker_loglevel)
        t0 = time.perf_counter()
        self.workers.start(self.args.workers, self.args.slots)
        return time.perf_counter() - t0

    def stop_workers(self) -> None:
        if self.workers is not None:
            self.workers.stop()
            clean_queue(self.redis, self.workers.queue)
            self.workers = None

    def close(self) -> None:
        self.stop_workers()
        if self._shared:
            self.redis.delete(*self._shared)
        self.client.close()
        self.wire.stop()

    def cpu(self) -> dict[str, float]:
        assert self.workers is not None
        w_own, w_kids = self.workers.cpu()
        busy, total = machine_cpu()
        return {"coordinator": time.process_time(), "wire": self.wire.cpu(),
                "workers": w_own, "sandboxes": w_kids, "redis": redis_cpu(self.redis),
                "machine_busy": busy, "machine_total": total, "wall": time.perf_counter()}


def run_fmin(env: Env, exp_key: str, fn: Callable[..., Any], sp: Mapping[str, Any],
             max_evals: int, parallelism: int, algo: str = "rand") -> dict[str, Any]:
    """One fmin over MongoTrials with a Probe; returns the probe, the trial docs and CPU."""
    assert env.workers is not None
    probe = Probe()
    trials = BenchMongoTrials(env.wire.db_url(env.db), exp_key=exp_key, probe=probe,
                              broker=env.args.redis, secret=SECRET,
                              queue=env.workers.queue, parallelism=parallelism,
                              poll_interval=env.args.poll_interval)
    cpu0 = env.cpu()
    t0 = time.perf_counter()
    probe.start_gc_watch()
    try:
        fmin(fn, sp, algo=probe.algo(SAMPLERS[algo]), max_evals=max_evals, trials=trials,
             show_progressbar=False, rstate=np.random.default_rng(0))
    finally:
        probe.stop_gc_watch()
    wall = time.perf_counter() - t0
    cpu1 = env.cpu()
    trials.close()
    docs = list(env.client[env.db].trials.find({"exp_key": exp_key}))
    cpu = {k: cpu1[k] - cpu0[k] for k in cpu0}
    return {"probe": probe, "docs": docs, "wall": wall, "cpu": cpu,
            "parallelism": parallelism, "poll_interval": env.args.poll_interval}


def timeline(run: Mapping[str, Any], only_new: bool = True) -> list[dict[str, float]]:
    """Per trial published in this run: wall-clock times of each step, epoch seconds."""
    probe: Probe = run["probe"]
    rows = []
    for d in run["docs"]:
        tid = d["tid"]
        if only_new and tid not in probe.publish:
            continue
        r = d.get("result") or {}
        rows.append({"tid": tid, "created": ts(d.get("created")), "pub": probe.publish.get(tid),
                     "book": ts(d.get("book_time")), "t0": r.get("t0"), "t1": r.get("t1"),
                     "end": ts(d.get("end_time")), "noticed": probe.noticed.get(tid),
                     "slot": (d.get("owner") or {}).get("worker"), "state": d.get("state")})
    return sorted(rows, key=lambda r: r["tid"])


def steps_ms(rows: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    """Median milliseconds of each step of a trial's life."""
    def m(a: str, b: str) -> float | None:
        xs = [(r[b] - r[a]) * 1e3 for r in rows if r[a] is not None and r[b] is not None]
        return med(xs)

    return {"publish->book": m("pub", "book"), "book->obj_start": m("book", "t0"),
            "objective": m("t0", "t1"), "obj_end->end": m("t1", "end"),
            "end->noticed": m("end", "noticed")}


def cpu_per_trial_ms(cpu: Mapping[str, float], n: int) -> dict[str, float]:
    out = {k: cpu[k] / n * 1e3 for k in ("coordinator", "wire", "workers", "sandboxes", "redis")}
    out["machine_busy_frac"] = cpu["machine_busy"] / max(cpu["machine_total"], 1.0)
    out["cores_used"] = out["machine_busy_frac"] * (os.cpu_count() or 1)
    return out


def cleanup(env: Env, exp_key: str) -> None:
    env.client[env.db].trials.delete_many({"exp_key": exp_key})
    env.client[env.db].experiments.delete_one({"_id": exp_key})


def sync_clocks(env: Env, max_trials: int = 60) -> int:
    """Run no-op trials one at a time until every worker process has claimed one.

    A worker's store anchors its estimate of the server clock (``_ServerClock``) on its first
    claim, to the midpoint of one ``hello`` round trip. On a cold worker whose slots all claim
    at once while their sandbox children start, that round trip is stretched (new connections,
    GIL and CPU contention) and the estimate lags the real clock by up to tens of ms until the
    next resync (60 s), which skews book_time and end_time against the coordinator's clock. One
    claim at a time on an idle worker anchors within ~1 ms. Returns how many trials it took.
    """
    assert env.workers is not None
    want = {p.pid for p in env.workers.procs}
    key = f"sync-{uuid.uuid4().hex[:6]}"
    seen: set[int] = set()
    n = 0
    while seen != want and n < max_trials:
        n += 4
        run_fmin(env, key, objectives.noop, space(), n, 1)
        seen = {int((d.get("owner") or {}).get("pid") or 0)
                for d in env.client[env.db].trials.find({"exp_key": key})}
    cleanup(env, key)
    return n


def warm_up(env: Env) -> None:
    """Anchor every worker's clock, then start every slot's sandbox child (one sleeping trial
    per slot, all at once)."""
    sync_clocks(env)
    slots = env.args.workers * env.args.slots
    key = f"warm-{uuid.uuid4().hex[:6]}"
    run_fmin(env, key, objectives.sleeper, space(0.3), slots * 2, slots)
    cleanup(env, key)


# ---- phase 1: utilisation ---------------------------------------------------------------

def utilisation(rows: Sequence[Mapping[str, Any]], slots: int) -> dict[str, Any]:
    """Busy (book->end) and objective (t0->t1) time over slot-seconds, in two windows:

    - with warm-up: from the first publish to the last claim (after the last claim slots
      only drain, which is the run's end, not its throughput);
    - steady state: from the moment every slot has finished its first trial (sandbox start-up
      over) to the last claim.
    """
    rows = [r for r in rows if r["book"] is not None and r["end"] is not None]
    first_end: dict[str, float] = {}
    for r in sorted(rows, key=lambda r: r["end"]):
        first_end.setdefault(r["slot"], r["end"])
    t_last_book = max(r["book"] for r in rows)
    start = min(r["pub"] for r in rows)
    steady = max(first_end.values())

    def frac(lo: float, hi: float, a: str, b: str) -> float | None:
        if hi <= lo:
            return None
        busy = sum(max(0.0, min(r[b], hi) - max(r[a], lo)) for r in rows
                   if r[a] is not None and r[b] is not None)
        return float(busy / (slots * (hi - lo)))

    return {"slots_seen": len(first_end), "window_warm_s": t_last_book - start,
            "window_steady_s": t_last_book - steady,
            "busy_warm": frac(start, t_last_book, "book", "end"),
            "busy_steady": frac(steady, t_last_book, "book", "end"),
            "objective_warm": frac(start, t_last_book, "t0", "t1"),
            "objective_steady": frac(steady, t_last_book, "t0", "t1"),
            "warmup_s": steady - start}


def phase_utilisation(env: Env, out: dict[str, Any]) -> None:
    a = env.args
    slots = a.workers * a.slots
    runs = []
    for rep in range(a.repeats):
        start_s = env.start_workers(f"tp_util_{rep}_{uuid.uuid4().hex[:4]}")  # cold workers
        key = f"util-{rep}"
        run = run_fmin(env, key, objectives.sleeper, space(a.util_sleep), a.util_trials,
                       a.util_parallelism)
        rows = timeline(run)
        u = utilisation(rows, slots)
        u.update(parallelism=a.util_parallelism, cold=True, worker_start_s=start_s,
                 clock_check_min_end_minus_obj_end_ms=min((r["end"] - r["t1"]) * 1e3
                                                          for r in rows),
                 steps_ms=steps_ms(rows), cpu_ms_per_trial=cpu_per_trial_ms(run["cpu"],
                                                                            len(rows)))
        runs.append(u)
        print(f"  utilisation rep {rep}: busy {u['busy_warm']:.3f} (warm-up incl.) "
              f"{u['busy_steady']:.3f} (steady), objective {u['objective_steady']:.3f}",
              flush=True)
    # The same, warm, with parallelism = slots: the queue refills only when the coordinator
    # polls, so each slot idles for the poll and dispatch round trip between trials.
    key = "util-eq"
    run = run_fmin(env, key, objectives.sleeper, space(a.util_sleep), a.util_trials, slots)
    rows = timeline(run)
    eq = utilisation(rows, slots)
    eq.update(parallelism=slots, cold=False, steps_ms=steps_ms(rows))
    print(f"  utilisation parallelism={slots}: busy {eq['busy_steady']:.3f} (steady)",
          flush=True)
    env.stop_workers()
    keys = ("busy_warm", "busy_steady", "objective_warm", "objective_steady", "warmup_s")
    out["utilisation"] = {"runs": runs, "parallelism_eq_slots": eq,
                          "median": {k: med([r[k] for r in runs]) for k in keys},
                          "trials": a.util_trials, "sleep_s": a.util_sleep, "slots": slots}


# ---- phases 2 and 3: latency, throughput --------------------------------------------------

def throughput_stats(run: Mapping[str, Any], slots: int) -> dict[str, Any]:
    """Rates, per-process CPU, per-trial steps and the coordinator loop of one no-op run.

    ``poll_bound`` is parallelism / the loop's median period (its work plus its wait, which a
    worker's wake-up push cuts short of the poll interval): the most the loop can sustain
    when every queued trial finishes within one iteration.
    """
    rows = timeline(run)
    ends = sorted(r["end"] for r in rows if r["end"])
    first_pub = min(r["pub"] for r in rows)
    lo, hi = int(0.1 * len(ends)), int(0.9 * len(ends)) - 1
    probe: Probe = run["probe"]
    iters = probe.iterations()
    steady = iters[1:-1] or iters
    period = med([i["period"] for i in steady])
    period_ms = None if period is None else period * 1e3
    win_lo, win_hi = ends[lo], ends[hi]
    busy = sum(max(0.0, min(r["end"], win_hi) - max(r["book"], win_lo)) for r in rows
               if r["book"] and r["end"])
    d2c = [(r["book"] - r["pub"]) * 1e3 for r in rows if r["book"] and r["pub"]]
    return {"trials": len(rows), "wall_s": run["wall"],
            "rate_e2e": len(ends) / (ends[-1] - first_pub),
            "rate_steady": (hi - lo) / (win_hi - win_lo),
            "fmin_rate": len(rows) / run["wall"],
            "slot_busy": busy / (slots * (win_hi - win_lo)),
            "steps_ms": steps_ms(rows),
            "publish_to_book_p50_ms": pct(d2c, 50), "publish_to_book_p95_ms": pct(d2c, 95),
            "cpu_ms_per_trial": cpu_per_trial_ms(run["cpu"], len(rows)),
            "loop_iterations": len(iters),
            "trials_per_iteration": len(rows) / max(1, len(iters)),
            "loop_period_ms": period_ms,
            "poll_bound": None if period_ms is None else run["parallelism"] / period_ms * 1e3,
            "coordinator_ms_per_trial": _split(iters),
            "clock_check_min_end_minus_obj_end_ms":
                min((r["end"] - r["t1"]) * 1e3 for r in rows if r["end"] and r["t1"])}


def phase_latency_throughput(env: Env, out: dict[str, Any], phases: set[str]) -> None:
    a = env.args
    slots = a.workers * a.slots
    env.start_workers(f"tp_pipe_{uuid.uuid4().hex[:4]}")
    warm_up(env)
    if "lat" in phases:
        d2c: list[float] = []
        lat_runs = []
        for rep in range(a.repeats):
            key = f"lat-{rep}"
            run = run_fmin(env, key, objectives.noop, space(), a.lat_trials, 1)
            rows = timeline(run)
            xs = [(r["book"] - r["pub"]) * 1e3 for r in rows if r["book"] and r["pub"]]
            d2c += xs
            lat_runs.append({"p50_ms": pct(xs, 50), "p95_ms": pct(xs, 95),
                             "steps_ms": steps_ms(rows),
                             "clock_check_min_end_minus_obj_end_ms":
                                 min((r["end"] - r["t1"]) * 1e3 for r in rows),
                             "publish_call_ms": run["probe"].total("publish")[0]
                             / max(1, run["probe"].total("publish")[2]) * 1e3})
            cleanup(env, key)
        out["latency"] = {"runs": lat_runs, "p50_ms": pct(d2c, 50), "p95_ms": pct(d2c, 95),
                          "p99_ms": pct(d2c, 99), "n": len(d2c), "parallelism": 1,
                          "steps_ms": {k: med([r["steps_ms"][k] for r in lat_runs])
                                       for k in lat_runs[0]["steps_ms"]},
                          "clock_check_min_end_minus_obj_end_ms":
                              min(r["clock_check_min_end_minus_obj_end_ms"] for r in lat_runs),
                          "publish_call_ms": med([r["publish_call_ms"] for r in lat_runs])}
        print(f"  dispatch-to-claim p50 {out['latency']['p50_ms']:.1f} ms, "
              f"p95 {out['latency']['p95_ms']:.1f} ms ({len(d2c)} trials)", flush=True)
    if "tp" in phases:
        out["throughput"] = {}
        for par in a.tp_parallelism:
            tp_runs = []
            for rep in range(a.repeats):
                key = f"tp-{par}-{rep}"
                run = run_fmin(env, key, objectives.noop, space(), a.tp_trials, par)
                tp_runs.append(throughput_stats(run, slots))
                t = tp_runs[-1]
                print(f"  throughput p={par} rep {rep}: {t['rate_steady']:.1f} trials/s steady;"
                      f" slots busy {t['slot_busy']:.0%}; machine busy "
                      f"{t['cpu_ms_per_trial']['machine_busy_frac']:.0%}", flush=True)
                cleanup(env, key)
            keys = ("rate_steady", "rate_e2e", "fmin_rate", "slot_busy", "loop_period_ms",
                    "trials_per_iteration", "poll_bound")
            out["throughput"][str(par)] = {
                "runs": tp_runs, "parallelism": par, "slots": slots,
                "median": {k: med([r[k] for r in tp_runs]) for k in keys},
                "cpu_ms_per_trial": {k: med([r["cpu_ms_per_trial"][k] for r in tp_runs])
                                     for k in tp_runs[0]["cpu_ms_per_trial"]},
                "steps_ms": {k: med([r["steps_ms"][k] for r in tp_runs])
                             for k in tp_runs[0]["steps_ms"]},
                "coordinator_ms_per_trial": {
                    k: med([r["coordinator_ms_per_trial"][k] for r in tp_runs])
                    for k in tp_runs[0]["coordinator_ms_per_trial"]}}
    if "payload" in phases:
        phase_payload(env, out)
    env.stop_workers()


def phase_payload(env: Env, out: dict[str, Any]) -> None:
    """No-op throughput when the pickled objective is large (a closure over data): payloads up
    to 4 MB are stored inline in the experiment document, which every worker reads in full
    (``get_experiment``) for every trial it is sent."""
    from parzen.store._mongo import MongoTrialStore

    a = env.args
    slots = a.workers * a.slots
    store = MongoTrialStore.from_url(env.wire.db_url(env.db))
    res = {}
    par = a.tp_parallelism[-1]
    for mb in a.payload_mb:
        key = f"payload-{mb:g}"
        fn = functools.partial(objectives.noop_with_blob, blob=bytes(int(mb * 1e6)))
        run = run_fmin(env, key, fn, space(), a.payload_trials, par)
        st = throughput_stats(run, slots)
        walls = []
        for _ in range(a.op_reps):
            t0 = time.perf_counter()
            store.get_experiment(key)
            walls.append((time.perf_counter() - t0) * 1e3)
        st["get_experiment_ms"] = float(np.median(walls))
        res[f"{mb:g}"] = st
        print(f"  payload {mb:g} MB: {st['rate_steady']:.1f} trials/s, wire CPU "
              f"{st['cpu_ms_per_trial']['wire']:.2f} ms/trial, get_experiment "
              f"{st['get_experiment_ms']:.2f} ms", flush=True)
        cleanup(env, key)
    store.close()
    out["payload"] = {"by_mb": res, "parallelism": par, "trials": a.payload_trials}


# ---- phase 4: coordinator time per trial at n ----------------------------------------------

def prepopulate(env: Env, db: str, exp_key: str, n: int, seed: int = 0) -> float:
    """Bulk-insert ``n`` DONE trials and the experiment document, before any MongoTrialStore
    has created the indexes (the double checks unique indexes by scanning the collection on
    every insert, which would make this quadratic). Returns seconds taken."""
    from parzen.store._base import Experiment
    from parzen.store._documents import experiment_fields, trial_to_doc
    from parzen.trial import Owner, Trial, TrialState

    rng = np.random.default_rng(seed)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    owner = Owner("prepopulated", "localhost", 0)
    t0 = time.perf_counter()
    docs = []
    for tid in range(n):
        x, y = rng.uniform(-1, 1, 2)
        docs.append(trial_to_doc(Trial(
            exp_key, tid, TrialState.DONE, {"x": float(x), "y": float(y)},
            result={"status": "ok", "loss": float(x * x + y * y)}, attempts=1, owner=owner,
            created=now, book_time=now, end_time=now, origin="prepopulated")))
    coll = env.client[db].trials
    for i in range(0, n, 2000):
        coll.insert_many(docs[i:i + 2000])
    env.client[db].experiments.insert_one(
        {"_id": exp_key, **experiment_fields(Experiment(exp_key)), "next_tid": n,
         "driver": None, "created": now})
    return time.perf_counter() - t0


def reset_experiment(env: Env, exp_key: str, n: int) -> None:
    """Drop the trials a continuation added, so the next one starts at n completed again."""
    env.client[env.db].trials.delete_many({"exp_key": exp_key, "tid": {"$gte": n}})
    env.client[env.db].experiments.update_one({"_id": exp_key},
                                              {"$set": {"next_tid": n, "driver": None}})


def store_ops(env: Env, exp_key: str, n: int, reps: int) -> dict[str, dict[str, float]]:
    """Latency (wall, ms) and the wire double's CPU (ms) of each store call the coordinator
    and the workers make, called directly with nothing else running."""
    from parzen.store._mongo import MongoTrialStore
    from parzen.trial import Owner, Trial, TrialState

    store = MongoTrialStore.from_url(env.wire.db_url(env.db))
    probe_key = f"{exp_key}-probe"
    owner = Owner("bench", "localhost", os.getpid())
    tids = list(range(max(0, n - 16), n))
    base = 10**6
    claimed: list[Any] = []
    ops: dict[str, Callable[[int], Any]] = {
        "ping": lambda i: store._db.command("ping"),
        "get_experiment": lambda i: store.get_experiment(exp_key),
        "get_many(16)": lambda i: store.get_many(exp_key, tids),
        "requeue_expired": lambda i: store.requeue_expired(exp_key, 3),
        "allocate_tids": lambda i: store.allocate_tids(probe_key, 1),
        "insert_new(1)": lambda i: store.insert_new(
            [Trial(probe_key, base + i, TrialState.NEW, {"x": 0.0, "y": 0.0})]),
        "claim": lambda i: claimed.append(store.claim(probe_key, base + i, owner, 60)),
        "finish": lambda i: store.finish(probe_key, base + i, claimed[i].claim_token,
                                         TrialState.DONE, {"status": "ok", "loss": 0.0}),
    }
    out = {}
    for name, call in ops.items():
        walls = []
        c0 = env.wire.cpu()
        for i in range(reps):
            t0 = time.perf_counter()
            call(i)
            walls.append((time.perf_counter() - t0) * 1e3)
        out[name] = {"wall_ms": float(np.median(walls)),
                     "wire_cpu_ms": (env.wire.cpu() - c0) / reps * 1e3}
    store.close()
    cleanup(env, probe_key)
    return out


def _split(iters: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """ms per published trial over ``iters``: total loop work, sampler, blocked on the store,
    blocked on Redis, and the rest (own), in wall time; own and total also in CPU time."""
    n = max(1, sum(int(i["published"]) for i in iters))

    def total(key: str) -> float:
        return sum(i[key] for i in iters)

    own_wall = (total("work_wall") - total("sampler_wall") - total("store_wait")
                - total("publish_wait"))
    per = {"total_wall": total("work_wall"), "total_cpu": total("work_cpu"),
           "sampler_wall": total("sampler_wall"), "sampler_cpu": total("sampler_cpu"),
           "store_wait": total("store_wait"), "publish_wait": total("publish_wait"),
           "own_wall": own_wall, "own_cpu": total("work_cpu") - total("sampler_cpu")}
    return {k: v / n * 1e3 for k, v in per.items()}


def coordinator_breakdown(run: Mapping[str, Any]) -> dict[str, Any]:
    """The loop's cost per trial: in the steady state (every iteration after the first one),
    in the first iteration without the first refresh (it prepares the experiment and builds
    the sampler's history of all n trials, once per fmin call), and at start-up (the first
    refresh reads all n trials)."""
    probe: Probe = run["probe"]
    iters = probe.iterations()
    steady = iters[1:]
    n_steady = sum(int(i["published"]) for i in steady)
    n_all = sum(int(i["published"]) for i in iters)
    busy = [i for i in steady if i["published"] > 0]
    idle = [i for i in steady if i["published"] == 0]
    first = iters[0] if iters else None
    sections = {}
    for name in ("maintain", "refresh", "suggest", "sampler", "allocate", "insert", "dispatch",
                 "store.get_many", "store.requeue_expired", "store.allocate_tids",
                 "store.insert_new", "store.acquire_driver"):
        w, c, calls = probe.total(name)
        sections[name] = {"wall_ms_per_trial": w / max(n_all, 1) * 1e3,
                          "cpu_ms_per_trial": c / max(n_all, 1) * 1e3, "calls": calls}
    w, c = probe.initial_refresh or (0.0, 0.0)
    init_cpu = c
    return {
        "trials": n_all, "steady_trials": n_steady, "iterations": len(iters),
        "steady_iterations": len(steady), "idle_iterations": len(idle),
        "steady_ms_per_trial": _split(steady),
        "all_ms_per_trial": _split(iters),
        "own_cpu_ms_per_busy_iteration": med([(i["work_cpu"] - i["sampler_cpu"]) * 1e3
                                              for i in busy]),
        "own_cpu_ms_per_idle_iteration": med([i["work_cpu"] * 1e3 for i in idle]),
        "first_iteration_ms": None if first is None else {
            "own_cpu": (first["work_cpu"] - first["sampler_cpu"] - init_cpu) * 1e3,
            "sampler_cpu": first["sampler_cpu"] * 1e3,
            "store_wait": (first["store_wait"] - (w - c)) * 1e3,
            "published": first["published"]},
        "startup_refresh_ms": {"wall": w * 1e3, "cpu": c * 1e3},
        "setup_ms": probe.setup_wall * 1e3,
        "sections": sections,
        "wire_cpu_ms_per_trial": run["cpu"]["wire"] / max(n_all, 1) * 1e3,
        "coordinator_process_cpu_ms_per_trial": run["cpu"]["coordinator"] / max(n_all, 1) * 1e3,
        "wall_s": run["wall"],
        "steady_iterations_raw": [
            {"own_cpu_ms": round((i["work_cpu"] - i["sampler_cpu"]) * 1e3, 3),
             "own_wall_ms": round((i["work_wall"] - i["sampler_wall"] - i["store_wait"]
                                   - i["publish_wait"]) * 1e3, 3),
             "store_wait_ms": round(i["store_wait"] * 1e3, 3),
             "gc_ms": round(i["gc"] * 1e3, 3),
             "published": int(i["published"])} for i in steady],
        "gc": {str(g): {"collections": int(v[0]), "ms": v[1] * 1e3}
               for g, v in probe.gc.items()},
        "steady_gc_ms_per_trial": sum(i["gc"] for i in steady) / max(n_steady, 1) * 1e3,
    }


def own_fit(runs: Sequence[Mapping[str, Any]], batch: int) -> dict[str, float | None]:
    """Least-squares fit of the loop's own CPU per steady iteration against the trials it
    published: own = fixed + per_trial * k, pooled over repeats. ``at_batch`` is the own CPU
    per trial when every iteration refills ``batch`` trials, which removes the effect of how
    many trials happened to finish per poll (fewer when the double makes workers slow)."""
    pts = [(it["published"], it["own_cpu_ms"]) for r in runs for it in r["steady_iterations_raw"]]
    ks = np.array([k for k, _ in pts], dtype=float)
    ys = np.array([y for _, y in pts], dtype=float)
    if len(pts) < 3 or np.ptp(ks) == 0:
        return {"fixed_ms_per_iteration": None, "ms_per_trial": None, "at_batch": None,
                "points": len(pts)}
    slope, intercept = np.polyfit(ks, ys, 1)
    return {"fixed_ms_per_iteration": float(intercept), "ms_per_trial": float(slope),
            "at_batch": float(intercept / batch + slope), "batch": batch, "points": len(pts)}


def loop_replay(env: Env, exp_key: str, n: int, algo: str, iterations: int,
                batch: int) -> dict[str, Any]:
    """The fmin loop's steps, driven by hand on an experiment with n completed trials while the
    workers idle, so the wire double never runs concurrently with the coordinator (in the live
    runs at n = 10,000 it keeps one of the two cores busy, which slows every CPU-bound step of
    the coordinator, n-independent ones such as Celery's send_task included).

    Each iteration is what a steady-state loop iteration does when ``batch`` trials finished:
    maintain, refresh (reads the ``batch`` trials in flight, now finished), count, allocate
    tids, suggest, maintain, insert, publish (to a queue no worker reads). Between iterations,
    untimed, the trials just inserted are marked done in the store as a worker would.
    """
    from parzen.coordinator import RunSettings, algo_seed, count
    from parzen.domain import Domain
    from parzen.runners import Closing, build_runner

    probe = Probe()
    queue = f"bench-tp-replay-{uuid.uuid4().hex[:8]}"
    trials = BenchMongoTrials(env.wire.db_url(env.db), exp_key=exp_key, probe=probe,
                              broker=env.args.redis, secret=SECRET, queue=queue,
                              parallelism=batch, poll_interval=env.args.poll_interval)
    domain = Domain(objectives.noop, space())
    settings = RunSettings(max_evals=n + batch * (iterations + 2), timeout=None,
                           loss_threshold=None, max_queue_len=batch, early_stop_fn=None,
                           show_progressbar=False)
    runner = build_runner(trials.backend(), trials, domain, catch_eval_exceptions=False,
                          max_evals=settings.max_evals)
    suggest = probe.algo(SAMPLERS[algo])
    rstate = np.random.default_rng(0)
    coll = env.client[env.db].trials

    def finish_all(tids: Sequence[int]) -> None:
        now = datetime.now(timezone.utc)
        coll.update_many({"exp_key": exp_key, "tid": {"$in": list(tids)}},
                         {"$set": {"state": "done", "book_time": now, "end_time": now,
                                   "attempts": 1, "duration_s": 0.0,
                                   "result": {"status": "ok", "loss": 0.5}}})

    rows = []
    probe.start_gc_watch()
    try:
        runner.start()
        trials.refresh()
        tids: list[int] = []
        for i in range(iterations + 1):
            s0 = probe.snapshot()
            runner.maintain()
            trials.refresh()
            count(trials)
            tids = trials.new_trial_ids(batch)
            docs = suggest(tids, domain, trials, algo_seed(rstate, tids[0]))
            runner.maintain()
            runner.dispatch(trials.insert_trial_docs(docs))
            s1 = probe.snapshot()
            if i > 0:  # the first iteration builds the sampler's history of all n trials
                rows.append({"work_cpu": s1.cpu - s0.cpu, "work_wall": s1.wall - s0.wall,
                             "sampler_cpu": s1.sampler_cpu - s0.sampler_cpu,
                             "store_wait": (s1.store_wall - s0.store_wall)
                             - (s1.store_cpu - s0.store_cpu),
                             "publish_cpu": s1.publish_cpu - s0.publish_cpu,
                             "gc": s1.gc - s0.gc})
            finish_all(tids)
        trials.refresh()
        runner.close(Closing.FINISHED)
    finally:
        probe.stop_gc_watch()
        trials.close()
        clean_queue(env.redis, queue)
        reset_experiment(env, exp_key, n)

    def per_trial(key: str) -> float | None:
        return med([r[key] / batch * 1e3 for r in rows])

    return {"own_cpu": med([(r["work_cpu"] - r["sampler_cpu"]) / batch * 1e3 for r in rows]),
            "sampler_cpu": per_trial("sampler_cpu"), "publish_cpu": per_trial("publish_cpu"),
            "store_wait": per_trial("store_wait"), "work_wall": per_trial("work_wall"),
            "gc_ms_per_trial": per_trial("gc"), "iterations": len(rows), "batch": batch,
            "gc": {str(g): {"collections": int(v[0]), "ms": v[1] * 1e3}
                   for g, v in probe.gc.items()}}


def phase_coordinator(env: Env, out: dict[str, Any]) -> None:
    a = env.args
    res: dict[str, Any] = {}
    for n in a.n:
        db = f"tp_coord_{n}_{uuid.uuid4().hex[:4]}"
        key = f"coord-{n}"
        prep_s = prepopulate(env, db, key, n)
        env.start_workers(db)
        warm_up(env)
        ops = store_ops(env, key, n, a.op_reps)
        row: dict[str, Any] = {"prepopulate_s": prep_s, "store_ops": ops}
        for algo in a.algos:
            replay = loop_replay(env, key, n, algo, a.replay_iterations, a.tp_parallelism[0])
            runs = []
            for _ in range(a.repeats):
                run = run_fmin(env, key, objectives.noop, space(), n + a.cont_trials,
                               a.tp_parallelism[0], algo=algo)
                runs.append(coordinator_breakdown(run))
                reset_experiment(env, key, n)
            keys = runs[0]["steady_ms_per_trial"].keys()
            row[algo] = {
                "runs": runs, "replay": replay,
                "ms_per_trial": {k: med([r["steady_ms_per_trial"][k] for r in runs])
                                 for k in keys},
                "all_ms_per_trial": {k: med([r["all_ms_per_trial"][k] for r in runs])
                                     for k in keys},
                "own_cpu_ms_per_busy_iteration":
                    med([r["own_cpu_ms_per_busy_iteration"] for r in runs]),
                "own_cpu_ms_per_idle_iteration":
                    med([r["own_cpu_ms_per_idle_iteration"] for r in runs]),
                "first_iteration_own_cpu_ms":
                    med([r["first_iteration_ms"]["own_cpu"] for r in runs]),
                "startup_refresh_ms": {k: med([r["startup_refresh_ms"][k] for r in runs])
                                       for k in ("wall", "cpu")},
                "wire_cpu_ms_per_trial": med([r["wire_cpu_ms_per_trial"] for r in runs]),
                "own_cpu_fit": own_fit(runs, a.tp_parallelism[0]),
                "iterations_per_trial": med([r["steady_iterations"]
                                             / max(1, r["steady_trials"]) for r in runs])}
            m = row[algo]["ms_per_trial"]
            print(f"  n={n:>6} {algo:4}: steady {m['total_wall']:.2f} ms/trial = sampler "
                  f"{m['sampler_wall']:.2f} + store wait {m['store_wait']:.2f} + publish wait "
                  f"{m['publish_wait']:.2f} + own {m['own_wall']:.2f} (own CPU "
                  f"{m['own_cpu']:.2f}); first iteration own CPU "
                  f"{row[algo]['first_iteration_own_cpu_ms']:.1f} ms, start-up refresh "
                  f"{row[algo]['startup_refresh_ms']['wall']:.0f} ms; replay own CPU "
                  f"{replay['own_cpu']:.2f} ms/trial", flush=True)
        res[str(n)] = row
        env.stop_workers()
    out["coordinator"] = {"by_n": res, "continuation_trials": a.cont_trials,
                          "parallelism": a.tp_parallelism[0]}


# ---- report -------------------------------------------------------------------------------

def _f(v: float | None, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("MET" if ok else "MISSED")


def targets(out: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    u = out.get("utilisation")
    if u:
        for key, label in (("busy_steady", "steady state"), ("busy_warm", "incl. warm-up")):
            v = u["median"][key]
            rows.append({"what": f"utilisation, {label} (p={u['runs'][0]['parallelism']})",
                         "value": v, "target": f">= {TARGET_UTIL}",
                         "ok": v is not None and v >= TARGET_UTIL})
        eq = u["parallelism_eq_slots"]
        rows.append({"what": f"  utilisation, steady state (p={eq['parallelism']} = slots)",
                     "value": eq["busy_steady"], "target": "(info)", "ok": None})
    lat = out.get("latency")
    if lat:
        rows.append({"what": "dispatch-to-claim p50, ms", "value": lat["p50_ms"],
                     "target": f"<= {TARGET_D2C_P50_MS:g}",
                     "ok": lat["p50_ms"] <= TARGET_D2C_P50_MS})
    c = out.get("coordinator")
    if c:
        ns = sorted(int(k) for k in c["by_n"])
        lo, hi = str(ns[0]), str(ns[-1])
        for algo in ("rand", "tpe"):
            if algo not in c["by_n"][lo] or algo not in c["by_n"][hi]:
                continue
            a = c["by_n"][lo][algo]["ms_per_trial"]
            b = c["by_n"][hi][algo]["ms_per_trial"]
            ra = c["by_n"][lo][algo]["replay"]["own_cpu"]
            rb = c["by_n"][hi][algo]["replay"]["own_cpu"]
            ratio = rb / ra if ra and rb else None
            rows.append({"what": f"coordinator own CPU/trial n={hi} vs {lo} ({algo}), "
                         "loop replay", "value": ratio,
                         "target": f"<= {TARGET_COORD_RATIO:g}x",
                         "ok": ratio is not None and ratio <= TARGET_COORD_RATIO})
            fa = c["by_n"][lo][algo]["own_cpu_fit"]["at_batch"]
            fb = c["by_n"][hi][algo]["own_cpu_fit"]["at_batch"]
            ratio = fb / fa if fa and fb else None
            rows.append({"what": f"  live runs, own CPU/trial, equal batches ({algo})",
                         "value": ratio, "target": "(info)", "ok": None})
            for k, label in (("own_cpu", "own CPU"), ("own_wall", "own wall"),
                             ("total_wall", "total wall")):
                ratio = b[k] / a[k] if a[k] else None
                rows.append({"what": f"  live runs, {label}/trial ({algo})",
                             "value": ratio, "target": "(info)", "ok": None})
    return rows


def _steps(d: Mapping[str, float | None]) -> str:
    return ", ".join(f"{k} {_f(v, '.1f')}" for k, v in d.items())


def render(out: Mapping[str, Any]) -> str:
    m = out["meta"]
    lines = [f"parzen distributed throughput, git {m['git']}, {m['date']}; wire test double + "
             f"Redis on loopback; {m['cpu_count']} cores, load average at start "
             f"{m['loadavg'][0]:.2f}, at end {m['loadavg_end'][0]:.2f}; poll_interval "
             f"{out['config']['poll_interval']} s; {out['config']['workers']} workers x "
             f"{out['config']['slots']} slots"]
    u = out.get("utilisation")
    if u:
        eq = u["parallelism_eq_slots"]
        p = u["runs"][0]["parallelism"]
        lines += ["", f"Utilisation, {u['slots']} slots, {u['trials']} trials of "
                  f"{u['sleep_s']} s sleep; busy = sum(end - book_time), objective = "
                  f"sum(t1 - t0) inside the sandbox; median of {len(u['runs'])} cold starts",
                  "  window                       busy   objective  window s",
                  f"  p={p:<3} incl. warm-up        {_f(u['median']['busy_warm'], '.3f'):>6}"
                  f"  {_f(u['median']['objective_warm'], '.3f'):>10}"
                  f"  {_f(med([r['window_warm_s'] for r in u['runs']]), '.1f'):>8}",
                  f"  p={p:<3} steady state         {_f(u['median']['busy_steady'], '.3f'):>6}"
                  f"  {_f(u['median']['objective_steady'], '.3f'):>10}"
                  f"  {_f(med([r['window_steady_s'] for r in u['runs']]), '.1f'):>8}",
                  f"  p={eq['parallelism']:<3} steady state, warm  "
                  f"{_f(eq['busy_steady'], '.3f'):>6}"
                  f"  {_f(eq['objective_steady'], '.3f'):>10}"
                  f"  {_f(eq['window_steady_s'], '.1f'):>8}",
                  f"  warm-up (until every slot has finished one trial): "
                  f"{_f(u['median']['warmup_s'], '.2f')} s; cold-worker clock check "
                  "min(end_time - objective end) "
                  f"{_f(min(r['clock_check_min_end_minus_obj_end_ms'] for r in u['runs']), '.1f')}"
                  " ms",
                  f"  steps p={p}, median ms: {_steps(u['runs'][0]['steps_ms'])}",
                  f"  steps p={eq['parallelism']}, median ms: {_steps(eq['steps_ms'])}"]
    lat = out.get("latency")
    if lat:
        lines += ["", f"Dispatch-to-claim (send_task called -> book_time), parallelism 1, idle "
                  f"workers, {lat['n']} trials: p50 {_f(lat['p50_ms'], '.1f')} ms, p95 "
                  f"{_f(lat['p95_ms'], '.1f')} ms, p99 {_f(lat['p99_ms'], '.1f')} ms",
                  f"  steps, median ms: {_steps(lat['steps_ms'])}",
                  f"  send_task call {_f(lat['publish_call_ms'], '.2f')} ms; clock check "
                  "min(end_time - objective end) "
                  f"{_f(lat['clock_check_min_end_minus_obj_end_ms'], '.1f')}"
                  " ms (>= -1 means worker and coordinator clocks agree to ~1 ms)"]
    for par, tp in (out.get("throughput") or {}).items():
        c = tp["cpu_ms_per_trial"]
        md = tp["median"]
        co = tp["coordinator_ms_per_trial"]
        lines += ["", f"Throughput, no-op objective, parallelism {par}, {tp['slots']} slots, "
                  f"{tp['runs'][0]['trials']} trials, median of {len(tp['runs'])}: "
                  f"{_f(md['rate_steady'], '.1f')} trials/s steady (10-90% of ends), "
                  f"{_f(md['rate_e2e'], '.1f')} first publish -> last end, "
                  f"{_f(md['fmin_rate'], '.1f')} incl. fmin start-up",
                  f"  slots busy {_f(md['slot_busy'] * 100, '.0f')}%; coordinator loop "
                  f"{_f(md['loop_period_ms'], '.0f')} ms/iteration (wait incl.), "
                  f"{_f(md['trials_per_iteration'], '.1f')} trials/iteration; "
                  f"parallelism/loop period = {_f(md['poll_bound'], '.0f')} trials/s",
                  "  CPU ms per trial: " + ", ".join(
                      f"{k} {_f(c[k], '.2f')}" for k in
                      ("coordinator", "wire", "workers", "sandboxes", "redis"))
                  + f"; whole machine busy {_f(c['machine_busy_frac'] * 100, '.0f')}% of "
                  f"{m['cpu_count']} cores (other tenants included)",
                  f"  coordinator loop ms per trial: total {_f(co['total_wall'])}, blocked on "
                  f"store {_f(co['store_wait'])}, blocked on Redis {_f(co['publish_wait'])}, "
                  f"own {_f(co['own_wall'])} (CPU {_f(co['own_cpu'])})",
                  f"  steps, median ms: {_steps(tp['steps_ms'])}"]
    pl = out.get("payload")
    if pl:
        lines += ["", f"Objective payload size (inline in the experiment document), no-op, "
                  f"parallelism {pl['parallelism']}, {pl['trials']} trials:",
                  "    MB  trials/s  wire-CPU/trial  worker-CPU/trial  get_experiment ms"]
        for mb, st in pl["by_mb"].items():
            c = st["cpu_ms_per_trial"]
            lines.append(f"  {float(mb):4g}  {st['rate_steady']:8.1f}  {c['wire']:14.2f}  "
                         f"{c['workers']:16.2f}  {st['get_experiment_ms']:17.2f}")
    co = out.get("coordinator")
    if co:
        lines += ["", f"Coordinator time per trial, ms: {co['continuation_trials']} no-op trials "
                  f"on top of n completed, parallelism {co['parallelism']}, steady state "
                  "(loop iterations after the first); own = total - sampler - blocked on "
                  "store - blocked on Redis; medians of repeats",
                  "       n algo   total sampler  store-wait  redis-wait  own-wall  own-CPU  "
                  "iters/trial | 1st-iter own-CPU  start-up refresh wall/CPU  wire-CPU/trial"]
        for n, row in co["by_n"].items():
            for algo in ("rand", "tpe"):
                if algo not in row:
                    continue
                r = row[algo]
                mm = r["ms_per_trial"]
                sr = r["startup_refresh_ms"]
                lines.append(f"  {int(n):>6} {algo:4} {mm['total_wall']:7.2f} "
                             f"{mm['sampler_wall']:7.2f}  {mm['store_wait']:10.2f}  "
                             f"{mm['publish_wait']:10.2f}  {mm['own_wall']:8.2f}  "
                             f"{mm['own_cpu']:7.2f}  {r['iterations_per_trial']:11.2f} | "
                             f"{r['first_iteration_own_cpu_ms']:16.1f}  "
                             f"{sr['wall']:14.0f} / {sr['cpu']:<8.0f}  "
                             f"{r['wire_cpu_ms_per_trial']:14.2f}")
        gcs = []
        for n, row in co["by_n"].items():
            runs = [r for algo in ("rand", "tpe") if algo in row for r in row[algo]["runs"]]
            gcs.append(f"n={int(n)}: {_f(med([r['gc']['2']['collections'] for r in runs]), '.0f')}"
                       f" x, {_f(med([r['gc']['2']['ms'] for r in runs]), '.0f')} ms")
        lines += ["  full (gen 2) garbage collections in the coordinator per fmin call, median: "
                  + "; ".join(gcs)]
        lines += ["", "  own CPU per steady iteration = fixed + per-trial x trials published "
                  "(least squares over all repeats' iterations):",
                  "       n algo   fixed ms/iter  ms/trial  own CPU/trial at "
                  f"{co['parallelism']}/iter  points"]
        for n, row in co["by_n"].items():
            for algo in ("rand", "tpe"):
                if algo not in row:
                    continue
                f = row[algo]["own_cpu_fit"]
                lines.append(f"  {int(n):>6} {algo:4}  {_f(f['fixed_ms_per_iteration']):>13}  "
                             f"{_f(f['ms_per_trial']):>8}  {_f(f['at_batch']):>24}  "
                             f"{f['points']:>6}")
        lines += ["", "  loop replay (the loop's steps by hand, double idle between calls, "
                  f"{co['parallelism']} trials/iteration), median ms per trial:",
                  "       n algo   own CPU  (of which send_task)  sampler CPU  store-wait"]
        for n, row in co["by_n"].items():
            for algo in ("rand", "tpe"):
                if algo not in row:
                    continue
                r = row[algo]["replay"]
                lines.append(f"  {int(n):>6} {algo:4}  {_f(r['own_cpu']):>7}  "
                             f"{_f(r['publish_cpu']):>20}  {_f(r['sampler_cpu']):>11}  "
                             f"{_f(r['store_wait']):>10}")
        names = list(next(iter(co["by_n"].values()))["store_ops"])
        lines += ["", "  store calls alone (idle system), median wall ms [wire double CPU ms]:",
                  "       n  " + "  ".join(f"{k:>16}" for k in names)]
        for n, row in co["by_n"].items():
            ops = row["store_ops"]
            lines.append(f"  {int(n):>6}  " + "  ".join(
                f"{ops[k]['wall_ms']:>7.2f} [{ops[k]['wire_cpu_ms']:>5.1f}]" for k in names))
    lines += ["", "Targets:"]
    for t in out["targets"]:
        lines.append(f"  {t['what']:<62} {_f(t['value'], '.3f'):>8}  (target {t['target']}) "
                     f"{verdict(t['ok'])}")
    return "\n".join(lines)


# ---- main ---------------------------------------------------------------------------------

def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer trials, 1 repeat (~1 min)")
    ap.add_argument("--phases", default="util,lat,tp,payload,coord",
                    help="comma list of phases")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/13", help="broker (spare db)")
    ap.add_argument("--workers", type=int, default=2, help="worker processes")
    ap.add_argument("--slots", type=int, default=4, help="--concurrency of each worker")
    ap.add_argument("--repeats", type=int, default=None, help="repeats per measurement (3)")
    ap.add_argument("--poll-interval", type=float, default=0.1,
                    help="MongoTrials(poll_interval=) (its default, 0.1)")
    ap.add_argument("--util-trials", type=int, default=None, help="trials per utilisation run")
    ap.add_argument("--util-sleep", type=float, default=0.5)
    ap.add_argument("--util-parallelism", type=int, default=16)
    ap.add_argument("--lat-trials", type=int, default=None, help="trials per latency run")
    ap.add_argument("--tp-trials", type=int, default=None, help="trials per throughput run")
    ap.add_argument("--tp-parallelism", default="16,64",
                    help="comma list; the first is also used by the coordinator phase")
    ap.add_argument("--payload-mb", default="0,3",
                    help="objective payload sizes (MB) for the payload phase")
    ap.add_argument("--payload-trials", type=int, default=None)
    ap.add_argument("--n", default="100,1000,10000", help="completed trials, comma list")
    ap.add_argument("--cont-trials", type=int, default=None,
                    help="trials added per coordinator run")
    ap.add_argument("--algos", default="rand,tpe")
    ap.add_argument("--replay-iterations", type=int, default=None,
                    help="timed iterations of the hand-driven loop per (n, algo)")
    ap.add_argument("--op-reps", type=int, default=None, help="calls per store-op timing")
    ap.add_argument("--worker-loglevel", default="INFO",
                    help="workers' --loglevel (INFO, the CLI default, logs every task)")
    ap.add_argument("--out", type=Path, default=RESULTS_DIR / "throughput.json")
    args = ap.parse_args(argv)
    q = args.quick
    defaults = {"repeats": (1, 3), "util_trials": (64, 128), "lat_trials": (30, 60),
                "tp_trials": (120, 320), "cont_trials": (48, 96), "op_reps": (5, 8),
                "payload_trials": (120, 240), "replay_iterations": (6, 12)}
    for k, (quick, full) in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, quick if q else full)
    args.n = [int(x) for x in args.n.split(",") if x]
    args.algos = [x for x in args.algos.split(",") if x]
    args.tp_parallelism = [int(x) for x in args.tp_parallelism.split(",") if x]
    args.payload_mb = [float(x) for x in args.payload_mb.split(",") if x]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    phases = set(args.phases.split(","))
    meta = base_meta()
    out: dict[str, Any] = {"meta": meta, "config": {k: (str(v) if isinstance(v, Path) else v)
                                                  for k, v in vars(args).items()}}
    t0 = time.perf_counter()
    env = Env(args)
    try:
        if "util" in phases:
            print("utilisation ...", flush=True)
            phase_utilisation(env, out)
        if phases & {"lat", "tp", "payload"}:
            print("latency / throughput ...", flush=True)
            phase_latency_throughput(env, out, phases)
        if "coord" in phases:
            print("coordinator time per trial ...", flush=True)
            phase_coordinator(env, out)
    finally:
        env.close()
    meta["loadavg_end"] = list(os.getloadavg())
    meta["duration_s"] = time.perf_counter() - t0
    out["targets"] = targets(out)
    text = render(out)
    print()
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1, default=str))
    args.out.with_suffix(".txt").write_text(text + "\n")
    print(f"\nwrote {args.out} and {args.out.with_suffix('.txt')} "
          f"({meta['duration_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
