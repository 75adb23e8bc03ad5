"""The worker's health file (``parzen/health.py``), its writer in Celery's consumer
(``worker/health.py``) and ``parzen health FILE``, the probe that reads it. A real worker
keeping the file: tests/distributed/test_health_file.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from parzen import health
from parzen.cli import main
from parzen.worker.health import HealthFileStep, install


def _aged(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_a_fresh_file_is_ok_and_names_its_worker(tmp_path: Path) -> None:
    path = tmp_path / "h"
    health.write(str(path), "gpu-1")
    info = json.loads(path.read_text())
    assert info["worker"] == "gpu-1" and info["pid"] == os.getpid()
    found = health.check(str(path), 30)
    assert found.ok and found.message.startswith("worker gpu-1 (pid ")


def test_a_stale_file_says_how_old_and_what_it_means(tmp_path: Path) -> None:
    path = tmp_path / "h"
    health.write(str(path), "gpu-1")
    _aged(path, 95)
    found = health.check(str(path), 30)
    assert not found.ok
    assert "last touched" in found.message and "95s ago (more than 30s)" in found.message
    assert "lost the broker" in found.message
    assert health.check(str(path), 300).ok


def test_no_file_is_not_ok(tmp_path: Path) -> None:
    found = health.check(str(tmp_path / "none"), 30)
    assert not found.ok and "has not connected to the broker yet" in found.message
    assert "--health-file" in found.message


def test_touch_refreshes_and_recreates(tmp_path: Path) -> None:
    path = tmp_path / "h"
    health.write(str(path), "w")
    _aged(path, 100)
    health.touch(str(path), "w")
    assert time.time() - path.stat().st_mtime < 5
    path.unlink()
    health.touch(str(path), "w")
    assert json.loads(path.read_text())["worker"] == "w"
    health.remove(str(path))
    health.remove(str(path))  # gone already: fine
    assert not path.exists()


class _Timer:
    """Celery's consumer timer, as the step uses it."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, Any]] = []
        self.cancelled = 0

    def call_repeatedly(self, secs: float, fun: Any) -> _Timer:
        self.calls.append((secs, fun))
        return self

    def cancel(self) -> None:
        self.cancelled += 1


class _Consumer:
    def __init__(self) -> None:
        self.timer = _Timer()


def _step(path: Path) -> tuple[HealthFileStep, _Consumer]:
    cls = type("HealthFile", (HealthFileStep,), {"path": str(path), "worker": "w9"})
    consumer = _Consumer()
    return cls(consumer), consumer


def test_the_step_writes_at_start_touches_on_its_timer_and_removes_at_shutdown(
        tmp_path: Path) -> None:
    path = tmp_path / "h"
    step, consumer = _step(path)
    step.start(consumer)
    assert json.loads(path.read_text())["worker"] == "w9"
    [(secs, beat)] = consumer.timer.calls
    assert secs == health.INTERVAL_S
    _aged(path, 100)
    beat()
    assert health.check(str(path), 5).ok
    step.stop(consumer)  # a lost connection: the timer stops, the file stays and ages
    assert consumer.timer.cancelled == 1 and path.exists()
    step.start(consumer)  # reconnected
    step.shutdown(consumer)
    assert consumer.timer.cancelled == 2 and not path.exists()


def test_a_file_that_cannot_be_written_is_logged_once(tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    step, consumer = _step(tmp_path / "missing-dir" / "h")
    step.start(consumer)
    [(_, beat)] = consumer.timer.calls
    beat()
    warnings = [r for r in caplog.records if "cannot write the health file" in r.message]
    assert len(warnings) == 1 and "missing-dir" in warnings[0].getMessage()


def test_install_adds_the_step_and_removes_a_file_left_from_before(tmp_path: Path) -> None:
    path = tmp_path / "h"
    health.write(str(path), "an earlier run")
    app = Celery("t")
    install(app, str(path), "w1")
    assert not path.exists()
    [step] = [s for s in app.steps["consumer"] if issubclass(s, HealthFileStep)]
    assert step.path == str(path) and step.worker == "w1"


def test_parzen_health_exit_status_and_message(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "h"
    assert main(["health", str(path)]) == 1
    assert "no health file" in capsys.readouterr().err
    health.write(str(path), "gpu-1")
    assert main(["health", str(path)]) == 0
    assert "worker gpu-1" in capsys.readouterr().out
    _aged(path, health.READY_MAX_AGE_S + 5)
    assert main(["health", str(path)]) == 1
    assert main(["health", str(path), "--max-age", str(health.LIVE_MAX_AGE_S)]) == 0


def test_parzen_health_as_a_probe_runs_it(tmp_path: Path) -> None:
    """As Kubernetes runs it: a process, judged by its exit status."""
    path = tmp_path / "h"
    health.write(str(path), "w")
    done = subprocess.run([sys.executable, "-m", "parzen", "health", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    path.unlink()
    done = subprocess.run([sys.executable, "-m", "parzen", "health", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1 and "no health file" in done.stderr
