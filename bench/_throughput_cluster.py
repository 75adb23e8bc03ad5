"""Processes for bench/throughput.py: the wire test server, ``parzen worker`` processes, and
per-process CPU accounting from /proc (no psutil in the dev venv).

Everything runs as separate processes so the wire double's CPU, the workers' CPU and the
coordinator's CPU can be told apart.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
SECRET = "throughput-bench-key-" + "0" * 16
_TICK = os.sysconf("SC_CLK_TCK")


# ---- CPU accounting ----------------------------------------------------------------------

def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads); 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def tree_cpu(pid: int) -> tuple[float, float]:
    """(CPU of ``pid`` itself, CPU of its live descendants) in seconds."""
    own = proc_cpu(pid)
    kids = 0.0
    stack = _children(pid)
    while stack:
        c = stack.pop()
        kids += proc_cpu(c)
        stack += _children(c)
    return own, kids


def redis_cpu(client: Any) -> float:
    """CPU seconds the Redis server has used (its own INFO; the server is not ours)."""
    info = client.info("cpu")
    return float(info.get("used_cpu_user", 0.0)) + float(info.get("used_cpu_sys", 0.0))


# ---- wire test server --------------------------------------------------------------------

class WireProcess:
    """``python tests/support/wire_server.py --port 0`` as a child process."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "tests" / "support" / "wire_server.py"), "--port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=str(REPO))
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("mongodb://"):
            self.stop()
            raise RuntimeError(f"wire server did not start: {line!r}")
        self.url = line

    @property
    def pid(self) -> int:
        return self.proc.pid

    def db_url(self, db: str) -> str:
        base, _, query = self.url.partition("/?")
        return f"{base}/{db}?{query}" if query else f"{base.rstrip('/')}/{db}"

    def cpu(self) -> float:
        return proc_cpu(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# ---- workers -------------------------------------------------------------------------------

class Workers:
    """``parzen worker`` processes on a private queue."""

    def __init__(self, mongo_url: str, redis_url: str, loglevel: str = "INFO") -> None:
        self.mongo_url = mongo_url
        self.redis_url = redis_url
        self.queue = f"bench-tp-{uuid.uuid4().hex[:8]}"
        self.loglevel = loglevel
        self.logdir = Path(tempfile.mkdtemp(prefix="parzen-tp-"))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("PARZEN_SECRET_FILE", None)
        env["PARZEN_SECRET"] = SECRET
        env["PYTHONPATH"] = os.pathsep.join([str(BENCH_DIR), env.get("PYTHONPATH", "")])
        return env

    def start(self, n: int, concurrency: int, timeout: float = 60.0) -> None:
        for _ in range(n):
            log = self.logdir / f"worker-{len(self.procs)}.log"
            with open(log, "wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "parzen", "worker", "--mongo", self.mongo_url,
                     "--broker", self.redis_url, "--queue", self.queue,
                     "--concurrency", str(concurrency), "--loglevel", self.loglevel],
                    env=self.env(), stdout=out, stderr=subprocess.STDOUT, cwd=str(REPO))
            self.procs.append(proc)
            self.logs.append(log)
        deadline = time.monotonic() + timeout
        for proc, log in zip(self.procs, self.logs, strict=True):
            while b"parzen worker ready" not in log.read_bytes():
                if proc.poll() is not None:
                    raise RuntimeError(f"worker exited {proc.returncode}:\n"
                                       f"{log.read_text(errors='replace')[-3000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"worker not ready:\n{log.read_text()[-3000:]}")
                time.sleep(0.05)

    def cpu(self) -> tuple[float, float]:
        """(worker processes' CPU, their sandbox children's CPU) in seconds."""
        own = kids = 0.0
        for p in self.procs:
            o, k = tree_cpu(p.pid)
            own += o
            kids += k
        return own, kids

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)  # Celery warm shutdown: closes the sandboxes
        for p in self.procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        self.procs = []
        self.logs = []


def clean_queue(redis_client: Any, queue: str) -> int:
    """Delete the Redis keys of our private queue (never anything else)."""
    keys = [k for k in redis_client.scan_iter(match=f"*{queue}*")]
    return int(redis_client.delete(*keys)) if keys else 0
