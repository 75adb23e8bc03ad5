"""The dashboard's HTTP server: the page, its static files and a small JSON API.

The standard library's threaded ``http.server`` serves it: the dashboard's traffic is a few
people's pages polling once a second, which needs no framework, and parzen gains no
dependency. Every response is built from the read model (``model.py``); the only writes are
the actions, which run the ``parzen`` command itself (``stop``, ``cancel``, ``requeue``)
in-process, parsed and run as the command line does, so they follow its rules and messages
exactly, and only when the dashboard was started with ``--allow-actions``.

A thread started with the server reads the most recently active experiments ahead of the
pages (``Dashboard.warm_up``): the first read of a 20,000-trial experiment takes a few
tenths of a second (more over MongoDB, which decodes every document, or on a busy machine),
and a page asking meanwhile waits up to ``LOAD_WAIT_S``, then is told the experiment is
being read, and asks again.

Safety: any request failing (MongoDB down, an unknown experiment, a document that cannot be
read) answers a JSON error with a message for the page and never stops the server; no
response carries a password (pages see the URL redacted, messages pass ``redact_text``); a
server bound to anything but loopback requires the access token on every request (a header,
a cookie set by the first ``?token=`` visit, or the query parameter); one bound to loopback
without a token refuses requests whose ``Host`` is not a loopback name, so a web page the
browser visits cannot reach it through DNS rebinding.
"""

from __future__ import annotations

import argparse
import gzip
import hmac
import io
import ipaddress
import json
import logging
import math
import mimetypes
import secrets
import socket
import threading
import time
from collections.abc import Mapping
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from pymongo.errors import PyMongoError

# Importing a command module registers its @command: the actions run those (CONFIGURE).
from parzen.cli import mutate, stop  # noqa: F401
from parzen.cli._registry import CONFIGURE
from parzen.cli._source import unknown_experiment
from parzen.cli.dashboard.model import TrialView, experiment_row
from parzen.cli.dashboard.source import StoreSource
from parzen.exceptions import ParzenError, StoreUnavailable
from parzen.store.uri import redact_text
from parzen.version import __version__

log = logging.getLogger(__name__)

