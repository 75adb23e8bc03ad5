"""The Celery application shared by the coordinator (to publish) and the workers (to consume).

Messages carry ids only, as JSON: ``parzen.evaluate_trial(exp_key, tid)``. The store decides
who runs a trial, so a redelivered or duplicated message is harmless.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any
from urllib.parse import urlsplit

import redis
from celery import Celery

from parzen.exceptions import ConfigError
from parzen.store.uri import redact

TASK_NAME = "parzen.evaluate_trial"
DEFAULT_QUEUE = "parzen"
# Redis redelivers an unacknowledged message after this long. It must exceed the longest
# trial; if it does not, the redelivered message finds the trial claimed and is a no-op.
DEFAULT_VISIBILITY_TIMEOUT_S = 12 * 3600
# How long reaching the broker may take: the TCP connect, then (rediss://) the TLS handshake.
BROKER_CONNECT_TIMEOUT_S = 5.0
# A broker connection silent for this long is dead. redis-py runs the TLS handshake under
# this timeout, not the connect one: without it, rediss:// against a plain port hung for good.
# kombu's BRPOP returns every second, so no healthy wait comes near it.
BROKER_SOCKET_TIMEOUT_S = 30.0
_REDIS_PORT = 6379


def make_app(broker_url: str, *, queue: str = DEFAULT_QUEUE, concurrency: int | None = None,
             visibility_timeout_s: float = DEFAULT_VISIBILITY_TIMEOUT_S) -> Celery:
    """A Celery app configured for parzen.

    Args:
        broker_url: ``redis://[:password@]host:port/db`` (``rediss://`` for TLS).
        queue: the queue trials are published to and consumed from.
        concurrency: worker slots (trials evaluated at once).
        visibility_timeout_s: see ``DEFAULT_VISIBILITY_TIMEOUT_S``.
    """
    app = Celery("parzen", broker=broker_url, set_as_current=False)
    conf: dict[str, Any] = {
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "result_backend": None,
        # Ack after the task ran, so a worker that dies mid-trial does not lose the message;
        # the lease, not the broker, decides what happens to the trial itself.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": queue,
        "broker_transport_options": {"visibility_timeout": int(visibility_timeout_s),
                                     "socket_connect_timeout": BROKER_CONNECT_TIMEOUT_S,
                                     "socket_timeout": BROKER_SOCKET_TIMEOUT_S},
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,  # a worker waits for Redis instead of exiting
        # A command Redis refuses (OOM at maxmemory, MISCONF, READONLY after a failover) is a
        # "channel error" to kombu: without this, the worker logged "Unrecoverable error" and
        # stopped. It reconnects and retries instead, as after a lost connection.
        "broker_channel_error_retry": True,
        "broker_connection_timeout": BROKER_CONNECT_TIMEOUT_S,
        # Threads supervise one objective child process each (see parzen.execution.sandbox): the
        # objective never runs in the worker process, so threads cost no parallelism, and
        # SIGTERM reaches the code that releases running trials.
        "worker_pool": "threads",
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "task_send_sent_event": False,
    }
    if concurrency is not None:
        conf["worker_concurrency"] = concurrency
    app.conf.update(conf)
    return app


def refusal_hint(exc: BaseException) -> str:
    """What an operator can do about a command the broker refused, when it is known ("" if
    not); ends with a space, to go before the rest of a message."""
    seen: BaseException | None = exc
    for _ in range(5):  # kombu wraps redis's error (OperationalError from OutOfMemoryError)
        if isinstance(seen, redis.exceptions.OutOfMemoryError):
            return ("Redis is out of memory (maxmemory reached, and its policy evicts "
                    "nothing): free memory on it, or raise the limit (redis-cli CONFIG SET "
                    "maxmemory <bytes>, and in redis.conf). ")
        if isinstance(seen, redis.exceptions.ReadOnlyError):
            return ("The broker is a read-only replica (a failover?): point the URL at the "
                    "primary. ")
        if seen is None:
            break
        seen = seen.__cause__ or seen.__context__
    return ""


def refuse_tls_to_a_plain_port(broker_url: str,
                               timeout_s: float = BROKER_CONNECT_TIMEOUT_S) -> None:
    """Refuse a ``rediss://`` broker whose port does not speak TLS, within ``timeout_s``.

    A TLS client talking to a plain Redis port waits for a handshake reply that never comes
    (Redis waits for the end of a command line), and kombu's connect timeout does not cover
    the handshake: the coordinator and the workers hung for good. This probe shakes hands
    without verifying anything (the real connection verifies as its URL says) and refuses only
    what cannot work: no handshake within ``timeout_s``, or a failed one from a port that
    answers a plain ``PING`` as Redis does. An unreachable broker passes: a worker waits for
    it, and the coordinator's broker check reports it.

    Raises:
        ConfigError: the port is a plain Redis port, or answers no TLS handshake; the message
            names the URL (password redacted) and the fix.
    """
    parts = urlsplit(broker_url)
    if parts.scheme != "rediss":
        return
    try:
        host, port = parts.hostname or "localhost", parts.port or _REDIS_PORT
    except ValueError:
        return  # a malformed port: the transport's own error names it
    try:
        raw = socket.create_connection((host, port), timeout=timeout_s)
    except OSError:
        return
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with context.wrap_socket(raw, server_hostname=host):
            return
    except TimeoutError:
        problem = f"sent no TLS handshake reply within {timeout_s:g} s"
        timed_out = True
    except OSError as exc:  # ssl.SSLError, a reset: maybe a client certificate is required
        problem = f"failed the TLS handshake ({type(exc).__name__}: {exc})"
        timed_out = False
    finally:
        raw.close()
    where = f"broker {redact(broker_url)}: {host}:{port}"
    plain = _answers_plain_redis(host, port, timeout_s)
    if plain:
        raise ConfigError(
            f"{where} {problem}; it is a plain Redis port (it answered a plain PING with "
            f"{plain!r}). Use redis:// instead of rediss://, or the server's TLS port "
            "(tls-port in redis.conf)")
    if timed_out:
        raise ConfigError(
            f"{where} {problem}. rediss:// needs a TLS port (tls-port in redis.conf); for a "
            "plain port use redis://. Are the host and port right?")


def _answers_plain_redis(host: str, port: int, timeout_s: float) -> str:
    """The first line a plain ``PING`` gets from ``host:port`` when it reads like Redis
    (``+PONG``, ``-NOAUTH ...``), else ``""``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(b"PING\r\n")
            reply = sock.recv(256)
    except OSError:
        return ""
    line = reply.split(b"\r\n", 1)[0]
    if reply[:1] in (b"+", b"-") and b"\r\n" in reply:
        return line.decode("ascii", "replace")[:80]
    return ""
