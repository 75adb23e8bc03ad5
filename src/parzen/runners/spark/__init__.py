"""``SparkRunner``: the fmin loop's trials evaluated as Spark tasks on the executors.

The loop, the store (in memory, in the driver) and ``run_trial`` are those of every other
mode; only the evaluation travels. Each of ``parallelism`` slots is a one-task Spark job
whose task connects back to the driver and evaluates the trials the slot hands it, one
after another, in a sandbox child on its executor (``_task.py``). A slot's thread in the
driver runs ``run_trial`` (claim, evaluate, record) and sends each evaluation to its task.

Long-lived tasks that pull trials, rather than one Spark job per trial: on a local[4]
Spark, a job per trial cost about a quarter of a second of scheduling for each trial, and
kept 0.5 s trials busy 70 % of the time at best; a trial handed over a link costs a
message (``bench/spark.py --designs``).

**Pruning.** ``parzen.report`` and the ``TrialHandle`` work as in every other mode. The
report is made on the executor, in the sandbox child, whose supervisor is the slot's task;
the judge that ``run_trial`` made for the attempt (with the run's pruner) lives in the
driver's slot thread. The task forwards each report over the slot's link (``Progress``),
the slot thread hands it to that judge and answers with its ``Decision``, and the task
passes it to the child, where ``parzen.report`` raises ``TrialPruned`` on a prune. The
child's ``Pruned`` comes back over the link and ``run_trial`` records the trial PRUNED
with its last step and loss. The link is the one every message already travels, opened
with the run's key (an HMAC challenge each way), so a report adds a round trip on an open
connection: a report took 0.25 to 0.5 ms (medians) on a local[2] Spark on 2 busy cores,
0.1 to 0.3 ms more than with ``ParallelTrials`` (``tests/spark/pruning_objectives.py``'s
``timed_reports``: 200 reports in a tight loop, timed in the objective). The slot thread
asks ``abort()`` after each report, so a run that stops also stops a trial that reports
without pause.

What happens when:

- **the objective raises**: the trial is ERROR with its traceback, as in ``ParallelTrials``.
- **its process dies** (segfault, ``os._exit``, OOM): the sandbox reports it; the trial is
  run again up to ``max_attempts``, then ERROR names the signal or exit code.
- **the executor or its Python worker is lost** mid-trial: the link drops; the trial is run
  again up to ``max_attempts``, then ERROR names Spark's error. The slot launches a new job.
- **the run stops** (max_evals, timeout, early stop, loss_threshold, Ctrl-C, an error): the
  driver closes every link, which makes each task kill its evaluation and end; a job still
  running after ``STOP_GRACE_S`` (its task stuck, or never scheduled) is cancelled through
  its Spark job group, with interrupt on cancel. The trials that were running are
  given back and cancelled with the queued ones.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import queue
import secrets
import socket
import sys
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from parzen.backends import SparkBackend
from parzen.domain import Domain
from parzen.exceptions import ObjectiveUnloadable, ParzenError
from parzen.execution import payload
from parzen.execution.judge import current_judge
from parzen.execution.messages import Pruned, Raised, Returned
from parzen.execution.run import OutcomeStatus, run_trial
from parzen.execution.sandbox import (
    AbortCheck,
    AbortReason,
    EvaluationAborted,
    EvaluationCrashed,
    EvaluationTimeout,
    ObjectiveFailed,
)
from parzen.pruners import Pruner
from parzen.reporting import Sink, TrialPruned
from parzen.runners.base import Closing, cancel_queued
from parzen.runners.slots import SlotThreads
from parzen.runners.spark._job import SlotJob, is_cancellation
from parzen.runners.spark._link import Link, Listener
from parzen.runners.spark._wire import (
    Assign,
    Decision,
    Failed,
    FailureKind,
    Progress,
    Refused,
    SlotSpec,
    Welcome,
)
from parzen.trial import Owner, TrialState
from parzen.trials import Trials
from parzen.version import __version__

if TYPE_CHECKING:  # the coordinator imports the runners package; only a type is needed
    from parzen.coordinator import RunSettings

log = logging.getLogger("parzen.runners.spark")

# A slot whose Spark job ends this many times in a row before its task reaches the driver
# stops the run: the executors cannot run parzen's task (not installed, the driver
# unreachable), and the error says so.
MAX_LAUNCH_FAILURES = 3
RELAUNCH_DELAY_S = 1.0  # times the failures so far
# How long a link lost mid-trial waits for its Spark job's error, to name the cause.
LOST_GRACE_S = 5.0
# How long tasks get to end on their own once their links are closed, before their job
# groups are cancelled; and how long the cancelling goes on.
STOP_GRACE_S = 2.0
CANCEL_WAIT_S = 10.0

_FAILURES = {FailureKind.UNLOADABLE: ObjectiveUnloadable,
             FailureKind.CRASHED: EvaluationCrashed,
             FailureKind.TIMEOUT: EvaluationTimeout}


class SparkTaskError(ParzenError):
    """The executors cannot run SparkTrials' tasks; the message says why and what to do."""


