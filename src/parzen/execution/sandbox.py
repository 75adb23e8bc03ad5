"""A child process per worker slot that evaluates the objective.

Running the objective in a child keeps the worker alive when the objective segfaults, calls
``os._exit``, is killed by the OOM killer or hangs past its time limit: the supervisor sees the
child's exit code or kills it, records why, and starts a fresh child for the next trial. The
child is long-lived, so a loaded objective is reused across trials and the per-trial cost is
one pipe round trip.

The supervisor verifies a payload's signature *before* sending its bytes; the child only ever
unpickles verified bytes.
"""

from __future__ import annotations

import enum
import logging
import multiprocessing.connection
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from parzen.exceptions import ObjectiveUnloadable
from parzen.execution.messages import (
    Evaluate,
    FromChild,
    Load,
    ObjectiveRef,
    Raised,
    Returned,
    ToChild,
    Unloadable,
)
from parzen.trial import ErrorInfo

log = logging.getLogger("parzen.execution.sandbox")


class ObjectiveFailed(Exception):
    """The objective raised; ``info`` carries the child's type, message and traceback."""

    def __init__(self, info: ErrorInfo) -> None:
        super().__init__(f"{info.type}: {info.message}")
        self.info = info


class EvaluationCrashed(Exception):
    """The child died during the evaluation (signal, exit, OOM kill)."""


class EvaluationTimeout(Exception):
    """The evaluation ran past the trial's hard time limit and was killed."""


class AbortReason(enum.Enum):
    """Why the supervisor stops an evaluation before it ends."""

    LEASE_LOST = "lease lost"  # another attempt owns the trial: nothing of ours will count
    SHUTDOWN = "worker shutting down"  # the worker (or fmin's local runner) is stopping


# ``abort()`` is polled while the objective runs; a reason stops the evaluation.
AbortCheck = Callable[[], "AbortReason | None"]


class EvaluationAborted(Exception):
    """The supervisor stopped the evaluation; ``reason`` says why."""

    def __init__(self, reason: AbortReason) -> None:
        super().__init__(reason.value)
        self.reason = reason


def describe_exit(exitcode: int | None) -> str:
    """A human description of a child's exit code, naming the signal."""
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (the out-of-memory killer sends SIGKILL)" if name == "SIGKILL" else ""
        return f"killed by {name}{hint}"
    return f"exited with code {exitcode}"


class Sandbox:
    """One evaluation child, restarted after it dies or is killed.

    The child is a fresh interpreter (``python -m parzen.execution._child FD``) rather than a
    multiprocessing child: the supervisor is multi-threaded, so forking could deadlock, and
    multiprocessing's spawn re-imports the user's ``__main__``, which breaks scripts written
    without an ``if __name__ == "__main__"`` guard, as most hyperopt scripts are.
    """

    def __init__(self, sys_path: list[str] | None = None) -> None:
        # ParallelTrials passes the coordinator's sys.path, so an objective pickled by
        # reference (defined in an importable module) imports in the child as it did there.
        self._env: dict[str, str] | None = None
        if sys_path:
            self._env = dict(os.environ)
            self._env["PYTHONPATH"] = os.pathsep.join(
                [p for p in sys_path if p] + [self._env.get("PYTHONPATH", "")])
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: multiprocessing.connection.Connection | None = None
        self._loaded: str | None = None

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _ensure(self) -> multiprocessing.connection.Connection:
        if not self._alive():
            self._discard()
            ours, theirs = socket.socketpair()
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "parzen.execution._child", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=self._env,
                # A new session keeps a terminal's Ctrl-C for the supervisor, which then
                # stops the child itself.
                start_new_session=True,
            )
            theirs.close()
            self._conn = multiprocessing.connection.Connection(ours.detach())
            self._loaded = None
        assert self._conn is not None
        return self._conn

    def _discard(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._proc = None
        self._loaded = None

    def kill(self) -> None:
        """Kill the child now (timeout, shutdown, lost lease)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(5)
        self._discard()

    def close(self) -> None:
        """Stop the child; the sandbox can be used again afterwards."""
        if self._alive():
            assert self._conn is not None and self._proc is not None
            self._conn.close()
            self._conn = None
            try:
                self._proc.wait(1)  # EOF on its socket makes the child exit
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    @property
    def pid(self) -> int | None:
        """The child's process id, while it runs."""
        return self._proc.pid if self._alive() and self._proc is not None else None

    def _await(self, timeout_s: float | None, abort: AbortCheck,
               started: float) -> FromChild:
        conn = self._conn
        proc = self._proc
        assert conn is not None and proc is not None
        while True:
            try:
                if conn.poll(0.02):
                    reply: FromChild = conn.recv()
                    return reply
            except (EOFError, OSError):
                pass  # the child died mid-message; reported below
            else:
                if proc.poll() is None:
                    self._check_deadlines(timeout_s, abort, started)
                    continue
            raise self._crashed()

    def _crashed(self) -> EvaluationCrashed:
        """Reap the dead (or dying) child and describe how it ended."""
        proc = self._proc
        assert proc is not None
        try:
            proc.wait(2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        why = describe_exit(proc.returncode)
        self._discard()
        return EvaluationCrashed(f"the objective's process {why}")

    def _check_deadlines(self, timeout_s: float | None, abort: AbortCheck,
                         started: float) -> None:
        if timeout_s is not None and time.monotonic() - started > timeout_s:
            self.kill()
            raise EvaluationTimeout(f"timeout after {timeout_s:g} s")
        reason = abort()
        if reason is not None:
            self.kill()
            raise EvaluationAborted(reason)

    def _send(self, msg: ToChild) -> None:
        assert self._conn is not None and self._proc is not None
        try:
            self._conn.send(msg)
        except OSError:
            # The child died between our liveness check and this write.
            raise self._crashed() from None

    def evaluate(self, ref: ObjectiveRef, params: Mapping[str, Any], tid: int, *,
                 timeout_s: float | None = None,
                 abort: AbortCheck = lambda: None) -> dict[str, Any]:
        """Evaluate the objective at ``params`` in the child.

        Raises:
            ObjectiveUnloadable: the child cannot load the objective (missing module, ...).
            ObjectiveFailed: the objective raised (or returned an invalid result).
            EvaluationCrashed: the child died.
            EvaluationTimeout: ``timeout_s`` passed; the child was killed.
            EvaluationAborted: ``abort()`` returned a reason; the child was killed.
        """
        started = time.monotonic()
        self._ensure()
        if self._loaded != ref.key:
            self._send(Load(ref))
            reply = self._await(None, abort, started)
            if isinstance(reply, Unloadable):
                self._loaded = None
                text = f"this worker cannot load the objective: {reply.type}: {reply.message}"
                if reply.missing_module:
                    text += (f". Install module {reply.missing_module!r} on the workers so "
                             "that the objective's imports resolve")
                raise ObjectiveUnloadable(text)
            self._loaded = ref.key
        self._send(Evaluate(ref.key, tid, dict(params)))
        # The time limit covers the evaluation only, not the child's start-up or loading.
        reply = self._await(timeout_s, abort, time.monotonic())
        if isinstance(reply, Returned):
            return reply.result
        if isinstance(reply, Raised):
            raise ObjectiveFailed(reply.error)
        raise EvaluationCrashed(f"the objective's process answered out of turn: {reply!r}")