TOKEN_COOKIE = "parzen_dashboard_token"
ACTION_HEADER = "X-Parzen-Action"
# Name on the page -> the parzen command and its extra arguments. ``parzen stop`` asks the
# coordinator and returns (``--wait 0``): the page sees the run end in its next polls, and a
# request does not hang for the command's default minute.
ACTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "stop": ("stop", ("--wait", "0")),
    "cancel": ("cancel", ()),
    "requeue": ("requeue", ()),
    "requeue-expired": ("requeue", ("--expired",)),
}
LIST_REFRESH_S = 1.5
# A request for an experiment whose first read another request (or the warm-up) is doing
# waits this long, then answers "loading" and the page asks again.
LOAD_WAIT_S = 0.5
# The warm-up reads the most recently active experiments, up to this many trials in all.
WARM_TRIALS = 60_000
GZIP_MIN_BYTES = 32 * 1024
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` keeps the dashboard on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


class RawJson(str):
    """A value already encoded as JSON text, spliced into the answer as it is."""


class Loading(Exception):
    """The experiment's first read is still running (the request did not wait for it)."""

    def __init__(self, exp_key: str) -> None:
        super().__init__(f"still reading the trials of {exp_key!r} (the dashboard reads an "
                         "experiment whole once, then only what changes); try again in a "
                         "moment")
        self.exp_key = exp_key


class RequestError(Exception):
    """A request the dashboard answers with a message instead of data."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Dashboard:
    """What every request handler shares: the store, the views, the settings.

    Attributes:
        source: the store to read.
        allow_actions: whether the page may stop, cancel or requeue.
        token: the access token every request must carry, or None.
        loopback: whether the server is bound to loopback.
    """

    source: StoreSource
    allow_actions: bool = False
    token: str | None = None
    loopback: bool = True
    instance: str = field(default_factory=lambda: secrets.token_hex(4))
    views: dict[str, TrialView] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _action_lock: threading.Lock = field(default_factory=threading.Lock)
    _list: tuple[float, dict[str, Any]] | None = None

    def actions(self) -> list[str]:
        """The actions the page may offer: none unless ``--allow-actions``; no ``stop`` over a
        local run's file, which has no coordinator to ask (``parzen stop`` refuses it)."""
        if not self.allow_actions:
            return []
        return [name for name in ACTIONS if not (name == "stop" and self.source.is_file)]

    # ---- reads ------------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return {"where": self.source.where, "version": __version__,
                "actions": self.actions(), "instance": self.instance}

    def experiment_list(self) -> dict[str, Any]:
        with self._lock:
            now_mono = time.monotonic()
            if self._list is not None and now_mono - self._list[0] < LIST_REFRESH_S:
                return self._list[1]
            opened = self.source.current()
            now = opened.store.now()
            rows = [experiment_row(opened.store, exp, now)
                    for exp in self.source.experiments(opened)]
            body = {"where": self.source.where, "now": now.timestamp(), "experiments": rows,
                    "unreadable": [str(d) for d in opened.store.unreadable()]}
            self._list = (now_mono, body)
            return body

    def view(self, exp_key: str, force: bool = False,
             wait: bool = False) -> tuple[TrialView, datetime]:
        """The refreshed view of ``exp_key``, and the store's clock.

        Args:
            force: read the store now, not at most every ``REFRESH_S``.
            wait: when another thread is reading the experiment for the first time, wait for
                it however long it takes (else: ``LOAD_WAIT_S``).

        Raises:
            RequestError: no such experiment.
            Loading: another thread is still reading the experiment for the first time.
        """
        opened = self.source.current()
        with self._lock:
            view = self.views.get(exp_key)
            if view is None:
                known = {e.exp_key: e for e in self.source.experiments(opened)}
                if exp_key not in known:
                    raise RequestError(HTTPStatus.NOT_FOUND, unknown_experiment(
                        exp_key, sorted(known), self.source.where))
                view = self.views[exp_key] = TrialView(exp_key)
        # Once read, a view's refresh is short: wait for it. Before, the first read takes
        # seconds on a large experiment: the page is told so, and asks again.
        if not view.lock.acquire(timeout=-1 if wait or view.loaded else LOAD_WAIT_S):
            raise Loading(exp_key)
        try:
            exp = opened.store.get_experiment(exp_key)
            space = opened.source.space(exp) if exp is not None else None
            if space is None and opened.source.trials is not None:
                space = opened.source.trials.attachments.get("space_description")
            view.refresh(opened.store, opened.generation, space, force=force)
            return view, opened.store.now()
        finally:
            view.lock.release()

    def poll(self, exp_key: str, since: str) -> dict[str, Any]:
        """The experiment's summary and workers, and the trials changed since ``since``
        (``<instance>.<seq>`` as a previous answer gave it; anything else: every trial); or,
        while the experiment's first read is running, ``{"loading": ...}``."""
        try:
            view, now = self.view(exp_key)
        except Loading as exc:
            return {"loading": str(exc)}
        with view.lock:
            instance, _, seq = since.partition(".")
            start = int(seq) if instance == self.instance and seq.isdigit() else 0
            body, data = view.changes_since(start)
            body["data"] = RawJson(data)
            body["since"] = f"{self.instance}.{body['seq']}"
            body["summary"] = view.summary(now, self.source.where)
            body["workers"] = view.workers(now)
            body["unreadable"] = [str(d) for d in self.source.current().store.unreadable()
                                  if d.exp_key == exp_key]
            return body

    def warm_up(self) -> None:
        """Read the experiment list and the trials of the most recently active experiments
        (up to ``WARM_TRIALS`` in all), and encode their first answer, so that the first
        pages find them ready; run in a thread when the server starts. Requests meanwhile
        are answered: those for an experiment being read say so."""
        try:
            listing = self.experiment_list()
            budget = WARM_TRIALS
            for row in sorted(listing["experiments"], key=lambda r: -(r["last_activity"] or 0)):
                n = sum(row["counts"].values())
                if n > budget:
                    continue
                budget -= n
                view, _ = self.view(row["exp_key"], wait=True)
                with view.lock:
                    view.changes_since(0)
        except Exception as exc:  # a page asking later tries again, and shows what failed
            log.warning("parzen dashboard: reading the experiments ahead of the pages stopped "
                        "(%s: %s); each experiment is read when a page first asks for it",
                        type(exc).__name__, redact_text(str(exc))[:300])

    # ---- actions ----------------------------------------------------------------------------

    def act(self, exp_key: str, name: str) -> dict[str, Any]:
        """Run the ``parzen`` command behind action ``name`` on ``exp_key``.

        Raises:
            RequestError: actions are off, or ``name`` is not one of them.
        """
        if not self.allow_actions:
            raise RequestError(HTTPStatus.FORBIDDEN, "actions are off: start the dashboard "
                                                     "with --allow-actions to stop, cancel or "
                                                     "requeue from the page")
        if name not in self.actions():
            raise RequestError(HTTPStatus.NOT_FOUND,
                               f"no action {name!r}; this dashboard offers "
                               f"{', '.join(self.actions()) or 'none'}")
        self.view(exp_key)  # refuses an unknown experiment with the usual message
        command, extra = ACTIONS[name]
        argv = [exp_key, *self.source.cli_arguments(), *extra]
        code, out, err = self._run_command(command, argv)
        self.source.invalidate()
        self.view(exp_key, force=True)
        with self._lock:
            self._list = None
        return {"ok": code == 0, "command": f"parzen {command} {exp_key} {' '.join(extra)}"
                .strip(), "output": redact_text(out.strip()), "message": redact_text(err.strip())}

    def _run_command(self, command: str, argv: list[str]) -> tuple[int, str, str]:
        """Parse ``argv`` with the command's own arguments and run it, as ``parzen`` does."""
        parser = argparse.ArgumentParser(prog=f"parzen {command}")
        CONFIGURE[command](parser)
        out, err = io.StringIO(), io.StringIO()
        # One command at a time: the command prints, and sys.stdout is the process's.
        with self._action_lock, redirect_stdout(out), redirect_stderr(err):
            try:
                args = parser.parse_args(argv)
                code = int(args.run(args))
            except ParzenError as exc:
                print(f"parzen {command}: {exc}", file=err)
                code = 2
            except SystemExit as exc:  # argparse refused the arguments
                code = exc.code if isinstance(exc.code, int) else 2
        return code, out.getvalue(), err.getvalue()


# ---- HTTP -------------------------------------------------------------------------------------

class Handler(BaseHTTPRequestHandler):
    """One request; ``server.dashboard`` holds the shared state."""

    server: DashboardServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        # Actions take no body; read one anyway, so the connection stays in step.
        length = self.headers.get("Content-Length") or "0"
        self.rfile.read(min(int(length), 1 << 16) if length.isdigit() else 0)
        self._serve("POST")

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        try:
            cookie = self._check_access(query)
            if url.path in ("/", "/index.html") and method == "GET":
                self._static("index.html", cookie)
            elif url.path.startswith("/static/") and method == "GET":
                self._static(url.path[len("/static/"):], cookie)
            elif url.path.startswith("/api/"):
                body = self._api(method, [unquote(p) for p in url.path[5:].split("/")], query)
                self._json(HTTPStatus.OK, body)
            else:
                raise RequestError(HTTPStatus.NOT_FOUND, f"no page {url.path}")
        except RequestError as exc:
            self._fail(url.path, exc.status, str(exc))
        except Loading as exc:
            self._fail(url.path, HTTPStatus.SERVICE_UNAVAILABLE, str(exc))
        except StoreUnavailable as exc:
            self._fail(url.path, HTTPStatus.SERVICE_UNAVAILABLE, redact_text(str(exc)))
        except ParzenError as exc:
            self._fail(url.path, HTTPStatus.CONFLICT, redact_text(str(exc)))
        except PyMongoError as exc:
            self._fail(url.path, HTTPStatus.SERVICE_UNAVAILABLE,
                       f"MongoDB at {self.server.dashboard.source.where}: "
                       f"{redact_text(str(exc))[:300]}")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the page went away
        except Exception as exc:  # the server must outlive any one request
            log.exception("dashboard request %s %s failed", method, url.path)
            self._fail(url.path, HTTPStatus.INTERNAL_SERVER_ERROR,
                       f"the dashboard failed on this request ({type(exc).__name__}: "
                       f"{redact_text(str(exc))[:300]}); the server's log has the traceback")

    def _fail(self, path: str, status: HTTPStatus, message: str) -> None:
        """The message as JSON for the page's API calls, as text for a browser's address bar."""
        if path.startswith("/api/"):
            self._json(status, {"error": message})
        else:
            self._send(status, f"parzen dashboard: {message}\n".encode(),
                       "text/plain; charset=utf-8", {"Cache-Control": "no-store"})

    def _check_access(self, query: Mapping[str, list[str]]) -> str | None:
        """Refuse a request without the token (or, on loopback without a token, one for
        another host name). Returns the cookie to set when the token came in the URL."""
        d = self.server.dashboard
        if d.token is None:
            host = (self.headers.get("Host") or "").rsplit(":", 1)[0] \
                if not (self.headers.get("Host") or "").startswith("[") \
                else (self.headers.get("Host") or "").split("]")[0] + "]"
            if d.loopback and host not in LOOPBACK_NAMES:
                raise RequestError(HTTPStatus.FORBIDDEN,
                                   f"this dashboard answers only on localhost, not {host!r}")
            return None
        given = [self.headers.get("X-Parzen-Token") or ""]
        auth = self.headers.get("Authorization") or ""
        if auth.startswith("Bearer "):
            given.append(auth[7:])
        cookies = SimpleCookie(self.headers.get("Cookie") or "")
        if TOKEN_COOKIE in cookies:
            given.append(cookies[TOKEN_COOKIE].value)
        from_url = query.get("token", [""])[0]
        given.append(from_url)
        if not any(g and hmac.compare_digest(g.encode(), d.token.encode()) for g in given):
            raise RequestError(HTTPStatus.UNAUTHORIZED,
                               "this dashboard needs its access token: open it as "
                               "http://HOST:PORT/?token=TOKEN (the token given to parzen "
                               "dashboard with --token or PARZEN_DASHBOARD_TOKEN)")
        return from_url if from_url and hmac.compare_digest(from_url.encode(),
                                                            d.token.encode()) else None

    def _api(self, method: str, parts: list[str], query: Mapping[str, list[str]]) -> Any:
        d = self.server.dashboard
        if parts == ["config"] and method == "GET":
            return d.config()
        if parts == ["experiments"] and method == "GET":
            return d.experiment_list()
        if len(parts) >= 2 and parts[0] == "exp":
            key, rest = parts[1], parts[2:]
            if method == "POST" and len(rest) == 2 and rest[0] == "action":
                if self.headers.get(ACTION_HEADER) != "1":
                    # A form on another site cannot set this header; the page's fetch does.
                    raise RequestError(HTTPStatus.FORBIDDEN,
                                       f"an action needs the {ACTION_HEADER} header")
                return d.act(key, rest[1])
            if method != "GET":
                raise RequestError(HTTPStatus.METHOD_NOT_ALLOWED, f"{method} is not served here")
            if not rest:
                return d.poll(key, query.get("since", [""])[0])
            view, _ = d.view(key)
            if rest == ["importance"]:  # (takes the view's lock itself, briefly)
                return {"importance": view.importance()}
            with view.lock:
                if rest == ["errors"]:
                    return {"groups": view.errors()}
                if len(rest) == 2 and rest[0] == "trial" and rest[1].lstrip("-").isdigit():
                    found = view.trial(int(rest[1]))
                    if found is None:
                        raise RequestError(HTTPStatus.NOT_FOUND,
                                           f"no trial {rest[1]} in {key!r}")
                    return found
        raise RequestError(HTTPStatus.NOT_FOUND, f"no API {'/'.join(parts)!r}")

    def _static(self, name: str, cookie: str | None) -> None:
        files = self.server.static
        if name not in files:
            raise RequestError(HTTPStatus.NOT_FOUND, f"no file {name!r}")
        data = files[name]
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind == "application/javascript":
            kind += "; charset=utf-8"
        headers = {"Cache-Control": "no-cache"}
        if cookie is not None:
            headers["Set-Cookie"] = (f"{TOKEN_COOKIE}={cookie}; HttpOnly; SameSite=Strict; "
                                     "Path=/")
        self._send(HTTPStatus.OK, data, kind, headers)

    def _json(self, status: HTTPStatus, body: Any) -> None:
        raw = {k: body.pop(k) for k in [k for k, v in body.items() if isinstance(v, RawJson)]} \
            if isinstance(body, dict) else {}
        try:
            text = json.dumps(body, allow_nan=False, separators=(",", ":"))
        except ValueError:  # a NaN in a trial's result, say
            text = json.dumps(_plain(body), allow_nan=False, separators=(",", ":"))
        if raw:
            spliced = ",".join(f"{json.dumps(k)}:{v}" for k, v in raw.items())
            text = f"{text[:-1]}{',' if len(text) > 2 else ''}{spliced}}}"
        self._send(status, text.encode(), "application/json",
                   {"Cache-Control": "no-store"})

    def _send(self, status: HTTPStatus, data: bytes, kind: str,
              headers: Mapping[str, str]) -> None:
        if len(data) >= GZIP_MIN_BYTES and "gzip" in (self.headers.get("Accept-Encoding") or ""):
            data = gzip.compress(data, compresslevel=1)
            headers = {**headers, "Content-Encoding": "gzip"}
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


def _plain(obj: Any) -> Any:
    """``obj`` with non-finite floats as None and anything else JSON cannot hold as text."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (bytes, bytearray)):
        return f"<{len(obj)} bytes>"
    return str(obj)


def static_files() -> dict[str, bytes]:
    """The page's files, shipped in the package (read once: a few hundred KB)."""
    root = resources.files("parzen.cli.dashboard") / "static"
    out: dict[str, bytes] = {}

    def walk(node: Any, prefix: str) -> None:
        for child in node.iterdir():
            if child.is_dir():
                walk(child, f"{prefix}{child.name}/")
            else:
                out[f"{prefix}{child.name}"] = child.read_bytes()

    walk(root, "")
    return out


class DashboardServer(ThreadingHTTPServer):
    """The threaded HTTP server, with the dashboard's state."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], dashboard: Dashboard) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.dashboard = dashboard
        self.static = static_files()
        super().__init__(address, Handler)
