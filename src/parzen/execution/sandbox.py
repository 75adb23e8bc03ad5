"""A child process per worker slot that evaluates the objective.

Running the objective in a child keeps the worker alive when the objective segfaults, calls
``os._exit``, is killed by the OOM killer or hangs past its time limit: the supervisor sees the
child's exit code or kills it, records why, and starts a fresh child for the next trial. The
child is long-lived, so a loaded objective is reused across trials and the per-trial cost is
one pipe round trip.

The supervisor verifies a payload's signature *before* sending its bytes; the child only ever
unpickles verified bytes.

Two things never reach past the trial:

- **Processes.** The child leads a process group of its own, and every path that ends it
  (time limit, abort, shutdown, crash, the end of a run) kills the whole group, so what the
  objective started (data loaders, a training process holding a GPU) dies with it. A
  descendant that leaves the group on purpose (``setsid``, ``start_new_session=True``, a
  daemon) is out of reach; run workers under a cgroup (systemd, Kubernetes, Slurm) for those.
- **Secrets.** The child's environment holds none of parzen's credentials
  (``scrubbed_environ``): an objective that logs its environment cannot write the signing
  key or a password into its trial document.
"""

from __future__ import annotations

import enum
import logging
import multiprocessing.connection
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from parzen.exceptions import ObjectiveUnloadable
from parzen.execution.judge import current_judge
from parzen.execution.messages import (
    Evaluate,
    FromChild,
    Load,
    ObjectiveRef,
    Pruned,
    Raised,
    Report,
    Returned,
    ToChild,
    Unloadable,
    Verdict,
)
from parzen.reporting import Sink, TrialPruned
from parzen.trial import ErrorInfo

log = logging.getLogger("parzen.execution.sandbox")

# parzen's variables that carry a credential, or name a file that holds one: the signing key
# (PARZEN_SECRET, PARZEN_SECRET_FILE) and the MongoDB and broker URLs with their passwords
# (PARZEN_MONGO_URL, PARZEN_BROKER_URL, PARZEN_MONGO_URL_FILE, PARZEN_BROKER_URL_FILE). A
# pattern rather than a list, so that a variable added later is scrubbed without anyone
# remembering to add it here. The rest (PARZEN_QUEUE, PARZEN_WORKER_NAME, ...) stays: it is
# not secret, and an objective may log it.
_CREDENTIAL_ENV = re.compile(r"PARZEN_\w*(SECRET|URL|PASSWORD|TOKEN|KEY|CREDENTIAL)\w*")


