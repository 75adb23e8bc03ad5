"""A ``parzen dashboard`` server in a thread of the test process, on a free loopback port, and
a small HTTP client for its API (used by the dashboard tests and ``bench/dashboard.py``)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from parzen.cli._source import Source
from parzen.cli.dashboard.server import Dashboard, DashboardServer
from parzen.cli.dashboard.source import StoreSource
from parzen.store import InMemoryTrialStore
from parzen.trial import Trial, TrialState


@dataclass
class Running:
    """A dashboard being served."""

    server: DashboardServer
    dashboard: Dashboard
    warm_up: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/"

    def get(self, path: str, headers: Mapping[str, str] | None = None,
            method: str = "GET") -> tuple[int, Any]:
        """``(status, body)``: the JSON body decoded, or the text of another body."""
        req = urllib.request.Request(self.url + path.lstrip("/"), method=method,
                                     headers=dict(headers or {}))
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, raw, kind = r.status, r.read(), r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            status, raw, kind = e.code, e.read(), e.headers.get("Content-Type", "")
        return status, json.loads(raw) if kind.startswith("application/json") else raw.decode()


class SlowFirstRead(InMemoryTrialStore):
    """An in-memory store whose whole read of an experiment waits until ``release`` is set
    (``reading`` is set when one starts): the first read of a large experiment, slowed."""

    def __init__(self) -> None:
        super().__init__()
        self.reading = threading.Event()
        self.release = threading.Event()

    def find(self, exp_key: str, states: Iterable[TrialState] | None = None,
             limit: int | None = None, sort: str = "tid", descending: bool = False
             ) -> list[Trial]:
        if states is None and limit is None:  # (the experiment list asks for a few trials)
            self.reading.set()
            if not self.release.wait(30):
                raise TimeoutError("SlowFirstRead: nothing released the read in 30 s")
        return super().find(exp_key, states, limit, sort, descending)


@contextmanager
def serving(mongo_url: str | None = None, file: str | None = None, *, token: str | None = None,
            allow_actions: bool = False, loopback: bool = True,
            connect_timeout_s: float = 2.0, opened: Source | None = None,
            warm_up: bool = False) -> Iterator[Running]:
    """Serve a dashboard on 127.0.0.1 (a free port) until the block ends; ``warm_up``: read
    the experiments in a thread from the start, as ``parzen dashboard`` does."""
    source = StoreSource(mongo_url, file, connect_timeout_s, opened)
    dashboard = Dashboard(source, allow_actions=allow_actions, token=token, loopback=loopback)
    server = DashboardServer(("127.0.0.1", 0), dashboard)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    warm = threading.Thread(target=dashboard.warm_up, daemon=True) if warm_up else None
    if warm is not None:
        warm.start()
    try:
        yield Running(server, dashboard, warm)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
        source.close()
        if warm is not None:
            warm.join(10)
