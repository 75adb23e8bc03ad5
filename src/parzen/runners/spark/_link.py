"""The driver's end of the slots' links: a TCP listener, and one ``Link`` per task.

Each connection first proves that it holds the run's key (``multiprocessing.connection``'s
HMAC challenge, both ways) in a thread of its own, so a stray or silent connection holds up
nothing (the run ends it); then its ``Hello`` says which slot it serves, and it is handed
to that slot.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import queue
import socket
import threading
import time
from typing import Any

from parzen.execution.sandbox import AbortCheck, AbortReason
from parzen.runners.spark._wire import Hello

log = logging.getLogger("parzen.runners.spark")

_POLL_S = 0.02
_ACCEPT_POLL_S = 0.2


class Link:
    """A connected slot task, as the driver sees it."""

    def __init__(self, conn: multiprocessing.connection.Connection, hello: Hello) -> None:
        self.conn = conn
        self.hello = hello
        self._closed = threading.Event()

    def alive(self) -> bool:
        """Whether the task is still there. Between trials the task sends nothing, so
        anything readable on an idle link is its end."""
        if self._closed.is_set():
            return False
        try:
            if self.conn.poll(0):
                self.close()
                return False
        except (OSError, EOFError):
            self.close()
            return False
        return True

    def send(self, msg: object) -> bool:
        """Send ``msg``; False when the link is gone."""
        try:
            self.conn.send(msg)
        except (OSError, ValueError):  # ValueError: closed on our side meanwhile
            self.close()
            return False
        return True

    def receive(self, abort: AbortCheck) -> tuple[Any, AbortReason | None]:
        """The task's reply, polling ``abort()``.

        Returns:
            ``(reply, None)``; ``(None, reason)`` when ``abort()`` gave a reason (the link is
            then stopped, which makes the task kill its evaluation: see ``stop``);
            ``(None, None)`` when the link was lost.
        """
        while True:
            try:
                if self.conn.poll(_POLL_S):
                    return self.conn.recv(), None
            except (EOFError, OSError, ValueError):
                self.close()
                return None, None
            reason = abort()
            if reason is not None:
                self.stop()
                return None, reason

    def stop(self) -> None:
        """Tell the task to stop: it reads the end of the link (our half is shut for
        writing), kills the evaluation it is running and closes its end, which
        ``wait_ended`` then sees."""
        if self._closed.is_set():
            return
        try:
            sock = socket.socket(fileno=os.dup(self.conn.fileno()))
            try:
                sock.shutdown(socket.SHUT_WR)
            finally:
                sock.close()
        except OSError:
            self.close()

    def wait_ended(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the task to close its end (after ``stop``), then
        close ours. True when the task did: its evaluation was killed."""
        deadline = time.monotonic() + timeout_s
        ended = self._closed.is_set()  # closed on a lost link already
        while not self._closed.is_set() and time.monotonic() < deadline:
            try:
                if self.conn.poll(min(_POLL_S, max(0.0, deadline - time.monotonic()))):
                    self.conn.recv()  # a reply that crossed our stop: nobody wants it now
            except (EOFError, OSError, ValueError):
                ended = True
                break
        self.close()
        return ended

    def close(self) -> None:
        self._closed.set()
        try:
            self.conn.close()
        except OSError:
            pass


class Listener:
    """Accepts the slots' tasks and hands each to its slot's queue.

    Args:
        bind: the address to listen on (``spark.driver.bindAddress``, else the driver host).
        key: the run's key.
        arrivals: one queue per slot; a task's link goes to ``arrivals[hello.slot]``.
    """

    def __init__(self, bind: str, key: bytes, arrivals: list[queue.Queue[Link]]) -> None:
        self._key = key
        self._arrivals = arrivals
        self._server = socket.create_server((bind, 0))
        # accept() wakes up now and then to see whether the run has ended: closing a socket
        # does not interrupt an accept() waiting on it in another thread.
        self._server.settimeout(_ACCEPT_POLL_S)
        self.port: int = self._server.getsockname()[1]
        self._closed = threading.Event()
        self._pending: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True,
                                        name="parzen-spark-listener")
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                sock, peer = self._server.accept()  # a blocking socket (no default timeout)
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            with self._lock:
                if self._closed.is_set():
                    sock.close()
                    return
                self._pending.add(sock)
            threading.Thread(target=self._greet, args=(sock, peer), daemon=True,
                             name="parzen-spark-handshake").start()

    def _greet(self, sock: socket.socket, peer: Any) -> None:
        # The connection gets a duplicate of the socket's descriptor, so that ``close`` can
        # shut the socket down under a handshake that waits on a silent peer.
        conn = multiprocessing.connection.Connection(os.dup(sock.fileno()))
        handed = False
        try:
            hello = self._handshake(conn)
            if not 0 <= hello.slot < len(self._arrivals):
                log.warning("a SparkTrials task from %s named slot %d, which this run does not "
                            "have; closed", peer, hello.slot)
                return
            with self._lock:  # none is handed over once the listener is closed
                if self._closed.is_set():
                    return
                self._arrivals[hello.slot].put(Link(conn, hello))
                handed = True
        except (OSError, EOFError, multiprocessing.AuthenticationError, TypeError,
                ValueError) as exc:
            if not self._closed.is_set():
                log.warning("refused a connection from %s to SparkTrials' port %d: %s: %s (it "
                            "does not hold this run's key, or it is not one of this run's "
                            "Spark tasks)", peer, self.port, type(exc).__name__, exc)
        finally:
            with self._lock:
                self._pending.discard(sock)
            sock.close()
            if not handed:
                conn.close()

    def _handshake(self, conn: multiprocessing.connection.Connection) -> Hello:
        # The server's half of multiprocessing's handshake: make the task prove it holds
        # the key, then prove it ourselves; only then is anything unpickled.
        multiprocessing.connection.deliver_challenge(conn, self._key)
        multiprocessing.connection.answer_challenge(conn, self._key)
        hello = conn.recv()
        if not isinstance(hello, Hello):
            raise TypeError(f"expected a Hello, got {type(hello).__name__}")
        return hello

    def close(self) -> None:
        with self._lock:
            self._closed.set()
            pending = list(self._pending)
        try:
            # Wakes the accept() at once on Linux; elsewhere it notices within its poll.
            self._server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._thread.join(5)
        self._server.close()
        for sock in pending:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
