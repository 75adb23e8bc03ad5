"""Chaos run: fmin with MongoTrials while a killer ``kill -9``s a random worker every few
seconds and restarts it. The run must end with exactly ``--trials`` DONE trials, no tid with
two results, and nothing RUNNING.

    .venv/bin/python bench/chaos.py                        # 300 trials, 3 workers, kill every 3 s
    .venv/bin/python bench/chaos.py --trials 40 --workers 2 --kill-every 2 --seed 1

Everything is private to the run: a ``redis-server`` on a free port (never the machine's
Redis), the MongoDB wire-protocol test server (``tests/support/wire_server.py``) as a subprocess,
unless ``--mongo`` names a real mongod, and ``parzen worker`` processes (concurrency 1) on a
private queue. Kill times come from ``--seed``; which trial a kill hits depends on timing, so
figures vary a little between runs. Results: ``bench/results/chaos.json``.

Reported: kills; requeues (attempts that ended with "worker died" or "lease expired": the
killed worker's trial, put back to NEW by the coordinator's reaper, at once when it sees the
worker's process gone, as it does here on one host); releases; the attempts histogram of
DONE trials; executions (objective runs, counted through files the objective writes) and
extra executions (runs beyond one per trial: the cost of the kills); DONE, duplicate-result
and RUNNING counts; wall time.

``tests/faults/test_chaos.py`` runs a short version through ``run_chaos``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results" / "chaos.json"
SECRET = "chaos-bench-signing-key-" + "0" * 16


@dataclass
class ChaosConfig:
    trials: int = 300
    workers: int = 3
    kill_every: float = 3.0
    seed: int = 0
    sleep: float = 0.2  # seconds per evaluation
    lease: float = 2.0
    heartbeat: float = 0.4
    dispatch_timeout: float = 5.0
    # The killer, not the trial, causes the deaths here; with the default of 3 a trial that
    # happens to be hit three times would be failed for good as a poison trial (the right
    # call for a trial that really kills its workers, see tests/faults, scenario 14).
    max_attempts: int = 10
    mongo: str | None = None  # a real mongod; default: the wire test server


@dataclass
class ChaosReport:
    config: dict[str, Any]
    done: int = 0
    error: int = 0
    running: int = 0
    new: int = 0
    cancelled: int = 0
    documents: int = 0
    duplicate_results: int = 0  # tids with more than one document
    kills: int = 0
    kills_mid_trial: int = 0  # the killed worker owned a RUNNING trial at that moment
    restarts: int = 0
    requeues: int = 0  # attempts ended by lease expiry
    releases: int = 0  # attempts released (worker shutdown, crash, unloadable)
    attempts_histogram: dict[str, int] = field(default_factory=dict)
    retried: list[dict[str, Any]] = field(default_factory=list)  # trials with > 1 attempt
    executions: int = 0
    extra_executions: int = 0
    wall_s: float = 0.0
    trials_per_s: float = 0.0
    ok: bool = False

    def problems(self) -> list[str]:
        expected = int(self.config["trials"])
        out = []
        if self.done != expected:
            out.append(f"{self.done} DONE, expected {expected}")
        if self.duplicate_results:
            out.append(f"{self.duplicate_results} tids with two results")
        if self.running or self.new:
            out.append(f"{self.running} RUNNING and {self.new} NEW left")
        return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class _Redis:
    """A private ``redis-server`` without persistence."""

    def __init__(self, workdir: Path) -> None:
        if shutil.which("redis-server") is None:
            raise SystemExit("chaos: redis-server is not installed (apt-get install "
                             "redis-server); the run needs a private one")
        self.port = _free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", str(workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=workdir)
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("the private redis-server did not start") from None
                time.sleep(0.05)
        client.close()
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


class _WireServer:
    """``python tests/support/wire_server.py --port 0`` in a process of its own."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "tests" / "support" / "wire_server.py"), "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=str(REPO))
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("mongodb://"):
            self.stop()
            raise RuntimeError(f"the wire server did not start: {self.url!r}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _db_url(server: str, db: str) -> str:
    base, _, query = server.partition("/?")
    return f"{base}/{db}?{query}" if query else f"{base.rstrip('/')}/{db}"


@dataclass
class PrivateCluster:
    """A run's own services: a ``redis-server`` on a free port, the MongoDB wire-protocol test
    server, a fresh database and a queue of its own, and a work directory for the logs."""

    workdir: Path
    redis: _Redis
    wire: _WireServer
    mongo_url: str
    queue: str

    @classmethod
    def start(cls, name: str) -> PrivateCluster:
        workdir = Path(tempfile.mkdtemp(prefix=f"parzen-{name}-"))
        redis = _Redis(workdir)
        wire = _WireServer()
        tag = uuid.uuid4().hex[:8]
        return cls(workdir, redis, wire, _db_url(wire.url, f"{name.replace('-', '_')}_{tag}"),
                   f"{name}-{tag}")


def start_worker(mongo_url: str, redis_url: str, queue: str, log: Path, *,
                 concurrency: int = 1, secret: str = SECRET,
                 env_extra: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A ``parzen worker`` on ``queue`` with its output in ``log``; its key comes from the
    environment (never the command line), as a deployment's would."""
    env = dict(os.environ)
    env.pop("PARZEN_SECRET_FILE", None)
    env.update(PARZEN_SECRET=secret, **(env_extra or {}),
               PYTHONPATH=os.pathsep.join([str(BENCH_DIR), env.get("PYTHONPATH", "")]))
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "parzen", "worker", "--mongo", mongo_url, "--broker",
             redis_url, "--queue", queue, "--concurrency", str(concurrency), "--loglevel",
             "INFO"], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=str(REPO))