def run_settings(backend: SparkBackend, settings: RunSettings) -> RunSettings:
    """fmin's settings with ``SparkTrials``' own ``timeout`` and ``loss_threshold``, by
    hyperopt's rules: the trials' timeout wins over fmin's; fmin's loss_threshold wins over
    the trials'. Warns when ``parallelism`` is more than ``max_evals``."""
    timeout = settings.timeout
    if backend.timeout is not None:
        if timeout is not None and timeout != backend.timeout:
            log.warning("fmin(timeout=%g) and SparkTrials(timeout=%g) both set a time limit: "
                        "SparkTrials' applies, as in hyperopt; pass only one", timeout,
                        backend.timeout)
        timeout = backend.timeout
    loss_threshold = settings.loss_threshold if settings.loss_threshold is not None \
        else backend.loss_threshold
    if backend.parallelism > settings.max_evals:
        log.warning("SparkTrials(parallelism=%d) is more than max_evals=%d: at most %d trials "
                    "run at once, and %d task slots would stay idle; pass parallelism <= "
                    "max_evals", backend.parallelism, settings.max_evals, settings.max_evals,
                    backend.parallelism - settings.max_evals)
    return dataclasses.replace(settings, timeout=timeout, loss_threshold=loss_threshold)


def driver_address(session: Any) -> tuple[str, str]:
    """The host the executors reach the driver at, and the address to listen on: Spark's
    own ``spark.driver.host`` and ``spark.driver.bindAddress``."""
    conf = session.sparkContext.getConf()
    host = conf.get("spark.driver.host") or socket.gethostname()
    return host, conf.get("spark.driver.bindAddress") or host


def driver_paths() -> tuple[str, ...]:
    """The driver's working directory and its own source directories (``sys.path`` entries
    outside the Python installation and its site-packages), for the objective's imports on
    the executors: a module next to a script or notebook imports there as it did here, where
    the executors see the same files (a shared or identical file system, local mode)."""
    prefixes = {os.path.abspath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix,
                                             sys.base_exec_prefix)}
    out = [os.getcwd()]
    for p in sys.path:
        path = os.path.abspath(p) if p else ""
        if not path or path in out or not os.path.isdir(path):
            continue
        if any(path == pre or path.startswith(pre + os.sep) for pre in prefixes) or \
                "site-packages" in path or "dist-packages" in path:
            continue
        out.append(path)
    return tuple(out)


