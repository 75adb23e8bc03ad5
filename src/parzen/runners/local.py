"""``LocalProcessRunner``: the fmin loop's trials evaluated by local processes, no server.

Each of ``parallelism`` slot threads supervises one sandbox process (see
``parzen.execution.sandbox``), fed from a queue of tids, so a crashing or hanging objective
costs one trial, not the run. Trials live in the in-memory store of the ``ParallelTrials``.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Mapping
from typing import Any

from parzen.backends import LocalBackend
from parzen.domain import Domain
from parzen.execution import payload
from parzen.execution.messages import ObjectiveRef
from parzen.execution.run import run_trial
from parzen.execution.sandbox import AbortCheck, Sandbox
from parzen.pruners import Pruner
from parzen.runners.base import Closing, cancel_queued
from parzen.runners.slots import SlotThreads
from parzen.trial import Owner, TrialState
from parzen.trials import Trials

log = logging.getLogger("parzen.runners.local")


class LocalProcessRunner(SlotThreads):
    """Slot threads, each supervising one sandbox process, fed from a queue of tids."""

    MODE = "ParallelTrials"

    def __init__(self, trials: Trials, domain: Domain, backend: LocalBackend,
                 pruner: Pruner | None = None) -> None:
        self._pruner = pruner
        key = payload.generate_secret()  # this run's key never leaves the process
        built = payload.build((domain.fn, domain.expr), key,
                              max_bytes=backend.max_payload_bytes)
        _, body = payload.verify(built.data, key)
        self._ref = ObjectiveRef(key=built.sha256, pickle=body)
        self._trials = trials
        self._backend = backend
        self._init_slots()
        self._threads = [threading.Thread(target=self._slot, args=(i,), daemon=True,
                                          name=f"parzen-slot-{i}")
                         for i in range(backend.parallelism)]
        for t in self._threads:
            t.start()

    def _slot(self, i: int) -> None:
        try:
            self._serve(i)
        except BaseException as exc:
            # A slot that dies must stop the run loudly, not leave fmin waiting forever.
            log.exception("parallel slot %d failed", i)
            self._fail(exc)

    def _serve(self, i: int) -> None:
        sandbox = Sandbox(sys_path=[os.getcwd(), *sys.path])
        owner = Owner.here("local", slot=i + 1)
        trials = self._trials
        try:
            while True:
                tid = self._queue.get()
                if tid is None or self._shutdown.is_set():
                    return

                def evaluate(params: Mapping[str, Any], tid: int,
                             abort: AbortCheck) -> dict[str, Any]:
                    return sandbox.evaluate(self._ref, params, tid,
                                            timeout_s=self._backend.trial_timeout, abort=abort)

                outcome = run_trial(trials.store, trials.exp_key, tid, owner, evaluate,
                                    max_attempts=self._backend.max_attempts,
                                    shutdown=self._shutdown, pruner=self._pruner)
                self._after(tid, outcome)
        finally:
            sandbox.close()

    def start(self) -> None:
        return None

    def stop_requested(self) -> str | None:
        return None  # a run in this process is stopped with Ctrl-C

    def queue_hint(self) -> str:
        n = self._backend.parallelism
        return f"(the {n} local process{'es were' if n != 1 else ' was'} busy)"

    def close(self, closing: Closing) -> None:
        self._stop_slots()
        if closing is not Closing.HANDS_OFF:
            cancel_queued(self._trials.store, self._trials.exp_key, (TrialState.NEW,))
