"""The health file's writer: a step of Celery's consumer (see ``parzen/health.py``).

The step starts once the consumer consumes from the broker (after Celery's ``Tasks`` step),
writes the file and touches it from the consumer's timer, which runs in the worker's event
loop: the file stays fresh only while that loop turns. A lost connection stops the step
(Celery restarts the consumer's steps after reconnecting), so the file ages meanwhile; a
shutdown removes it.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, bootsteps

from parzen import health

log = logging.getLogger("parzen.worker")


class HealthFileStep(bootsteps.StartStopStep):  # type: ignore[misc]  # Celery is untyped
    """Writes ``path`` for the worker named ``worker``; ``install`` makes a subclass that
    sets both, because Celery creates its steps itself."""

    requires = ("celery.worker.consumer.tasks:Tasks",)
    path = ""
    worker = ""

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._tref: Any = None
        self._failed = False

    def start(self, parent: Any) -> None:
        self._beat()
        self._tref = parent.timer.call_repeatedly(health.INTERVAL_S, self._beat)

    def stop(self, parent: Any) -> None:
        if self._tref is not None:
            self._tref.cancel()
            self._tref = None

    def shutdown(self, parent: Any) -> None:
        self.stop(parent)
        health.remove(self.path)

    def _beat(self) -> None:
        try:
            health.touch(self.path, self.worker)
            self._failed = False
        except OSError as exc:
            if not self._failed:  # once per outage: the worker itself is fine
                log.warning("cannot write the health file %s: %s; probes that read it will "
                            "fail until it can be written", self.path, exc)
            self._failed = True


def install(app: Celery, path: str, worker: str) -> None:
    """Have ``app``'s workers keep the health file ``path``, as ``worker``."""
    health.remove(path)  # a file left by an earlier run must not vouch for this one
    step = type("HealthFile", (HealthFileStep,), {"path": path, "worker": worker})
    app.steps["consumer"].add(step)