class _Slot:
    """One slot: its Spark job (relaunched as needed) and the link to that job's task."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.arrivals: queue.Queue[Link] = queue.Queue()
        self.generation = 0
        self.job: SlotJob | None = None
        self.link: Link | None = None
        self.connected = False  # whether the current job's task reached the driver
        self.busy = False  # a trial was sent to the task and no reply has come (yet)
        self.failures = 0  # launches in a row whose task never reached the driver


class SparkRunner(SlotThreads):
    """Slot threads in the driver, each feeding one long-lived Spark task from a queue."""

    MODE = "SparkTrials"
    # Released: the link to its task dropped before the trial reached it (no attempt made).
    RUN_AGAIN = (OutcomeStatus.CRASHED, OutcomeStatus.RELEASED)
    PASSED_THROUGH = (ObjectiveUnloadable, SparkTaskError)

    def __init__(self, trials: Trials, domain: Domain, backend: SparkBackend,
                 max_evals: int | None, pruner: Pruner | None = None) -> None:
        self._pruner = pruner
        self._key = payload.generate_secret()  # this run's key travels only to its tasks
        # Built here, so an objective that cannot travel is refused before anything runs.
        self._payload = payload.build((domain.fn, domain.expr), self._key,
                                      max_bytes=backend.max_payload_bytes).data
        self._trials = trials
        self._backend = backend
        self._session = backend.session
        n = backend.parallelism if max_evals is None else \
            max(1, min(backend.parallelism, max_evals))
        self._slots = [_Slot(i) for i in range(n)]
        self._run = secrets.token_hex(4)
        self._init_slots()
        self._listener: Listener | None = None
        self._address: tuple[str, int] = ("", 0)
        self._sys_path = driver_paths()
        self._threads: list[threading.Thread] = []

    # ---- the Runner protocol -------------------------------------------------------------

    def start(self) -> None:
        from pyspark import InheritableThread

        host, bind = driver_address(self._session)
        self._listener = Listener(bind, self._key, [s.arrivals for s in self._slots])
        self._address = (host, self._listener.port)
        log.info("SparkTrials run %s: %d slots; their tasks connect to the driver at %s:%d",
                 self._run, len(self._slots), host, self._listener.port)
        for slot in self._slots:
            self._launch(slot)
        # InheritableThread: a slot's relaunched jobs keep the local properties of the
        # thread that called fmin, as its first job does.
        self._threads = [InheritableThread(target=self._slot_main, args=(slot,), daemon=True,
                                           name=f"parzen-spark-slot-{slot.index}")
                         for slot in self._slots]
        for t in self._threads:
            t.start()

    def stop_requested(self) -> str | None:
        return None  # a run in this driver is stopped with Ctrl-C (or the notebook's stop)

    def queue_hint(self) -> str:
        waiting = [s.index for s in self._slots if not s.connected]
        if waiting:
            return (f"({len(waiting)} of the {len(self._slots)} SparkTrials tasks never reached "
                    "the driver: they wait for free task slots, or fail to start; the Spark "
                    "UI's jobs named 'parzen SparkTrials: slot ...' say which)")
        n = len(self._slots)
        return f"(the {n} Spark task{'s were' if n != 1 else ' was'} busy)"

    def close(self, closing: Closing) -> None:
        self._stop_slots()
        # A task stopped mid-trial must be gone before fmin returns: its link was stopped
        # (run_trial's abort), and its end closing says the evaluation was killed; a task
        # that does not answer in time has its job group cancelled. The idle tasks end once
        # their links close; a closer thread cancels any job that does not.
        if self._listener is not None:
            self._listener.close()  # no task is handed to a slot after this
        deadline = time.monotonic() + STOP_GRACE_S
        stuck: list[SlotJob] = []
        for slot in self._slots:
            if slot.link is not None and slot.busy:
                if not slot.link.wait_ended(max(0.0, deadline - time.monotonic())) \
                        and slot.job is not None:
                    stuck.append(slot.job)
            elif slot.link is not None:
                slot.link.close()
            while not slot.arrivals.empty():
                slot.arrivals.get_nowait().close()
        for job in stuck:
            log.info("cancelling Spark job group %s: its task did not stop", job.group)
            job.cancel(CANCEL_WAIT_S)
        rest = [s.job for s in self._slots if s.job is not None and s.job not in stuck]
        if any(not job.done.is_set() for job in rest):
            threading.Thread(target=_stop_jobs, args=(rest,), daemon=True,
                             name="parzen-spark-closer").start()
        if closing is not Closing.HANDS_OFF:
            cancel_queued(self._trials.store, self._trials.exp_key, (TrialState.NEW,))

    # ---- the slots -----------------------------------------------------------------------

    def _stopping(self) -> AbortReason | None:
        return AbortReason.SHUTDOWN if self._shutdown.is_set() else None

    def _launch(self, slot: _Slot) -> None:
        slot.generation += 1
        slot.connected = False
        spec = SlotSpec(self._address, self._key, slot.index, slot.generation, self._run)
        slot.job = SlotJob(self._session, spec, self._notify)

    def _slot_main(self, slot: _Slot) -> None:
        trials = self._trials
        try:
            while not self._shutdown.is_set():
                link = self._link(slot, self._stopping)
                if link is None:
                    return
                tid = self._queue.get()
                if tid is None or self._shutdown.is_set():
                    return
                # The Spark Python worker on the executor; its pid cannot be checked from
                # the driver (no pid namespace), so only the link says when it is gone.
                owner = Owner(worker="spark", host=link.hello.host, pid=link.hello.pid,
                              slot=slot.index + 1)
                outcome = run_trial(trials.store, trials.exp_key, tid, owner,
                                    functools.partial(self._evaluate, slot),
                                    max_attempts=self._backend.max_attempts,
                                    shutdown=self._shutdown, pruner=self._pruner)
                self._after(tid, outcome)
        except BaseException as exc:
            # A slot that dies must stop the run loudly, not leave fmin waiting forever.
            log.exception("SparkTrials slot %d failed", slot.index)
            self._fail(exc)

    def _link(self, slot: _Slot, abort: AbortCheck) -> Link | None:
        """The slot's live link, launching its Spark job again and waiting for the task as
        needed; None once ``abort()`` gives a reason or the slot cannot be served (the
        run's problem then says why)."""
        while abort() is None:
            if slot.link is not None:
                if slot.link.alive():
                    return slot.link
                slot.link = None
            job = slot.job
            if job is not None and job.done.is_set() and slot.arrivals.empty():
                if not slot.connected:
                    slot.failures += 1
                    cause = job.failure or "its Spark job ended"
                    if slot.failures >= MAX_LAUNCH_FAILURES:
                        self._problem = SparkTaskError(_never_connected(slot.failures, cause))
                        self._notify()
                        return None
                    log.warning("SparkTrials slot %d: its Spark task ended before it reached "
                                "the driver (%s); launching it again", slot.index, cause)
                    if self._shutdown.wait(RELAUNCH_DELAY_S * slot.failures):
                        return None
                self._launch(slot)
            try:
                link = slot.arrivals.get(timeout=0.05)
            except queue.Empty:
                continue
            if link.hello.generation != slot.generation:
                link.send(Refused("a later launch serves this slot"))
                link.close()
                continue
            if link.hello.parzen != __version__:
                link.send(Refused("parzen versions differ"))
                link.close()
                self._problem = SparkTaskError(
                    f"executor {link.hello.host} runs parzen {link.hello.parzen} and the driver "
                    f"parzen {__version__}: install the driver's version on every executor "
                    f"(pip install 'parzen[spark]=={__version__}', or a cluster library)")
                self._notify()
                return None
            if not link.send(Welcome(self._payload, self._sys_path,
                                     self._backend.trial_timeout)):
                continue
            slot.link, slot.connected, slot.failures = link, True, 0
            log.debug("SparkTrials slot %d served by %s (pid %d), launch %d, Spark attempt %d",
                      slot.index, link.hello.host, link.hello.pid, link.hello.generation,
                      link.hello.attempt)
            return link
        return None

    def _evaluate(self, slot: _Slot, params: Any, tid: int, abort: AbortCheck
                  ) -> dict[str, Any]:
        """``run_trial``'s evaluation: send the trial to the slot's task and wait for its
        reply, raising what the sandbox would raise in this process."""
        while True:
            link = self._link(slot, abort)
            if link is None:
                raise EvaluationAborted(abort() or AbortReason.SHUTDOWN)
            slot.busy = True
            if link.send(Assign(tid, dict(params))):
                break
            slot.busy = False
            # Lost before the trial reached it: no attempt was made; try the next task.
        judge = current_judge()  # run_trial's, for this attempt: it answers the reports
        while True:
            reply, reason = link.receive(abort)
            if reason is None and isinstance(reply, Progress):
                # A tight report loop keeps the link readable, so receive() would never get
                # to ask abort(): ask it after each report, as the sandbox does.
                reason = abort()
                if reason is None:
                    self._decide(link, judge, reply)
                    continue
                link.stop()
            if reason is not None:
                raise EvaluationAborted(reason)  # busy stays set: close() waits for the task
            break
        slot.busy = False
        if reply is None:
            raise self._lost(slot, link)
        if isinstance(reply, Returned):
            return reply.result
        if isinstance(reply, Pruned):
            raise TrialPruned(reply.message)
        if isinstance(reply, Raised):
            raise ObjectiveFailed(reply.error)
        if isinstance(reply, Failed):
            raise _FAILURES[reply.kind](reply.message)
        raise EvaluationCrashed(f"the Spark task answered out of turn: {reply!r}")

    @staticmethod
    def _decide(link: Link, judge: Sink | None, progress: Progress) -> None:
        """Hand the task's report to the trial's judge and send its decision back; the
        objective on the executor waits for it. A lost link is seen by the next receive."""
        try:
            prune = judge is not None and judge.report(progress.step, progress.loss)
        except BaseException:
            link.stop()  # the task waits for a decision that will not come: it ends the trial
            raise
        link.send(Decision(prune))

    def _lost(self, slot: _Slot, link: Link) -> Exception:
        """Why the link to a task running a trial dropped: Spark's error when its job ended
        in time to say."""
        job = slot.job
        if job is not None:
            job.done.wait(LOST_GRACE_S)
        failure = job.failure if job is not None and job.done.is_set() else None
        if failure is not None and is_cancellation(failure):
            # Cancelled (Ctrl-C cancels every Spark job): not the trial's doing, no attempt.
            return EvaluationAborted(AbortReason.SHUTDOWN)
        cause = failure or "its link to the driver closed"
        return EvaluationCrashed(f"the Spark task running it on {link.hello.host} was lost: "
                                 f"{cause}")


def _stop_jobs(jobs: Sequence[SlotJob]) -> None:
    """Give ``jobs`` ``STOP_GRACE_S`` to end, then cancel their job groups."""
    deadline = time.monotonic() + STOP_GRACE_S
    for job in jobs:
        job.done.wait(max(0.0, deadline - time.monotonic()))
    for job in jobs:
        if not job.done.is_set():
            log.info("cancelling Spark job group %s", job.group)
            job.cancel(CANCEL_WAIT_S)


def _never_connected(times: int, cause: str) -> str:
    hint = ""
    if "No module named 'parzen'" in cause:
        hint = (f" parzen is not installed for the executors' Python: install parzen "
                f"{__version__} (with the objective's own dependencies) on every executor, "
                "with the driver's Python version: a cluster library on Databricks, or "
                "spark.archives / --py-files with a packed environment on YARN.")
    return (f"SparkTrials' Spark task ended {times} times in a row before it reached the "
            f"driver; the last time: {cause}.{hint}")


__all__ = ["SparkRunner", "SparkTaskError", "driver_address", "run_settings"]
