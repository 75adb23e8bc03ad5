"""The multi-process test harness: ``parzen worker`` processes that a test can signal, pause
or kill, on a queue of their own, against the wire-protocol Mongo test server and Redis.

Workers get the repository root on their ``PYTHONPATH``, so they import the objectives the
tests send (``tests.support.objectives``, ``tests.support.fault_objectives``) by name, as a
user's workers import the user's code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from parzen.store._mongo import MongoTrialStore

REPO = Path(__file__).resolve().parents[2]
SECRET = "test-signing-key-" + "0" * 16
PARZEN = [sys.executable, "-m", "parzen"]


def db_url(server_url: str, db: str) -> str:
    """``server_url`` (``mongodb://host:port/?opts``) pointed at database ``db``."""
    base, _, query = server_url.partition("/?")
    return f"{base}/{db}?{query}" if query else f"{base.rstrip('/')}/{db}"


class Cluster:
    """Workers for one test, on a queue of their own so no other test's messages reach them.

    Args:
        mongo_url: the test's database on the wire server (or a real mongod).
        redis_url: the broker.
        side_effects: a directory where objectives record each execution.
    """

    def __init__(self, mongo_url: str, redis_url: str, side_effects: Path) -> None:
        self.mongo_url = mongo_url
        self.redis_url = redis_url
        self.queue = f"test-{uuid.uuid4().hex[:8]}"
        self.side_effects = side_effects
        self.workers: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        self.store = MongoTrialStore.from_url(mongo_url)

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("PARZEN_SECRET_FILE", None)
        env.update(PARZEN_SECRET=SECRET, PARZEN_TEST_SIDE_EFFECTS=str(self.side_effects),
                   PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]))
        env.update(extra)
        return env

    def start_worker(self, concurrency: int = 1, **env: str) -> subprocess.Popen[bytes]:
        log = self.side_effects.parent / f"worker-{len(self.workers)}.log"
        out = open(log, "wb")  # noqa: SIM115  (closed with the process)
        proc = subprocess.Popen(
            [*PARZEN, "worker", "--mongo", self.mongo_url, "--broker", self.redis_url,
             "--queue", self.queue, "--concurrency", str(concurrency), "--loglevel", "INFO"],
            env=self.env(**env), stdout=out, stderr=subprocess.STDOUT)
        out.close()
        self.workers.append(proc)
        self.logs.append(log)
        return proc

    def wait_ready(self, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
        log = self.logs[self.workers.index(proc)]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b"parzen worker ready" in log.read_bytes():
                return
            if proc.poll() is not None:
                raise AssertionError(f"worker exited {proc.returncode}:\n{self.log_text(proc)}")
            time.sleep(0.05)
        raise AssertionError(f"worker not ready after {timeout}s:\n{self.log_text(proc)}")

    def log_text(self, proc: subprocess.Popen[bytes]) -> str:
        return self.logs[self.workers.index(proc)].read_text(errors="replace")[-4000:]

    def executions(self, prefix: str = "run-") -> list[str]:
        return sorted(p.name for p in self.side_effects.iterdir() if p.name.startswith(prefix))

    def trials_kwargs(self, **extra: Any) -> dict[str, Any]:
        kw: dict[str, Any] = dict(broker=self.redis_url, secret=SECRET, queue=self.queue,
                                  lease=3.0, heartbeat=0.5, poll_interval=0.05)
        kw.update(extra)
        return kw

    def stop(self) -> None:
        for p in self.workers:
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGCONT)
                    p.kill()
                except ProcessLookupError:
                    pass
        for p in self.workers:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self.store.close()