class _Workers:
    """``parzen worker`` processes (concurrency 1) that the killer may SIGKILL."""

    def __init__(self, mongo_url: str, redis_url: str, workdir: Path, executions: Path) -> None:
        self.mongo_url = mongo_url
        self.redis_url = redis_url
        self.queue = f"chaos-{uuid.uuid4().hex[:8]}"
        self.workdir = workdir
        self.executions = executions
        self.procs: list[subprocess.Popen[bytes]] = []
        self._started = 0
        self._lock = threading.Lock()

    def start(self) -> subprocess.Popen[bytes]:
        with self._lock:
            log = self.workdir / f"worker-{self._started}.log"
            self._started += 1
        proc = start_worker(self.mongo_url, self.redis_url, self.queue, log,
                            env_extra={"PARZEN_CHAOS_EXECUTIONS": str(self.executions)})
        with self._lock:
            self.procs.append(proc)
        return proc

    def alive(self) -> list[subprocess.Popen[bytes]]:
        with self._lock:
            return [p for p in self.procs if p.poll() is None]

    def stop(self) -> None:
        for p in self.alive():
            p.kill()
        for p in self.procs:
            p.wait(10)


class _Killer(threading.Thread):
    """Every ``kill_every`` seconds (+-50 %, seeded) SIGKILL a random live worker and start
    a replacement at once."""

    def __init__(self, workers: _Workers, store: Any, exp_key: str, kill_every: float,
                 seed: int) -> None:
        super().__init__(daemon=True, name="chaos-killer")
        self.workers = workers
        self.store = store
        self.exp_key = exp_key
        self.kill_every = kill_every
        self.rng = random.Random(seed)
        self.kills = 0
        self.mid_trial = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        from parzen.trial import TrialState

        while not self.stop_event.wait(self.kill_every * self.rng.uniform(0.5, 1.5)):
            alive = self.workers.alive()
            if not alive:
                continue
            victim = self.rng.choice(alive)
            try:
                running = self.store.find(self.exp_key, states=[TrialState.RUNNING])
            except Exception:  # the store is only read for the report
                running = []
            victim.kill()
            victim.wait(10)
            self.kills += 1
            self.mid_trial += any(t.owner is not None and t.owner.pid == victim.pid
                                  for t in running)
            self.workers.start()


def run_chaos(cfg: ChaosConfig, log: Any = print) -> ChaosReport:
    """Run the chaos experiment described by ``cfg`` and return its figures."""
    import numpy as np

    from parzen import fmin, hp, tpe
    from parzen.mongoexp import MongoTrials
    from parzen.store._mongo import MongoTrialStore

    sys.path.insert(0, str(BENCH_DIR))
    from _chaos_objective import objective

    workdir = Path(tempfile.mkdtemp(prefix="parzen-chaos-"))
    executions = workdir / "executions"
    executions.mkdir()
    os.environ["PARZEN_CHAOS_EXECUTIONS"] = str(executions)
    report = ChaosReport(config=asdict(cfg))
    redis = _Redis(workdir)
    wire = None if cfg.mongo else _WireServer()
    server = cfg.mongo or (wire.url if wire else "")
    mongo_url = _db_url(server, f"parzen_chaos_{uuid.uuid4().hex[:8]}")
    workers = _Workers(mongo_url, redis.url, workdir, executions)
    store = MongoTrialStore.from_url(mongo_url)
    exp_key = "chaos"
    killer = _Killer(workers, store, exp_key, cfg.kill_every, cfg.seed)
    try:
        first = [workers.start() for _ in range(cfg.workers)]
        for i, proc in enumerate(first):
            _wait_ready(proc, workdir / f"worker-{i}.log")
        trials = MongoTrials(mongo_url, exp_key=exp_key, broker=redis.url, queue=workers.queue,
                             secret=SECRET, parallelism=2 * cfg.workers, lease=cfg.lease,
                             heartbeat=cfg.heartbeat, dispatch_timeout=cfg.dispatch_timeout,
                             max_attempts=cfg.max_attempts, poll_interval=0.05)
        space = {"x": hp.uniform("x", -1, 1), "y": hp.uniform("y", -1, 1), "sleep": cfg.sleep}
        log(f"chaos: {cfg.trials} trials on {cfg.workers} workers, a kill every "
            f"~{cfg.kill_every:g} s (seed {cfg.seed}); logs in {workdir}")
        started = time.monotonic()
        killer.start()
        try:
            fmin(objective, space, algo=tpe.suggest, max_evals=cfg.trials, trials=trials,
                 show_progressbar=False, rstate=np.random.default_rng(cfg.seed))
        finally:
            killer.stop_event.set()
            killer.join(30)
            report.wall_s = round(time.monotonic() - started, 2)
            trials.close()
        _fill(report, store, exp_key, executions, killer, workers)
    finally:
        killer.stop_event.set()
        workers.stop()
        store.close()
        redis.stop()
        if wire is not None:
            wire.stop()
    report.ok = not report.problems()
    return report


