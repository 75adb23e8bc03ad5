"""The worker's health file, which container probes read with ``parzen health FILE``.

A worker started with ``--health-file PATH`` (or ``PARZEN_HEALTH_FILE=PATH``) writes PATH
once it consumes from the broker, then touches it every ``INTERVAL_S`` seconds from its
event loop (``worker/health.py``), and removes it when it shuts down. The file's age is the
time since the worker was last seen connected with its event loop turning: a worker that
hangs, or that has lost the broker, lets it age; a worker still starting has none. The file
holds who wrote it (worker name, host, pid), for the messages.

This module is what both sides share, and imports nothing heavy: ``parzen health`` runs as
an exec probe every few seconds.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass

# How often a worker touches its health file.
INTERVAL_S = 10.0
# Default age limits of ``parzen health``: ready within three intervals (a late touch is
# noise, three in a row are not); alive within five minutes, long enough for the broker to
# come back (Celery reconnects by itself) before a restart is tried.
READY_MAX_AGE_S = 3 * INTERVAL_S
LIVE_MAX_AGE_S = 300.0


@dataclass(frozen=True)
class Health:
    """What a health file says: ``ok`` and the sentence that explains it."""

    ok: bool
    message: str


def write(path: str, worker: str) -> None:
    """(Re)write the file: who the worker is (``worker``: its ``--name``, or empty); its
    modification time is the heartbeat."""
    info = {"worker": worker, "host": socket.gethostname(), "pid": os.getpid()}
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(info, f)
    os.replace(tmp, path)  # a probe never reads a half-written file


def touch(path: str, worker: str) -> None:
    """Mark the worker seen now (rewriting the file if someone removed it)."""
    try:
        os.utime(path)
    except FileNotFoundError:
        write(path, worker)


def remove(path: str) -> None:
    """Remove the file (the worker is shutting down); gone already is fine."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def check(path: str, max_age_s: float, now: float | None = None) -> Health:
    """Whether the worker that writes ``path`` touched it within ``max_age_s`` seconds."""
    try:
        age = (time.time() if now is None else now) - os.stat(path).st_mtime
    except FileNotFoundError:
        return Health(False, f"no health file {path}: the worker has not connected to the "
                             "broker yet, has shut down, or was started without "
                             f"--health-file {path} (PARZEN_HEALTH_FILE)")
    except OSError as exc:
        return Health(False, f"cannot read the health file {path}: {exc}")
    who = _writer(path)
    if age > max_age_s:
        return Health(False, f"{who} last touched {path} {age:.0f}s ago (more than "
                             f"{max_age_s:g}s): its event loop is stuck or it has lost the "
                             "broker; its log says which")
    return Health(True, f"{who} touched {path} {max(age, 0.0):.1f}s ago")


def _writer(path: str) -> str:
    try:
        with open(path) as f:
            info = json.load(f)
        where = f"pid {info['pid']} on {info['host']}"
        return f"worker {info['worker']} ({where})" if info["worker"] else f"the worker ({where})"
    except (OSError, ValueError, KeyError, TypeError):
        return "the worker"
