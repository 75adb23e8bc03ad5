"""``ParallelTrials``: the fmin loop over local worker processes, with no server at all.

It is the embedded default for one machine. The coordinator is the same as for MongoTrials;
trials live in the in-memory store, and each of ``parallelism`` slots evaluates trials in its
own child process (see ``sandbox``), so a crashing or hanging objective costs one trial, not
the run.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from parzen import validation
from parzen.domain import Domain
from parzen.exceptions import ObjectiveUnloadable
from parzen.execution import payload
from parzen.execution.run import Outcome, run_trial
from parzen.execution.sandbox import ObjectiveRef, Sandbox
from parzen.trial import Owner
from parzen.trials import Trials

log = logging.getLogger("parzen.parallel")


class ParallelTrials(Trials):
    """Trials evaluated by ``parallelism`` local processes.

    Args:
        parallelism: how many trials run at once (default: the number of CPUs).
        exp_key: the experiment's name.
        trial_timeout: hard time limit per trial in seconds; the evaluation is killed and the
            trial becomes ERROR("timeout after N s").
        max_attempts: how often a trial whose process crashed is retried.
        max_payload_bytes: refuse objectives that pickle to more than this.
    """

    asynchronous = True

    def __init__(self, parallelism: int | None = None, exp_key: str | None = None, *,
                 trial_timeout: float | None = None, max_attempts: int = 3,
                 max_payload_bytes: int = payload.DEFAULT_MAX_BYTES) -> None:
        super().__init__(exp_key=exp_key)
        self.parallelism = validation.integer(
            "parallelism", parallelism if parallelism is not None else (os.cpu_count() or 1), 1)
        self.trial_timeout = validation.seconds("trial_timeout", trial_timeout, allow_none=True)
        self.max_attempts = validation.integer("max_attempts", max_attempts, 1)
        self.max_payload_bytes = validation.integer("max_payload_bytes", max_payload_bytes, 1)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state["parallel"] = (self.parallelism, self.trial_timeout, self.max_attempts,
                             self.max_payload_bytes)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        (self.parallelism, self.trial_timeout, self.max_attempts,
         self.max_payload_bytes) = state["parallel"]

    def _make_runner(self, domain: Domain, *, catch_eval_exceptions: bool,
                     settings: Any) -> LocalProcessRunner:
        return LocalProcessRunner(self, domain)


class LocalProcessRunner:
    """Slot threads, each supervising one sandbox process, fed from a queue of tids."""

    def __init__(self, trials: ParallelTrials, domain: Domain) -> None:
        key = payload.generate_secret()  # this run's key never leaves the process
        built = payload.build((domain.fn, domain.expr), key,
                              max_bytes=trials.max_payload_bytes)
        _, body = payload.verify(built.data, key)
        self._ref = ObjectiveRef(key=built.sha256, pickle=body)
        self._trials = trials
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._changed = threading.Condition()
        self._shutdown = threading.Event()
        self._problem: Exception | None = None
        self._threads = [threading.Thread(target=self._slot, args=(i,), daemon=True,
                                          name=f"parzen-slot-{i}")
                         for i in range(trials.parallelism)]
        for t in self._threads:
            t.start()

    def _slot(self, i: int) -> None:
        try:
            self._serve(i)
        except BaseException as exc:
            # A slot that dies must stop the run loudly, not leave fmin waiting forever.
            log.exception("parallel slot %d failed", i)
            self._problem = exc if isinstance(exc, Exception) else RuntimeError(repr(exc))
            with self._changed:
                self._changed.notify_all()

    def _serve(self, i: int) -> None:
        sandbox = Sandbox(sys_path=[os.getcwd(), *sys.path])
        owner = Owner(worker=f"local-{i}", host=socket.gethostname(), pid=os.getpid())
        trials = self._trials
        try:
            while True:
                tid = self._queue.get()
                if tid is None or self._shutdown.is_set():
                    return

                def evaluate(params: Mapping[str, Any], tid: int,
                             abort: Any) -> dict[str, Any]:
                    return sandbox.evaluate(self._ref, params, tid,
                                            timeout_s=trials.trial_timeout, abort=abort)

                outcome = run_trial(trials.store, trials.exp_key, tid, owner, evaluate,
                                    max_attempts=trials.max_attempts, shutdown=self._shutdown)
                self._after(tid, outcome)
        finally:
            sandbox.close()

    def _after(self, tid: int, outcome: Outcome) -> None:
        if outcome.status == "crashed" and not self._shutdown.is_set():
            self._queue.put(tid)  # released to NEW with the attempt counted: run it again
        if outcome.status == "unloadable" and isinstance(outcome.exception, Exception):
            self._problem = outcome.exception
        with self._changed:
            self._changed.notify_all()

    def dispatch(self, tids: Sequence[int]) -> None:
        for tid in tids:
            self._queue.put(tid)

    def wait(self, timeout_s: float) -> None:
        with self._changed:
            self._changed.wait(timeout_s)

    def maintain(self) -> None:
        if self._problem is not None:
            problem, self._problem = self._problem, None
            if isinstance(problem, ObjectiveUnloadable):
                raise ObjectiveUnloadable(str(problem))
            raise RuntimeError(f"a ParallelTrials slot failed: {problem!r}") from problem

    def close(self, cancelled: bool) -> None:
        self._shutdown.set()
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join(30)


__all__ = ["LocalProcessRunner", "ParallelTrials"]
