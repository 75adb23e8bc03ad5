"""The fault-injection harness: a private ``redis-server`` per test, ``parzen worker``
processes a test can kill, pause or restart, a coordinator in a subprocess, and the checks
every scenario ends with.

It extends the distributed harness (``tests.support.cluster``). The machine's own Redis is
never touched: every broker here is a ``redis-server`` started on a free port, in the
test's tmp dir, without persistence, so a flush or a restart loses the queue as a crashed
broker would.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from parzen.trial import Trial, TrialState
from tests.support import mongo as mf
from tests.support.cluster import PARZEN, SECRET, Cluster, db_url

# A worker with test-only fault hooks (see hooked_worker.py).
HOOKED = [sys.executable, "-m", "tests.support.hooked_worker"]

# Short leases keep the suite fast; the lease is 5 heartbeats, above the 3 the settings
# require, so one slow heartbeat on a loaded CI machine does not lose it.
LEASE_S = 2.0
HEARTBEAT_S = 0.4

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float, what: str,
             interval: float = 0.05) -> T:
    """Poll ``predicate`` until it returns something truthy, and return that.

    Raises:
        AssertionError: ``timeout`` seconds passed first; the message says what we waited for.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PrivateRedis:
    """A ``redis-server`` of our own: start, kill (a crash), restart on the same port, flush.

    Args:
        workdir: where the server runs (it writes nothing: no RDB, no AOF).
        password: set ``requirepass``; the URL then carries it.
    """

    def __init__(self, workdir: Path, password: str | None = None) -> None:
        self.workdir = workdir
        self.password = password
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def client(self) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password,
                           socket_connect_timeout=2, socket_timeout=5)

    def start(self) -> str:
        """Start the server (on the same port as before) and wait until it answers."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--daemonize", "no",
               "--dir", str(self.workdir)]
        if self.password:
            cmd += ["--requirepass", self.password]
        log = open(self.workdir / "redis.log", "ab")  # noqa: SIM115  (closed below)
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                     cwd=self.workdir)
        log.close()
        client = self.client()
        try:
            def pong() -> bool:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise AssertionError(
                        f"redis-server exited {self.proc.returncode}: "
                        f"{(self.workdir / 'redis.log').read_text()[-2000:]}")
                try:
                    return bool(client.ping())
                except Exception:  # redis.ConnectionError while it starts
                    return False
            wait_for(pong, 15, f"redis-server on port {self.port}")
        finally:
            client.close()
        return self.url

    def kill(self) -> None:
        """SIGKILL the server: queues, unacked messages and connections are gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self) -> str:
        self.kill()
        return self.start()

    def flush(self) -> None:
        """Drop every key: the broker forgets every queued and unacknowledged message."""
        client = self.client()
        try:
            client.flushall()
        finally:
            client.close()

    def queue_length(self, queue: str) -> int:
        client = self.client()
        try:
            return int(client.llen(queue))
        finally:
            client.close()

    def unacked(self) -> int:
        """Messages delivered but not yet acknowledged (kombu's ``unacked`` hash)."""
        client = self.client()
        try:
            return int(client.hlen("unacked"))
        finally:
            client.close()


class FaultCluster(Cluster):
    """``Cluster`` plus what fault tests need: workers from a custom entry script, worker
    lookup by pid, kill/pause/restart.
    """

    def __init__(self, mongo_url: str, redis: PrivateRedis, side_effects: Path) -> None:
        super().__init__(mongo_url, redis.url, side_effects)
        self.redis = redis
        self.kills = 0

    def start_worker(self, concurrency: int = 1, *, entry: Sequence[str] | None = None,
                     loglevel: str = "INFO", **env: str) -> subprocess.Popen[bytes]:
        """Start a worker; ``entry`` replaces ``python -m parzen`` (e.g. a hooked script);
        ``loglevel`` DEBUG shows Celery's own per-task lines (received, succeeded)."""
        log = self.side_effects.parent / f"worker-{len(self.workers)}.log"
        out = open(log, "wb")  # noqa: SIM115  (closed with the process)
        cmd = [*(entry or PARZEN), "worker", "--mongo", self.mongo_url, "--broker",
               self.redis_url, "--queue", self.queue, "--concurrency", str(concurrency),
               "--loglevel", loglevel]
        proc = subprocess.Popen(cmd, env=self.env(**env), stdout=out,
                                stderr=subprocess.STDOUT)
        out.close()
        self.workers.append(proc)
        self.logs.append(log)
        return proc

    def start_ready(self, n: int = 1, concurrency: int = 1,
                    **env: str) -> list[subprocess.Popen[bytes]]:
        """Start ``n`` workers and wait until all of them consume."""
        procs = [self.start_worker(concurrency, **env) for _ in range(n)]
        for p in procs:
            self.wait_ready(p)
        return procs

    def by_pid(self, pid: int) -> subprocess.Popen[bytes]:
        for p in self.workers:
            if p.pid == pid:
                return p
        raise AssertionError(f"no worker with pid {pid}")

    def kill9(self, proc: subprocess.Popen[bytes]) -> None:
        proc.kill()
        proc.wait(10)
        self.kills += 1

    def log_of(self, proc: subprocess.Popen[bytes]) -> str:
        return self.logs[self.workers.index(proc)].read_text(errors="replace")

    def all_logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs)

    def clear_side_effects(self) -> None:
        for p in self.side_effects.iterdir():
            p.unlink()

    def kwargs(self, **extra: Any) -> dict[str, Any]:
        """``MongoTrials`` keyword arguments for this cluster with the suite's short lease."""
        return self.trials_kwargs(**{"lease": LEASE_S, "heartbeat": HEARTBEAT_S, **extra})

    # ---- inspection ------------------------------------------------------------------

    def trials(self, exp_key: str) -> list[Trial]:
        return self.store.find(exp_key)

    def counts(self, exp_key: str) -> dict[TrialState, int]:
        return self.store.count_by_state(exp_key)

    def running(self, exp_key: str) -> list[Trial]:
        return self.store.find(exp_key, states=[TrialState.RUNNING])