def scrubbed_environ(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``environ`` (default: this process's) without parzen's credentials.

    The objective's child gets this environment. Its own credentials (cloud keys, a dataset
    token) pass unchanged: the objective may need them, and they are the user's to manage.
    """
    env = os.environ if environ is None else environ
    return {k: v for k, v in env.items() if not _CREDENTIAL_ENV.fullmatch(k)}


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
        self._env = scrubbed_environ()
        if sys_path:
            # ParallelTrials passes the coordinator's sys.path, so an objective pickled by
            # reference (defined in an importable module) imports in the child as it did
            # there.
            self._env["PYTHONPATH"] = os.pathsep.join(
                [p for p in sys_path if p] + [self._env.get("PYTHONPATH", "")])
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: multiprocessing.connection.Connection | None = None
        self._loaded: str | None = None
        self._judge: Sink | None = None

    def _alive(self) -> bool:
        return self._proc is not None and not _exited(self._proc)

    def _ensure(self) -> multiprocessing.connection.Connection:
        if not self._alive():
            self.kill()  # a child that died between trials: reap it, and end its group
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
        """Kill the child and every process it started, now (timeout, shutdown, lost lease,
        the end of a run)."""
        if self._proc is not None:
            _kill_group(self._proc)
        self._discard()

    def close(self) -> None:
        """Stop the child; the sandbox can be used again afterwards."""
        if self._alive():
            assert self._conn is not None and self._proc is not None
            self._conn.close()
            self._conn = None
            # EOF on its socket makes the child exit; what it started is killed below.
            _wait_exit(self._proc, 1)
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
                    if not isinstance(reply, Report):
                        return reply
                    self._answer(reply)
                    # An objective reporting every millisecond must still meet its time
                    # limit, and stop when the lease is lost or the worker shuts down.
                    self._check_deadlines(timeout_s, abort, started)
                    continue
            except (EOFError, OSError):
                pass  # the child died mid-message; reported below
            else:
                if not _exited(proc):
                    self._check_deadlines(timeout_s, abort, started)
                    continue
            raise self._crashed()

    def _answer(self, report: Report) -> None:
        """Judge the child's report and send the verdict; the objective waits for it."""
        try:
            prune = self._judge is not None and self._judge.report(report.step, report.loss)
        except BaseException:
            self.kill()  # the child waits for a verdict that will not come
            raise
        self._send(Verdict(prune))

    def _crashed(self) -> EvaluationCrashed:
        """Reap the dead (or dying) child and describe how it ended."""
        proc = self._proc
        assert proc is not None
        # Let it finish dying first, so its own exit code (not our SIGKILL) is reported; then
        # its group goes, with whatever the objective started.
        _wait_exit(proc, 2)
        _kill_group(proc)
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
                 abort: AbortCheck = lambda: None, judge: Sink | None = None
                 ) -> dict[str, Any]:
        """Evaluate the objective at ``params`` in the child.

        Raises:
            ObjectiveUnloadable: the child cannot load the objective (missing module, ...).
            ObjectiveFailed: the objective raised (or returned an invalid result).
            TrialPruned: the objective stopped with ``TrialPruned``. Its reports go to
                ``judge`` (default: the judge ``run_trial`` set up for this thread), which
                answers each.
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
        self._judge = judge if judge is not None else current_judge()
        try:
            reply = self._await(timeout_s, abort, time.monotonic())
        finally:
            self._judge = None
        if isinstance(reply, Returned):
            return reply.result
        if isinstance(reply, Pruned):
            raise TrialPruned(reply.message)
        if isinstance(reply, Raised):
            raise ObjectiveFailed(reply.error)
        raise EvaluationCrashed(f"the objective's process answered out of turn: {reply!r}")


def _exited(proc: subprocess.Popen[bytes]) -> bool:
    """Whether ``proc`` has ended, *without* reaping it.

    Until it is reaped, its pid, which is also its process group's id, cannot be given to
    another process, so ``_kill_group`` cannot hit a stranger's group.
    """
    if proc.returncode is not None:
        return True
    if not hasattr(os, "waitid"):  # not on every Unix; there, reap (a tiny pid-reuse window)
        return proc.poll() is not None
    try:
        return os.waitid(os.P_PID, proc.pid,
                         os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped already, by someone else
        return proc.poll() is not None


def _wait_exit(proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Wait up to ``timeout_s`` for ``proc`` to end, leaving it unreaped."""
    deadline = time.monotonic() + timeout_s
    while not _exited(proc) and time.monotonic() < deadline:
        time.sleep(0.01)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``proc``'s process group (the child and every descendant still in it), then
    reap the child.

    The child was started in a session of its own, so its group id is its pid. The group is
    killed while the child is still unreaped (alive or a zombie): its group id is then ours.
    """
    if proc.returncode is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # the group is gone already
        except PermissionError as exc:  # only if every member changed user (setuid)
            log.warning("could not kill the objective's process group %d (%s); kill it as "
                        "root: kill -9 -- -%d", proc.pid, exc, proc.pid)
            proc.kill()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        # SIGKILLed and still there: stuck in the kernel (D state, a hung NFS or GPU driver).
        log.warning("the objective's process %d did not die within 5 s of SIGKILL (stuck in "
                    "the kernel?); leaving it behind", proc.pid)
