"""What the driver and a slot's Spark task say to each other.

A slot's task (``_task.py``, on an executor) connects back to the driver over TCP; both ends
prove that they hold the run's key (``multiprocessing.connection``'s HMAC challenge, each
way) before anything is unpickled. The messages below then travel pickled over that link.
``SlotSpec`` travels the other way, inside the Spark task's closure, and carries the key.

    task -> driver   Hello
    driver -> task   Welcome (the signed payload) or Refused
    driver -> task   Assign (one trial at a time)
    task -> driver   Progress, while the trial runs: ``parzen.report`` in the objective
    driver -> task   Decision, answering each Progress (the run's pruner, in the driver)
    task -> driver   Returned | Raised | Pruned (``parzen.execution.messages``) | Failed

Closing the link is the only stop signal: the task kills the evaluation it is running, if
any, and its Spark job ends.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SlotSpec:
    """What one slot's Spark task needs to reach its driver.

    Attributes:
        address: the driver's host and port, as the executors reach it.
        key: the run's key: it authenticates the link and checks the payload's signature.
            Never shown in a repr.
        slot: the slot's index in this run.
        generation: which launch of the slot's Spark job this is; the driver takes a task
            only from the slot's current launch.
        run: the run's id, for messages and Spark job groups.
    """

    address: tuple[str, int]
    key: bytes = field(repr=False)
    slot: int
    generation: int
    run: str


@dataclass(frozen=True)
class Hello:
    """Task to driver, first: who serves the slot.

    Attributes:
        slot: the slot's index (``SlotSpec.slot``).
        generation: the slot's launch (``SlotSpec.generation``).
        host: the executor's host name.
        pid: the Spark Python worker's process id.
        python: the executor's Python version (``3.11.7``).
        parzen: the executor's parzen version.
        attempt: Spark's attempt number of this task (0 for the first).
    """

    slot: int
    generation: int
    host: str
    pid: int
    python: str
    parzen: str
    attempt: int


@dataclass(frozen=True)
class Welcome:
    """Driver to task: the run's signed objective payload, and where it may import from.

    Attributes:
        payload: the signed cloudpickle payload of ``(objective, space)``
            (``parzen.execution.payload``).
        sys_path: the driver's working directory and its own source directories; the task
            adds those that exist on the executor to the objective's import path.
        trial_timeout: hard time limit of one evaluation in seconds (None: no limit).
    """

    payload: bytes = field(repr=False)
    sys_path: tuple[str, ...]
    trial_timeout: float | None


@dataclass(frozen=True)
class Refused:
    """Driver to task: this task is not wanted (another task serves the slot, or the run
    has moved on); it ends without running anything."""

    reason: str


@dataclass(frozen=True)
class Assign:
    """Driver to task: evaluate trial ``tid`` at ``params``."""

    tid: int
    params: Mapping[str, Any]


@dataclass(frozen=True)
class Progress:
    """Task to driver, while trial ``Assign.tid`` runs: the objective reported ``loss`` at
    ``step`` (checked already by its ``parzen.reporting.Session``). The objective waits
    until the task reads the driver's ``Decision``."""

    step: int
    loss: float


@dataclass(frozen=True)
class Decision:
    """Driver to task, answering one ``Progress``: whether the trial should stop (the
    judge that ``run_trial`` made for it, in the driver, applied the run's pruner)."""

    prune: bool


class FailureKind(enum.Enum):
    """How an evaluation ended without a result or an exception of the objective's."""

    UNLOADABLE = "unloadable"  # the executor cannot load the objective
    CRASHED = "crashed"  # the objective's process died
    TIMEOUT = "timeout"  # the trial's time limit passed; the process was killed


@dataclass(frozen=True)
class Failed:
    """Task to driver: the evaluation failed as ``kind`` says; ``message`` says why."""

    kind: FailureKind
    message: str