def make_cluster(server_url: str, redis: PrivateRedis, root: Path) -> FaultCluster:
    """A ``FaultCluster`` on a fresh database of ``server_url`` (or of the real mongod
    named by ``PARZEN_TEST_MONGO_URL``), brokered by ``redis``."""
    real = mf.real_mongo_url()
    url = db_url(real if real else server_url, mf.unique_db_name())
    effects = root / "effects"
    effects.mkdir(parents=True)
    return FaultCluster(url, redis, effects)


def assert_clean_end(cluster: FaultCluster, exp_key: str, done: int,
                     error: int = 0) -> list[Trial]:
    """The end state every scenario promises: exactly ``done`` DONE (and ``error`` ERROR)
    trials, one document and one result per tid, and nothing NEW or RUNNING."""
    trials = cluster.trials(exp_key)
    counts = cluster.counts(exp_key)
    assert counts[TrialState.DONE] == done, counts
    assert counts[TrialState.ERROR] == error, counts
    assert counts[TrialState.NEW] == 0 and counts[TrialState.RUNNING] == 0, counts
    tids = [t.tid for t in trials]
    assert len(tids) == len(set(tids)), f"a tid has two documents: {sorted(tids)}"
    raw = list(cluster.store._trials.find({"exp_key": exp_key}, {"tid": 1}))
    assert len(raw) == len({d["tid"] for d in raw}), "a tid has two documents"
    for t in trials:
        if t.state is TrialState.DONE:
            assert t.result.get("status") == "ok" and isinstance(t.result.get("loss"), float)
            assert t.claim_token and t.end_time is not None
    return trials


def lease_expiries(trials: Iterable[Trial]) -> int:
    """How many attempts ended because their lease expired (the trial was requeued)."""
    return sum(1 for t in trials for a in t.history if a.outcome == "lease expired")


# ---- the coordinator in a subprocess -------------------------------------------------------

class Coordinator:
    """``tests.support.coordinator_proc`` (fmin with MongoTrials) as a process we can kill.

    Args:
        cluster: supplies the URLs, queue and environment.
        config: the script's settings (see its docstring); written as JSON.
        workdir: where the config, the output JSON and the log go.
    """

    def __init__(self, cluster: FaultCluster, config: dict[str, Any], workdir: Path,
                 name: str = "coordinator") -> None:
        self.workdir = workdir
        self.out = workdir / f"{name}.json"
        self.log = workdir / f"{name}.log"
        cfg = {"mongo_url": cluster.mongo_url, "broker": cluster.redis_url,
               "queue": cluster.queue, "secret": SECRET, "lease": LEASE_S,
               "heartbeat": HEARTBEAT_S, "out": str(self.out),
               "side_effects": str(cluster.side_effects), **config}
        cfg_path = workdir / f"{name}.config.json"
        cfg_path.write_text(json.dumps(cfg))
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.support.coordinator_proc", str(cfg_path)],
                env=cluster.env(), stdout=log, stderr=subprocess.STDOUT)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            # Where is it stuck? The coordinator dumps its threads' stacks on SIGUSR1.
            self.proc.send_signal(signal.SIGUSR1)
            time.sleep(1.0)
            self.proc.kill()
            self.proc.wait()  # reaped: no "subprocess still running" in a later test
            raise AssertionError(f"coordinator still running after {timeout}s:\n"
                                 f"{self.log_text()}") from None

    def result(self) -> dict[str, Any]:
        if not self.out.exists():
            raise AssertionError(f"coordinator wrote no result:\n{self.log_text()}")
        out: dict[str, Any] = json.loads(self.out.read_text())
        return out

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)


class Supervisor:
    """Restarts workers that die, as systemd or Kubernetes would, until stopped.

    Args:
        cluster: the cluster whose workers are watched.
        watched: the workers to keep alive; a dead one is replaced by a fresh one.
    """

    def __init__(self, cluster: FaultCluster, watched: list[subprocess.Popen[bytes]],
                 entry: Sequence[str] | None = None, **env: str) -> None:
        self.cluster = cluster
        self.watched = list(watched)
        self.entry = entry
        self.env = env
        self.restarts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="supervisor")

    def __enter__(self) -> Supervisor:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            for i, p in enumerate(self.watched):
                if p.poll() is not None:
                    self.watched[i] = self.cluster.start_worker(entry=self.entry, **self.env)
                    self.restarts += 1


class Background:
    """Run ``fn(*args, **kwargs)`` in a thread (typically fmin) while the test injects faults;
    ``join`` returns its result or re-raises its exception."""

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._result: Any = None
        self._error: BaseException | None = None

        def run() -> None:
            try:
                self._result = fn(*args, **kwargs)
            except BaseException as exc:  # handed to the test thread by join()
                self._error = exc

        self._thread = threading.Thread(target=run, daemon=True, name="background")
        self._thread.start()

    def done(self) -> bool:
        return not self._thread.is_alive()

    def join(self, timeout: float) -> Any:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"still running after {timeout:g}s")
        if self._error is not None:
            raise self._error
        return self._result
