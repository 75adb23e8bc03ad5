"""The Spark task of one slot: it runs on an executor and evaluates trials until the run
ends.

``serve`` is the function of a one-partition Spark job (``mapPartitions``). It connects back
to the driver, checks the objective payload's signature with the run's key before anything
is unpickled, and then evaluates one trial after another in a sandbox child
(``parzen.execution.sandbox``): a segfault or an ``os._exit`` in the objective costs one
attempt, not the Spark Python worker. When the driver closes the link (the run ended, was
stopped or interrupted), the task kills the evaluation it is running and returns, which
ends its Spark job.

Reports (``parzen.report``) travel the same link: the sandbox child sends each to the task,
which forwards it to the driver as ``Progress`` and hands the driver's ``Decision`` back to
the child. The pruner and the trial's judge live in the driver's slot thread, which waits on
this link for the trial's reply anyway, so a report costs one more round trip on a
connection that is already open and authenticated.

The sandbox child is kept warm in the Python worker for ``KEEP_WARM_S`` after a task ends:
Spark reuses its Python workers, so the next run's tasks (a second ``fmin`` in a notebook)
find a child that has imported parzen already. It is closed after that, so an objective's
data does not stay in an executor's memory for longer.
"""

from __future__ import annotations

import hashlib
import multiprocessing.connection
import os
import platform
import socket
import sys
import threading
from collections.abc import Iterable, Iterator

from parzen.exceptions import ObjectiveUnloadable, PayloadSignatureError
from parzen.execution import payload
from parzen.execution.messages import ObjectiveRef, Pruned, Raised, Returned
from parzen.execution.sandbox import (
    AbortReason,
    EvaluationAborted,
    EvaluationCrashed,
    EvaluationTimeout,
    ObjectiveFailed,
    Sandbox,
)
from parzen.reporting import TrialPruned
from parzen.runners.spark._wire import (
    Assign,
    Decision,
    Failed,
    FailureKind,
    Hello,
    Progress,
    SlotSpec,
    Welcome,
)
from parzen.version import __version__

# How long a task waits to reach the driver before it gives up (its Spark job then fails,
# and the driver says why).
CONNECT_TIMEOUT_S = 30.0
# How long an idle sandbox child stays alive in a Spark Python worker after a task.
KEEP_WARM_S = 60.0


class DriverUnreachable(ConnectionError):
    """The task cannot open its link to the driver."""


def serve(spec: SlotSpec, _rows: Iterable[object]) -> Iterator[int]:
    """Serve the slot ``spec`` until the driver closes the link; yield how many trials ran.

    Raises:
        DriverUnreachable: the driver's address cannot be reached from this executor.
    """
    for _ in _rows:
        pass  # read to the end, or Spark cannot reuse this Python worker for another task
    conn = _connect(spec)
    served = 0
    try:
        conn.send(Hello(spec.slot, spec.generation, socket.gethostname(), os.getpid(),
                        platform.python_version(), __version__, _attempt()))
        welcome = conn.recv()
        if isinstance(welcome, Welcome):
            served = _serve(conn, spec, welcome)
    except (EOFError, OSError):
        pass  # the driver closed the link: the run is over
    finally:
        conn.close()
    yield served


def _attempt() -> int:
    from pyspark import TaskContext  # pyspark is on every executor that runs this

    context = TaskContext.get()
    return context.attemptNumber() if context is not None else 0


def _connect(spec: SlotSpec) -> multiprocessing.connection.Connection:
    host, port = spec.address
    try:
        sock = socket.create_connection(spec.address, timeout=CONNECT_TIMEOUT_S)
    except OSError as exc:
        raise DriverUnreachable(
            f"parzen's Spark task on {socket.gethostname()} cannot reach the driver at "
            f"{host}:{port} ({type(exc).__name__}: {exc}). SparkTrials' tasks connect back "
            "to the driver on a port of its own, picked at random: the executors must reach "
            "the driver's host on any port, as they reach its other Spark ports; check "
            "spark.driver.host and the firewall or security group between them"
        ) from None
    sock.settimeout(None)
    conn = multiprocessing.connection.Connection(sock.detach())
    # The client's half of multiprocessing's handshake: prove we hold the key, then make
    # the driver prove it.
    multiprocessing.connection.answer_challenge(conn, spec.key)
    multiprocessing.connection.deliver_challenge(conn, spec.key)
    return conn


