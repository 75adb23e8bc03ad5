"""``ParallelTrials``: the fmin loop over local worker processes, with no server at all.

It is the embedded default for one machine. The coordinator is the same as for MongoTrials;
trials live in the in-memory store, and each of ``parallelism`` slots evaluates trials in its
own child process (``parzen.runners.local``), so a crashing or hanging objective costs one
trial, not the run.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from parzen import validation
from parzen.backends import LocalBackend
from parzen.settings import DEFAULT_MAX_PAYLOAD_BYTES
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
                 max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> None:
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

    def backend(self) -> LocalBackend:
        """Local sandbox processes, with this object's settings."""
        return LocalBackend(self.parallelism, self.trial_timeout, self.max_attempts,
                            self.max_payload_bytes)


__all__ = ["ParallelTrials"]
