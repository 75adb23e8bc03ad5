"""One launch of a slot's Spark job: a one-task job whose task serves the slot's trials.

The job runs in a thread of its own, in a Spark job group of its own with interrupt on
cancel, so that the driver can cancel exactly that slot's task (``cancel``); when it ends,
``failure`` says why in one line, taken from Spark's error (whose full text, a Java stack
trace, goes to the debug log).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from parzen.runners.spark._task import serve
from parzen.runners.spark._wire import SlotSpec

log = logging.getLogger("parzen.runners.spark")

# How much of Spark's error a trial's history and the log keep.
FAILURE_CHARS = 400
_CANCEL_RETRY_S = 0.5


def spark_failure(exc: BaseException) -> str:
    """The line of a failed Spark job's error that says what happened.

    A Python exception in the task arrives with its traceback: its last line is the
    exception. A Java error arrives as ``An error occurred while calling ...`` followed by
    the Spark exception and a Java stack trace: the Spark exception's line is kept, from its
    ``most recent failure`` on when there is one.
    """
    text = str(exc)
    lines = [ln.strip() for ln in text.splitlines()
             if ln.strip() and not ln.startswith(("\t", " ")) and not ln.startswith("at ")]
    if "Traceback (most recent call last)" in text and lines:
        line = lines[-1]
    else:
        useful = [ln for ln in lines if not ln.startswith("An error occurred while calling")]
        line = (useful or lines or [f"{type(exc).__name__}"])[0].lstrip(": ")
        _, found, rest = line.partition("most recent failure: ")
        if found:
            line = rest
    return line if len(line) <= FAILURE_CHARS else line[:FAILURE_CHARS - 3] + "..."


def is_cancellation(failure: str) -> bool:
    """Whether a job failed because it was cancelled (by the driver, Ctrl-C or the user)."""
    return "SPARK_JOB_CANCELLED" in failure or "cancelled" in failure.lower()


class SlotJob:
    """The Spark job of one launch of one slot, run from a thread of its own.

    Attributes:
        spec: what its task gets.
        group: its Spark job group.
        done: set once the job has ended, one way or the other.
        failure: why it failed, in one line (None while running, or when it ended well).
    """

    def __init__(self, session: Any, spec: SlotSpec, on_end: Callable[[], None]) -> None:
        from pyspark import InheritableThread

        self.spec = spec
        self.group = f"parzen-{spec.run}-slot-{spec.slot}-{spec.generation}"
        self.done = threading.Event()
        self.failure: str | None = None
        self._session = session
        self._on_end = on_end
        self._lock = threading.Lock()
        self._cancelled = False
        # InheritableThread: the job keeps the local properties of the thread that started
        # it (a notebook's, on Databricks), then gets its own job group below.
        self._thread = InheritableThread(target=self._run, daemon=True,
                                         name=f"parzen-spark-job-{spec.slot}")
        self._thread.start()

    def _run(self) -> None:
        sc = self._session.sparkContext
        try:
            with self._lock:
                if self._cancelled:
                    return
                sc.setJobGroup(self.group, f"parzen SparkTrials: slot {self.spec.slot} of "
                               f"run {self.spec.run}", interruptOnCancel=True)
            rdd = sc.parallelize([0], 1).mapPartitions(functools.partial(serve, self.spec))
            rdd.collect()
        except Exception as exc:  # py4j and Spark raise many kinds: each ends the job
            self.failure = spark_failure(exc)
            log.debug("Spark job %s failed: %s", self.group, exc)
        finally:
            self.done.set()
            self._on_end()

    def cancel(self, wait_s: float) -> None:
        """Cancel the job's group (interrupting its task) until it ends or ``wait_s``
        passes. Asked again every half second: a cancel that lands before Spark has
        registered the job reaches nothing."""
        sc = self._session.sparkContext
        with self._lock:
            self._cancelled = True
        deadline = time.monotonic() + wait_s
        while not self.done.is_set():
            try:
                sc.cancelJobGroup(self.group)
            except Exception as exc:  # a stopped context refuses: the job is gone with it
                log.debug("cancelling Spark job group %s: %s", self.group, exc)
                return
            if self.done.wait(min(_CANCEL_RETRY_S, max(0.0, deadline - time.monotonic()))) \
                    or time.monotonic() >= deadline:
                return

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)
