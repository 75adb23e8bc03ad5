"""SparkTrials on a local Spark: parzen's and hyperopt 0.3.0's, in the same run.

Each side runs in a process of its own with a fresh ``local[4]`` Spark (parzen in this
interpreter, hyperopt in the anchor venv, ``bench/.anchors-venv``, into which this script
installs the dev venv's pyspark version when it is missing), one after the other, and
measures:

- **utilisation**: 40 trials that sleep 0.5 s, ``SparkTrials(parallelism=4)``, TPE. Busy
  time is what the objective itself measured (``t1 - t0``, stamped inside it), summed over
  the trials; utilisation = busy / (fmin's wall time x parallelism). "cold" is the first
  fmin of the session (Python workers and parzen's sandbox children start), "warm" the
  median of the next ``--repeats`` (3) in the same session, each run listed too.
- **no-op trials/s**: trials of an objective that returns at once, warm, over fmin's wall
  time (parzen 200 trials, hyperopt 40: it runs about one a second).

``--designs`` also times the two ways of running trials that SparkTrials could use, on raw
pyspark without parzen: a Spark job per trial (four threads, each submitting one-task
jobs), and four long-lived tasks that pull trials from the driver over a socket.

    .venv/bin/python bench/spark.py                 # both sides, about 4 minutes
    .venv/bin/python bench/spark.py --designs       # and the two designs
    .venv/bin/python bench/spark.py --only parzen

The machine has 2 cores: ``local[4]`` oversubscribes it. The trials mostly sleep, so four
fit, but the coordinator, Spark's JVM and the Python workers share the two cores, and the
load average (printed) moves the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"
SLEEP_S = 0.5
MASTER = "local[4]"


# ---- one side (runs in the library's own interpreter) -------------------------------------

def _session() -> Any:
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master(MASTER).appName("parzen-bench-spark")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.driver.host", "127.0.0.1")
               .config("spark.driver.bindAddress", "127.0.0.1")
               .getOrCreate())
    session.sparkContext.setLogLevel("OFF")
    return session


def sleepy(p: dict[str, Any]) -> dict[str, Any]:
    t0 = time.time()
    time.sleep(SLEEP_S)
    return {"loss": (p["x"] - 0.3) ** 2, "status": "ok", "t0": t0, "t1": time.time()}


def noop(p: dict[str, Any]) -> float:
    return float((p["x"] - 0.3) ** 2)


def run_side(lib: str, trials_n: int, parallelism: int, noop_n: int,
             repeats: int) -> dict[str, Any]:
    """The measurements of one library, in this interpreter."""
    import logging

    logging.getLogger("hyperopt-spark").setLevel(logging.ERROR)
    if lib == "parzen":
        from parzen import SparkTrials, fmin, hp, tpe
    else:
        from hyperopt import SparkTrials, fmin, hp, tpe  # type: ignore[no-redef]
    import numpy as np

    t = time.monotonic()
    session = _session()
    out: dict[str, Any] = {"lib": lib, "jvm_start_s": time.monotonic() - t}
    space = {"x": hp.uniform("x", -1, 1)}

    def one(fn: Any, n: int, seed: int) -> tuple[float, Any]:
        trials = SparkTrials(parallelism=parallelism, spark_session=session)
        start = time.monotonic()
        fmin(fn, space, algo=tpe.suggest, max_evals=n, trials=trials,
             show_progressbar=False, rstate=np.random.default_rng(seed))
        return time.monotonic() - start, trials

    runs = []
    for seed in range(1 + repeats):
        wall, trials = one(sleepy, trials_n, seed)
        results = [r for r in trials.results if r.get("status") == "ok"]
        busy = sum(r["t1"] - r["t0"] for r in results)
        runs.append({"wall_s": wall, "busy_s": busy, "ok": len(results),
                     "utilisation": busy / (wall * parallelism)})
    out["cold"] = runs[0]
    warm = sorted(runs[1:], key=lambda r: r["utilisation"])
    out["warm"] = warm[len(warm) // 2]  # the median run (the upper one of an even number)
    out["warm_runs"] = [r["utilisation"] for r in runs[1:]]
    wall, trials = one(noop, noop_n, 100)
    ok = sum(1 for r in trials.results if r.get("status") == "ok")
    out["noop"] = {"trials": noop_n, "ok": ok, "wall_s": wall, "per_s": noop_n / wall}
    session.stop()
    return out


# ---- the two designs, on raw pyspark ------------------------------------------------------

def run_designs(trials_n: int, parallelism: int, noop_n: int) -> dict[str, Any]:
    """A Spark job per trial against long-lived tasks that pull trials (no parzen)."""
    import secrets
    from multiprocessing.connection import Client, Listener

    from pyspark import InheritableThread

    session = _session()
    sc = session.sparkContext

    def consume(rows: Any) -> None:
        for _ in rows:
            pass

    def per_trial(delay: float, n: int) -> float:
        items = iter(range(n))
        lock = threading.Lock()

        def job_task(rows: Any) -> Any:
            consume(rows)
            if delay:
                time.sleep(delay)
            yield 0

        def slot() -> None:
            while True:
                with lock:
                    item = next(items, None)
                if item is None:
                    return
                sc.parallelize([item], 1).mapPartitions(job_task).collect()

        start = time.monotonic()
        threads = [InheritableThread(target=slot) for _ in range(parallelism)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        return time.monotonic() - start

    def pull(delay: float, n: int) -> float:
        key = secrets.token_bytes(32)
        listener = Listener(("127.0.0.1", 0), authkey=key)
        address = listener.address
        items = iter(range(n))
        lock = threading.Lock()

        def pull_task(rows: Any) -> Any:
            consume(rows)
            conn = Client(address, authkey=key)
            while True:
                item = conn.recv()
                if item is None:
                    break
                if delay:
                    time.sleep(delay)
                conn.send(item)
            conn.close()
            yield 0

        def job() -> None:
            sc.parallelize([0], 1).mapPartitions(pull_task).collect()

        def serve(conn: Any) -> None:
            while True:
                with lock:
                    item = next(items, None)
                conn.send(item)
                if item is None:
                    return
                conn.recv()

        start = time.monotonic()
        jobs = [InheritableThread(target=job) for _ in range(parallelism)]
        for th in jobs:
            th.start()
        servers = []
        for _ in range(parallelism):
            server = threading.Thread(target=serve, args=(listener.accept(),))
            server.start()
            servers.append(server)
        for th in servers + jobs:
            th.join()
        listener.close()
        return time.monotonic() - start

    out: dict[str, Any] = {}
    for name, fn in (("job_per_trial", per_trial), ("pull", pull)):
        fn(0.0, parallelism)  # Python workers up
        wall = fn(SLEEP_S, trials_n)
        noop_wall = fn(0.0, noop_n)
        out[name] = {"utilisation": trials_n * SLEEP_S / (wall * parallelism),
                     "wall_s": wall, "noop_per_s": noop_n / noop_wall}
    session.stop()
    return out


# ---- the driver ---------------------------------------------------------------------------

def anchor_python() -> str:
    """The anchor venv's python, with the dev venv's pyspark version installed."""
    sys.path.insert(0, str(BENCH_DIR))
    import pyspark
    from _anchors import ensure_anchor_venv

    py = str(ensure_anchor_venv(quiet=True))
    probe = subprocess.run([py, "-c", "import pyspark; print(pyspark.__version__)"],
                           capture_output=True, text=True)
    if probe.returncode != 0 or probe.stdout.strip() != pyspark.__version__:
        print(f"[spark] installing pyspark=={pyspark.__version__} into the anchor venv",
              file=sys.stderr)
        subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        f"pyspark=={pyspark.__version__}"], check=True, timeout=1800)
    return py


def _side(python: str, lib: str, args: argparse.Namespace) -> dict[str, Any]:
    env = {**os.environ}
    if lib == "parzen":
        env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    cmd = [python, str(Path(__file__).resolve()), "--side", lib, "--trials", str(args.trials),
           "--parallelism", str(args.parallelism), "--repeats", str(args.repeats),
           "--noop-trials", str(args.noop_trials if lib == "parzen" else args.hyperopt_noop)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    marker = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@RESULT@@")]
    if not marker:
        raise SystemExit(f"{lib} side failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(marker[-1][len("@@RESULT@@"):])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=("parzen", "hyperopt"), default=None)
    ap.add_argument("--designs", action="store_true", help="also time the two designs")
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--parallelism", type=int, default=4)
    ap.add_argument("--noop-trials", type=int, default=200)
    ap.add_argument("--hyperopt-noop", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3, help="warm runs; the median is shown")
    ap.add_argument("--side", choices=("parzen", "hyperopt", "designs"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.side == "designs":
        print("@@RESULT@@" + json.dumps(run_designs(args.trials, args.parallelism,
                                                    args.noop_trials)))
        return 0
    if args.side:
        print("@@RESULT@@" + json.dumps(run_side(args.side, args.trials, args.parallelism,
                                                 args.noop_trials, args.repeats)))
        return 0

    load = os.getloadavg()[0]
    sides = [args.only] if args.only else ["parzen", "hyperopt"]
    pythons = {"parzen": sys.executable}
    if "hyperopt" in sides:
        pythons["hyperopt"] = anchor_python()
    results = {lib: _side(pythons[lib], lib, args) for lib in sides}
    if args.designs:
        results["designs"] = _side(sys.executable, "designs", args)
    results["load_average"] = [load, os.getloadavg()[0]]
    print(f"SparkTrials, {MASTER} on {os.cpu_count()} cores, parallelism {args.parallelism}, "
          f"{args.trials} trials of {SLEEP_S} s; load average {load:.1f} -> "
          f"{os.getloadavg()[0]:.1f}")
    print(f"{'':10} {'util cold':>10} {'util warm':>10} {'wall warm':>10} {'no-op/s':>9}  "
          f"warm runs")
    for lib in sides:
        r = results[lib]
        print(f"{lib:10} {r['cold']['utilisation']:10.3f} {r['warm']['utilisation']:10.3f} "
              f"{r['warm']['wall_s']:9.1f}s {r['noop']['per_s']:9.2f}  "
              f"{' '.join(f'{u:.3f}' for u in r['warm_runs'])}")
    if len(sides) == 2:
        p, h = results["parzen"], results["hyperopt"]
        for label in ("cold", "warm"):
            print(f"utilisation {label}: parzen / hyperopt = "
                  f"{p[label]['utilisation'] / h[label]['utilisation']:.1f}x")
        print(f"no-op trials/s: parzen / hyperopt = "
              f"{p['noop']['per_s'] / h['noop']['per_s']:.1f}x")
    if args.designs:
        for name, d in results["designs"].items():
            print(f"design {name:14} utilisation {d['utilisation']:.3f}  no-op "
                  f"{d['noop_per_s']:.1f}/s")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "spark.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
