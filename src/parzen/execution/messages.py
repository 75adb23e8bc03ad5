"""The messages between a sandbox's supervisor and its evaluation child.

They travel pickled over the child's socket (``multiprocessing.connection``), so both sides
import this module; nothing in it may depend on the user's code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from parzen.trial import ErrorInfo


@dataclass(frozen=True)
class ObjectiveRef:
    """How the child obtains the objective: verified pickle bytes or an import path.

    Attributes:
        key: identifies the objective (payload hash or path) for the child's cache.
        pickle: verified ``cloudpickle`` bytes of ``(fn, space)``, or None.
        import_path: ``"package.module:function"`` plus ``space`` for the import form.
        space: the space when ``import_path`` is used (the space always travels pickled with
            a pickle payload).
    """

    key: str
    pickle: bytes | None = None
    import_path: str | None = None
    space_pickle: bytes | None = None


@dataclass(frozen=True)
class Load:
    """Supervisor to child: load this objective (verified bytes, or an import path)."""

    ref: ObjectiveRef


@dataclass(frozen=True)
class Evaluate:
    """Supervisor to child: evaluate the loaded objective ``key`` at ``params``."""

    key: str
    tid: int
    params: Mapping[str, Any]


@dataclass(frozen=True)
class Loaded:
    """Child to supervisor: the objective is loaded and cached."""


@dataclass(frozen=True)
class Unloadable:
    """Child to supervisor: the objective cannot be loaded here.

    Attributes:
        type: the exception's class name.
        message: the exception's message.
        missing_module: the module an ``ImportError`` could not find, if any.
    """

    type: str
    message: str
    missing_module: str | None


@dataclass(frozen=True)
class Returned:
    """Child to supervisor: the objective returned ``result`` (already validated)."""

    result: dict[str, Any]


@dataclass(frozen=True)
class Raised:
    """Child to supervisor: the objective raised, or returned an invalid result."""

    error: ErrorInfo


@dataclass(frozen=True)
class Report:
    """Child to supervisor, while the objective runs: ``parzen.report(loss, step)``. The
    child waits for a ``Verdict`` before the objective goes on."""

    step: int
    loss: float


@dataclass(frozen=True)
class Verdict:
    """Supervisor to child, answering a ``Report``: whether the trial should stop."""

    prune: bool


@dataclass(frozen=True)
class Pruned:
    """Child to supervisor: the objective stopped with ``TrialPruned``."""

    message: str


ToChild = Load | Evaluate | Verdict
FromChild = Loaded | Unloadable | Returned | Raised | Report | Pruned