def _wait_ready(proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while b"parzen worker ready" not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"worker not ready:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.05)


def _fill(report: ChaosReport, store: Any, exp_key: str, executions: Path, killer: _Killer,
          workers: _Workers) -> None:
    from parzen.trial import TrialState

    trials = store.find(exp_key)
    counts = store.count_by_state(exp_key)
    report.done = counts[TrialState.DONE]
    report.error = counts[TrialState.ERROR]
    report.running = counts[TrialState.RUNNING]
    report.new = counts[TrialState.NEW]
    report.cancelled = counts[TrialState.CANCEL]
    docs = collections.Counter(d["tid"] for d in store._trials.find({"exp_key": exp_key},
                                                                    {"tid": 1}))
    report.documents = sum(docs.values())
    report.duplicate_results = sum(1 for n in docs.values() if n > 1)
    report.kills = killer.kills
    report.kills_mid_trial = killer.mid_trial
    report.restarts = len(workers.procs) - report.config["workers"]
    outcomes = [a.outcome for t in trials for a in t.history]
    report.requeues = sum(o in ("lease expired", "worker died") for o in outcomes)
    report.releases = sum(o.startswith(("released", "crashed", "objective unloadable"))
                          for o in outcomes)
    hist = collections.Counter(t.attempts for t in trials if t.state is TrialState.DONE)
    report.attempts_histogram = {str(k): hist[k] for k in sorted(hist)}
    report.retried = [{"tid": t.tid, "state": t.state.name, "attempts": t.attempts,
                       "history": [a.outcome for a in t.history]}
                      for t in trials if t.attempts > 1 or t.history]
    report.executions = len(os.listdir(executions))
    report.extra_executions = report.executions - report.done
    report.trials_per_s = round(report.done / report.wall_s, 2) if report.wall_s else 0.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--trials", type=int, default=300)
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--kill-every", type=float, default=3.0, help="seconds between kills")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sleep", type=float, default=0.2, help="seconds per evaluation")
    p.add_argument("--lease", type=float, default=2.0)
    p.add_argument("--heartbeat", type=float, default=0.4)
    p.add_argument("--max-attempts", type=int, default=10)
    p.add_argument("--mongo", default=None, help="a real mongod URL (default: wire server)")
    p.add_argument("--json", default=str(RESULTS), help="where to write the figures")
    args = p.parse_args(argv)
    cfg = ChaosConfig(trials=args.trials, workers=args.workers, kill_every=args.kill_every,
                      seed=args.seed, sleep=args.sleep, lease=args.lease,
                      heartbeat=args.heartbeat, max_attempts=args.max_attempts,
                      mongo=args.mongo)
    report = run_chaos(cfg)
    sys.path.insert(0, str(BENCH_DIR))
    from _meta import base_meta

    out = {"meta": base_meta(), **asdict(report)}
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
    print(f"kills {report.kills} ({report.kills_mid_trial} mid-trial), worker restarts "
          f"{report.restarts}, requeues {report.requeues}, releases {report.releases}")
    print(f"attempts of DONE trials: {report.attempts_histogram}")
    print(f"executions {report.executions} (+{report.extra_executions} reruns)")
    print(f"DONE {report.done}/{cfg.trials}, duplicate results {report.duplicate_results}, "
          f"RUNNING {report.running}, NEW {report.new}, ERROR {report.error}")
    print(f"wall {report.wall_s:.1f} s ({report.trials_per_s} trials/s); written to "
          f"{args.json}")
    problems = report.problems()
    if problems:
        print("FAILED: " + "; ".join(problems))
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.exit(main())
