"""A ``parzen dashboard`` server in a thread of the test process, on a free loopback port, and
a small HTTP client for its API (used by the dashboard tests and ``bench/dashboard.py``)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from parzen.cli._source import Source
from parzen.cli.dashboard.server import Dashboard, DashboardServer
from parzen.cli.dashboard.source import StoreSource


@dataclass
class Running:
    """A dashboard being served."""

    server: DashboardServer
    dashboard: Dashboard

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


@contextmanager
def serving(mongo_url: str | None = None, file: str | None = None, *, token: str | None = None,
            allow_actions: bool = False, loopback: bool = True,
            connect_timeout_s: float = 2.0, opened: Source | None = None) -> Iterator[Running]:
    """Serve a dashboard on 127.0.0.1 (a free port) until the block ends."""
    source = StoreSource(mongo_url, file, connect_timeout_s, opened)
    dashboard = Dashboard(source, allow_actions=allow_actions, token=token, loopback=loopback)
    server = DashboardServer(("127.0.0.1", 0), dashboard)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield Running(server, dashboard)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
        source.close()
