"""A columnar view of trial history for samplers, maintained incrementally.

Samplers need, per parameter, the values of every trial (NaN where inactive) and the losses,
as numpy arrays. Rebuilding them from trial objects on every suggestion costs O(n) Python work;
``HistoryBuilder`` appends and updates rows in amortised O(1) and hands out read-only views.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt

from parzen.samplers._pruned import pruned_loss
from parzen.space import Space
from parzen.trial import Trial, TrialState

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
T = TypeVar("T")


class Memo:
    """What samplers derive from the rows of one ``HistoryBuilder``, kept with that builder.

    A row's values never change once the row exists: the builder appends rows and updates only
    a row's loss and pending flag. So state a sampler computes from the values of the first
    ``n`` rows (their encoding, scratch space sized for them, the groups of the space) stays
    valid as the history grows, and can be kept from one suggestion to the next even though
    ``tpe.suggest`` makes a new sampler per call. Kept here, it lives exactly as long as the
    rows it was derived from: a rebuilt builder (``Trials.history`` rebuilds it when the space
    changes) starts with an empty memo, and nothing is kept at module level.

    Each user keeps one object, keyed by its class (a class is held by the key, so the key
    cannot come to mean another object). Pickled or copied, a memo starts empty.
    """

    __slots__ = ("_lock", "_slots")

    def __init__(self) -> None:
        self._slots: dict[type[Any], Any] = {}
        self._lock = threading.Lock()

    def slot(self, kind: type[T]) -> T:
        """The ``kind`` object kept here, made by ``kind()`` on first use."""
        got = self._slots.get(kind)
        if got is None:
            with self._lock:  # two threads asking first must get the same object
                got = self._slots.get(kind)
                if got is None:
                    got = self._slots[kind] = kind()
        return cast(T, got)

    def drop(self, kind: type[Any]) -> None:
        """Forget the ``kind`` object, if any; the next ``slot(kind)`` makes a new one."""
        with self._lock:
            self._slots.pop(kind, None)

    def __len__(self) -> int:
        return len(self._slots)

    def __reduce__(self) -> tuple[type[Memo], tuple[()]]:
        return Memo, ()


@dataclass(frozen=True)
class History:
    """What a sampler may know about past and pending trials.

    Attributes:
        values: per label, float64 array of shape (n,); NaN where the parameter was inactive.
            Choices and randint hold their index/integer as a float.
        losses: shape (n,); the loss of trials finished with status ok (of a pruned trial,
            its last reported loss: ``_pruned.py``), NaN otherwise.
        pending: shape (n,); True for trials queued or running (no result yet).
        failed: shape (n,); True for trials whose objective failed at their point
            (``Trial.failed_here``: it raised, returned status ``fail`` or a loss that is not
            finite). Their ``losses`` are NaN; the TPE counts them as worse than every
            completed trial (``samplers/tpe/_sampler.py``). A pruned trial is never failed:
            a row is failed or has a loss, not both. None: no trial failed (a history built
            by hand).
        memo: the ``Memo`` of the builder this is a view of, where samplers may keep what
            they derive from the rows' values; None for histories built by hand, whose
            arrays may be changed in place.
    """

    values: Mapping[str, FloatArray]
    losses: FloatArray
    pending: BoolArray
    failed: BoolArray | None = None
    memo: Memo | None = field(default=None, compare=False, repr=False)

    @property
    def n(self) -> int:
        return int(self.losses.shape[0])

    @property
    def completed(self) -> BoolArray:
        """Trials with a finite loss (status ok)."""
        return np.isfinite(self.losses)

    @property
    def n_completed(self) -> int:
        return int(np.count_nonzero(self.completed))

    @property
    def failed_mask(self) -> BoolArray:
        """``failed``, or all False when the history says nothing of failures."""
        if self.failed is None:
            return np.zeros(self.n, dtype=bool)
        return self.failed

    @classmethod
    def empty(cls, space: Space) -> History:
        return cls({lab: np.empty(0) for lab in space.labels}, np.empty(0),
                   np.empty(0, dtype=bool))

    @classmethod
    def from_rows(cls, space: Space,
                  rows: list[tuple[Mapping[str, Any], float | None, bool]],
                  failed: tuple[int, ...] = ()) -> History:
        """Build from ``(params, loss or None, pending)`` rows, the rows numbered in
        ``failed`` marked as failed; convenient in tests."""
        b = HistoryBuilder(space)
        for i, (params, loss, pending) in enumerate(rows):
            b.set_row(i, params, loss, pending, failed=i in failed)
        return b.view()


class HistoryBuilder:
    """Growable columns keyed by tid. Not thread-safe; owned by one coordinator."""

    def __init__(self, space: Space, capacity: int = 64) -> None:
        self._labels = space.labels
        self._cap = capacity
        self._n = 0
        self._values = {lab: np.full(capacity, np.nan) for lab in self._labels}
        self._losses = np.full(capacity, np.nan)
        self._pending = np.zeros(capacity, dtype=bool)
        self._failed = np.zeros(capacity, dtype=bool)
        self._row_of: dict[int, int] = {}
        self._memo = Memo()

    def __len__(self) -> int:
        return self._n

    def _grow(self) -> None:
        cap = max(1, self._cap * 2)  # capacity 0 must grow too
        for lab in self._labels:
            self._values[lab] = _grown(self._values[lab], cap, np.nan)
        self._losses = _grown(self._losses, cap, np.nan)
        self._pending = _grown(self._pending, cap, False)
        self._failed = _grown(self._failed, cap, False)
        self._cap = cap

    def set_row(self, key: int, params: Mapping[str, Any], loss: float | None,
                pending: bool, failed: bool = False) -> None:
        """Insert or overwrite the row for ``key`` (a tid); ``failed`` as in ``History``."""
        row = self._row_of.get(key)
        if row is None:
            if self._n == self._cap:
                self._grow()
            row = self._n
            self._row_of[key] = row
            self._n += 1
            for lab in self._labels:
                v = params.get(lab)
                self._values[lab][row] = np.nan if v is None else float(v)
        self._losses[row] = np.nan if loss is None else float(loss)
        self._pending[row] = pending
        self._failed[row] = failed

    def add(self, trial: Trial) -> None:
        """Insert or update the row for ``trial``."""
        loss = trial.loss if trial.state is not TrialState.PRUNED else pruned_loss(trial)
        if loss is not None and not np.isfinite(loss):
            loss = None
        self.set_row(trial.tid, trial.params, loss,
                     trial.state in (TrialState.NEW, TrialState.RUNNING),
                     failed=trial.failed_here)

    def view(self) -> History:
        """Read-only views of the first n rows, with this builder's ``Memo``; valid until the
        next ``add``."""
        n = self._n

        def ro(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
            v = a[:n]
            v.flags.writeable = False
            return v

        return History({lab: ro(a) for lab, a in self._values.items()}, ro(self._losses),
                       ro(self._pending), ro(self._failed), self._memo)


def _grown(a: npt.NDArray[Any], cap: int, fill: Any) -> npt.NDArray[Any]:
    out = np.full(cap, fill, dtype=a.dtype)
    out[: a.shape[0]] = a
    return out
