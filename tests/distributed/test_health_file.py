"""A real ``parzen worker --health-file`` keeps the file the container probes read: written
once it consumes from Redis, removed when SIGTERM stops it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from parzen import health
from tests.support.cluster import Cluster


def _probe(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "parzen", "health", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_worker_keeps_its_health_file_while_it_runs(cluster: Cluster,
                                                         tmp_path: Path) -> None:
    path = tmp_path / "parzen-health"
    health.write(str(path), "a worker that ran here before")
    proc = cluster.start_worker(PARZEN_HEALTH_FILE=str(path), PARZEN_WORKER_NAME="probe-me")
    cluster.wait_ready(proc)
    deadline = time.monotonic() + 30
    while not (path.exists() and "probe-me" in path.read_text()):
        assert time.monotonic() < deadline, cluster.log_text(proc)
        time.sleep(0.05)
    done = _probe(path)
    assert done.returncode == 0, done.stderr
    assert "worker probe-me" in done.stdout

    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    assert not path.exists(), cluster.log_text(proc)
    done = _probe(path)
    assert done.returncode == 1 and "no health file" in done.stderr