def _serve(conn: multiprocessing.connection.Connection, spec: SlotSpec,
           welcome: Welcome) -> int:
    """Evaluate the trials the driver assigns, one at a time, until it closes the link."""
    ref: ObjectiveRef | None = None
    refused: Failed | None = None
    try:
        header, body = payload.verify(welcome.payload, spec.key)
        payload.refuse_python_skew(header)
        ref = ObjectiveRef(key=hashlib.sha256(welcome.payload).hexdigest(), pickle=body)
    except (PayloadSignatureError, ObjectiveUnloadable) as exc:
        refused = Failed(FailureKind.UNLOADABLE, f"{exc} (executor {socket.gethostname()})")
    paths = _import_path(welcome.sys_path)
    sandbox = _WARM.take(paths)
    served = 0
    try:
        while True:
            msg = conn.recv()
            if not isinstance(msg, Assign):
                return served
            if refused is not None or ref is None:
                conn.send(refused)
                continue
            reply = _evaluate(conn, sandbox, ref, msg, welcome.trial_timeout)
            if reply is None:
                return served  # the driver closed the link during the evaluation
            conn.send(reply)
            served += 1
    finally:
        _WARM.park(paths, sandbox)


class _DriverSink:
    """The judge of the sandbox's evaluation, as seen from the task: each report goes to
    the driver, and its decision comes back. The sandbox calls it from the task's thread
    while the child waits for the verdict."""

    def __init__(self, conn: multiprocessing.connection.Connection) -> None:
        self._conn = conn

    def report(self, step: int, loss: float) -> bool:
        try:
            self._conn.send(Progress(step, loss))
            answer = self._conn.recv()
        except (EOFError, OSError):
            # The driver closed the link (the run stopped, the lease was lost): the sandbox
            # kills the child, which waits for this answer, and the task ends.
            raise EvaluationAborted(AbortReason.SHUTDOWN) from None
        if not isinstance(answer, Decision):
            # Only a Decision answers a Progress; anything else means the two ends disagree
            # on where they are, and nothing this evaluation sends could be trusted.
            raise EvaluationAborted(AbortReason.SHUTDOWN)
        return answer.prune


def _evaluate(conn: multiprocessing.connection.Connection, sandbox: Sandbox,
              ref: ObjectiveRef, msg: Assign, trial_timeout: float | None
              ) -> Returned | Raised | Pruned | Failed | None:
    def abort() -> AbortReason | None:
        # The driver sends nothing while a trial runs but the answer to each Progress, which
        # the sink reads at once: anything else readable is the link closing.
        return AbortReason.SHUTDOWN if conn.poll(0) else None

    where = f"executor {socket.gethostname()}"
    try:
        return Returned(sandbox.evaluate(ref, msg.params, msg.tid, timeout_s=trial_timeout,
                                         abort=abort, judge=_DriverSink(conn)))
    except TrialPruned as exc:
        return Pruned(str(exc))
    except ObjectiveFailed as exc:
        return Raised(exc.info)
    except ObjectiveUnloadable as exc:
        return Failed(FailureKind.UNLOADABLE, f"{exc} ({where})")
    except EvaluationCrashed as exc:
        return Failed(FailureKind.CRASHED, f"{exc} ({where})")
    except EvaluationTimeout as exc:
        return Failed(FailureKind.TIMEOUT, str(exc))
    except EvaluationAborted:
        return None


def _import_path(driver_paths: Iterable[str]) -> tuple[str, ...]:
    """The objective's import path: this worker's (its working directory holds the files
    of ``--py-files`` and ``addPyFile``), then the driver's directories that exist here."""
    out: list[str] = []
    for p in [os.getcwd(), *sys.path, *driver_paths]:
        if p and p not in out and os.path.exists(p):  # directories, and zips (--py-files)
            out.append(p)
    return tuple(out)


class _WarmSandbox:
    """The Python worker's idle sandbox child, closed ``KEEP_WARM_S`` after its last task."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sandbox: Sandbox | None = None
        self._paths: tuple[str, ...] = ()
        self._timer: threading.Timer | None = None
        self._parked = 0  # which parking the timer belongs to: an old timer closes nothing

    def take(self, paths: tuple[str, ...]) -> Sandbox:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            sandbox, self._sandbox = self._sandbox, None
            if sandbox is not None and self._paths == paths:
                return sandbox
        if sandbox is not None:
            sandbox.close()
        return Sandbox(sys_path=list(paths))

    def park(self, paths: tuple[str, ...], sandbox: Sandbox) -> None:
        with self._lock:
            self._sandbox, self._paths = sandbox, paths
            self._parked += 1
            self._timer = threading.Timer(KEEP_WARM_S, self._expire, args=(self._parked,))
            self._timer.daemon = True
            self._timer.start()

    def _expire(self, parked: int) -> None:
        with self._lock:
            if parked != self._parked:
                return
            sandbox, self._sandbox = self._sandbox, None
        if sandbox is not None:
            sandbox.close()


_WARM = _WarmSandbox()
