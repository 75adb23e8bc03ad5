"""The TPE's per-call working state: the rows a suggestion sees, and one group's choice.

``Work`` holds the history's rows followed by the points of the batch handed out so far.
``Pick`` is what every part (proposal, re-ranking, local step, probes, polish) reads while
choosing one group's values for one point, so that their functions take a few arguments.
``Candidates`` are what the proposal hands to the re-ranking and the polish.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from parzen.samplers.tpe._encode import Group
from parzen.samplers.tpe._scratch import Scratch
from parzen.samplers.tpe._state import Layout

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]
Point = dict[str, Any]


@dataclass(frozen=True)
class Work:
    """The rows of one suggestion: the history's, then the batch's points so far.

    Attributes:
        values: per label, every row's raw value (NaN where inactive).
        losses: every row's loss as the model sees it: a failed trial's is the worst
            completed loss (``_failures.py``); NaN without one.
        pending: rows without a result yet: running trials and the batch's points.
        n0: how many rows are the history's; their encoding is kept (``_state.py``).
        n_done: how many of them are completed trials.
        history: the history's own columns, which the kept encoding is read from.
        layout: the space's groups and their kept encodings; None only where no history
            row is read (tests of single parts).
        scratch: buffers for the large temporaries (``_scratch.py``); None allocates afresh.
        fits: local fits by (group, categories, neighbourhood size). They use completed
            trials only, so every point of a batch would otherwise refit the same quadratics.
        failed: rows whose loss is a failure's imputed one; None: none.
    """

    values: dict[str, FloatArray]
    losses: FloatArray
    pending: BoolArray
    n0: int = 0
    n_done: int = 0
    history: Mapping[str, FloatArray] = field(default_factory=dict)
    layout: Layout | None = None
    scratch: Scratch | None = None
    fits: dict[tuple[tuple[str, ...], bytes, float], tuple[FloatArray, float] | None] = field(
        default_factory=dict)
    failed: BoolArray | None = None

    def measured(self, rows: int) -> BoolArray:
        """The first ``rows`` rows with a loss of their own (completed, not imputed)."""
        out = np.isfinite(self.losses[:rows])
        if self.failed is not None:
            out &= ~self.failed[:rows]
        return out

    def history_rows(self, g: Group) -> tuple[FloatArray, IntArray]:
        """The first ``n0`` rows encoded for ``g`` (design rows, codes)."""
        if self.layout is None:
            raise ValueError("Work without a layout has no kept history rows")
        return self.layout.rows(g, self.history, self.n0)


class Turn:
    """One point of a suggestion: the ``rows`` rows of ``work`` that precede it.

    Attributes:
        work: the rows so far.
        rows: how many of them precede this point.
        waiting: rows without a result yet: running trials and the batch's points so far.
    """

    __slots__ = ("rows", "waiting", "work")

    def __init__(self, work: Work, rows: int) -> None:
        self.work = work
        self.rows = rows
        self.waiting: IntArray = np.flatnonzero(work.pending[:rows]
                                                & ~np.isfinite(work.losses[:rows]))


class Pick:
    """One group's part of one point. A plain class, not a dataclass: it is made for every
    group of every point, and what it computes on demand is kept in slots.

    Attributes:
        g: the group whose values are chosen.
        work: the rows so far.
        rows: how many of ``work``'s rows precede this point.
        point: the point's values chosen so far (its parents' groups); filled in place.
        rng: the suggestion's generator.
        batch: whether results are outstanding (a batch, or pending trials).
        min_distance: how close to a pending point a new one may be (``PendingSettings``).
        active: rows where the group was active.
    """

    __slots__ = ("_waiting", "_waiting_u", "active", "batch", "g", "min_distance", "point",
                 "rng", "rows", "work")

    def __init__(self, g: Group, work: Work, rows: int, point: Point,
                 rng: np.random.Generator, batch: bool = False,
                 min_distance: float = 0.0) -> None:
        self.g = g
        self.work = work
        self.rows = rows
        self.point = point
        self.rng = rng
        self.batch = batch
        self.min_distance = min_distance
        self.active: BoolArray = ~np.isnan(work.values[g.labels[0]][:rows])
        self._waiting: IntArray | None = None
        self._waiting_u: FloatArray | None = None

    @property
    def waiting(self) -> IntArray:
        """Rows active in the group without a result yet: this batch's points so far and,
        with asynchronous workers, the trials still running."""
        if self._waiting is None:
            self._waiting = np.flatnonzero(self.work.pending[:self.rows] & self.active)
        return self._waiting

    @property
    def waiting_u(self) -> FloatArray:
        """The waiting rows' numeric values in ``u``, ``(p, dn)``."""
        if self._waiting_u is None:
            out = np.empty((self.waiting.shape[0], len(self.g.numeric)))
            for j, d in enumerate(self.g.numeric):
                out[:, j] = d.encode(self.work.values[d.label][self.waiting])
            self._waiting_u = out
        return self._waiting_u

    @property
    def reach(self) -> float:
        """``min_distance`` as a distance in the group's unit encoding."""
        return self.min_distance * math.sqrt(self.g.dim)


@dataclass(frozen=True)
class Candidates:
    """Candidate values for one group: numeric ``u (k, dn)``, category codes ``(k, dc)``,
    raw numeric values ``(k, dn)`` and a score per candidate (higher is better)."""

    u: FloatArray
    codes: IntArray
    raw: FloatArray
    score: FloatArray

    def row(self, i: int) -> Candidates:
        """Candidate ``i`` alone."""
        return Candidates(self.u[i:i + 1], self.codes[i:i + 1], self.raw[i:i + 1],
                          self.score[i:i + 1])
