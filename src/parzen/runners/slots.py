"""What the runners whose slots are threads of the coordinator's process share.

``ParallelTrials`` (a slot supervises a local sandbox process) and ``SparkTrials`` (a slot
feeds a long-lived Spark task) differ in how a slot evaluates a trial, not in how the
coordinator talks to its slots: tids go into one queue the slots take from, the coordinator
waits on one condition the slots signal, and the first problem a slot hits is raised in the
coordinator's thread by ``maintain``, so a broken slot stops the run loudly instead of
leaving ``fmin`` waiting.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from typing import ClassVar

from parzen.exceptions import ObjectiveUnloadable
from parzen.execution.run import Outcome, OutcomeStatus


class SlotThreads:
    """The queue, the condition and the slots' problem; a base of such runners.

    Subclasses call ``_init_slots`` in ``__init__``, name themselves in ``MODE`` (for the
    message of an unexpected failure) and list in ``PASSED_THROUGH`` the exceptions that
    reach the user as they are; ``RUN_AGAIN`` are the outcomes whose trial a slot queues
    again (it is back to NEW).
    """

    MODE: ClassVar[str]
    PASSED_THROUGH: ClassVar[tuple[type[Exception], ...]] = (ObjectiveUnloadable,)
    RUN_AGAIN: ClassVar[tuple[OutcomeStatus, ...]] = (OutcomeStatus.CRASHED,)

    _queue: queue.Queue[int | None]
    _changed: threading.Condition
    _shutdown: threading.Event
    _problem: Exception | None
    _threads: list[threading.Thread]

    def _init_slots(self) -> None:
        self._queue = queue.Queue()
        self._changed = threading.Condition()
        self._shutdown = threading.Event()
        self._problem = None

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _fail(self, exc: BaseException) -> None:
        """Record a slot's failure for ``maintain`` to raise, and wake the coordinator."""
        self._problem = exc if isinstance(exc, Exception) else RuntimeError(repr(exc))
        self._notify()

    def _after(self, tid: int, outcome: Outcome) -> None:
        """A slot's trial ended with ``outcome``: queue it again or record the problem."""
        if outcome.status in self.RUN_AGAIN and not self._shutdown.is_set():
            self._queue.put(tid)
        if outcome.status is OutcomeStatus.UNLOADABLE and isinstance(outcome.exception, Exception):
            self._problem = outcome.exception
        self._notify()

    def _stop_slots(self) -> None:
        """Stop the slot threads (``_threads``), first thing in ``close``: ``run_trial``
        gives the trials they were running back to NEW (uncounted), so a cancel of the
        queue after it reaches them too."""
        self._shutdown.set()
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join(30)

    def dispatch(self, tids: Sequence[int]) -> None:
        for tid in tids:
            self._queue.put(tid)

    def wait(self, timeout_s: float) -> None:
        with self._changed:
            self._changed.wait(timeout_s)

    def maintain(self) -> None:
        if self._problem is not None:
            problem, self._problem = self._problem, None
            if isinstance(problem, self.PASSED_THROUGH):
                # A fresh one, raised here: its traceback is the coordinator's, and the
                # slot's stays in the log.
                raise type(problem)(str(problem))
            raise RuntimeError(f"a {self.MODE} slot failed: {problem!r}") from problem
