"""What the TPE keeps from one suggestion to the next, and where.

Three things are worth keeping: the groups of the space (``build_groups``), each group's
encoded rows (encoding every completed trial, a log and a rescale per numeric value, is about
a twentieth of a suggestion's time at n=1000) and the scratch buffers (``_scratch.py``). All
three are derived from the history's rows, and ``tpe.suggest`` builds a new ``TPESampler`` on
every call, so they are kept in the history's ``Memo`` (``samplers/_history.py``): one
``TPEState`` per ``HistoryBuilder``, dropped with it. A trial's values never change once its
row exists, so a later suggestion encodes only the rows added since.

A history built by hand (``History(values, losses, pending)``, no memo) may have its arrays
changed in place between calls; it gets a ``TPEState`` of its own for one call only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from parzen.samplers._history import History
from parzen.samplers.tpe._encode import Group, build_groups, encode_group
from parzen.samplers.tpe._scratch import Scratch
from parzen.space import Space

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

# Layouts kept at once: one per space and ``multivariate`` setting used with the history.
# More only when one history is used with several spaces; then the oldest is dropped.
_MAX_LAYOUTS = 4


@dataclass(frozen=True)
class _Encoded:
    """A group's first ``n`` rows encoded, in buffers with room for more rows.

    Replaced, never changed in place, so that a reader holding one sees a consistent ``n``
    while another thread extends it (rows below ``n`` are written once, with the same values
    by any thread).
    """

    n: int
    xd: FloatArray  # (capacity, design width) design rows
    xc: IntArray  # (capacity, dc) category codes


class Layout:
    """The groups of one space and each group's kept encoding of the history's rows."""

    def __init__(self, groups: list[Group]) -> None:
        self.groups = groups
        self._rows: dict[tuple[str, ...], _Encoded] = {}

    @classmethod
    def of(cls, space: Space, multivariate: bool) -> Layout:
        """A layout with nothing encoded yet."""
        return cls(build_groups(space, multivariate))

    def rows(self, g: Group, values: Mapping[str, FloatArray], n: int
             ) -> tuple[FloatArray, IntArray]:
        """The first ``n`` rows of ``values`` encoded for ``g``: design rows and codes."""
        kept = self._rows.get(g.labels)
        if kept is None:
            cap = max(2 * n, 64)
            kept = _Encoded(0, np.empty((cap, g.design_width)),
                            np.empty((cap, len(g.categorical)), dtype=np.intp))
        if kept.n < n:
            xd, xc = kept.xd, kept.xc
            if n > xd.shape[0]:
                cap = max(2 * xd.shape[0], n)
                xd = np.concatenate([xd[:kept.n], np.empty((cap - kept.n, xd.shape[1]))])
                xc = np.concatenate([xc[:kept.n],
                                     np.empty((cap - kept.n, xc.shape[1]), dtype=np.intp)])
            xd[kept.n:n], xc[kept.n:n] = encode_group(g, values, slice(kept.n, n))
            kept = _Encoded(n, xd, xc)
            self._rows[g.labels] = kept
        return kept.xd[:n], kept.xc[:n]


class TPEState:
    """Everything the TPE keeps for one history: layouts per space and scratch buffers."""

    def __init__(self) -> None:
        self.scratch = Scratch()
        self._layouts: dict[tuple[str, bool], Layout] = {}

    def layout(self, space: Space, multivariate: bool) -> Layout:
        """The layout of ``space``, by structure: ``fmin`` compiles an equal ``Space`` on
        every call, which must find the same layout."""
        key = (space.fingerprint(), multivariate)
        got = self._layouts.get(key)
        if got is None:
            got = Layout.of(space, multivariate)
            if len(self._layouts) >= _MAX_LAYOUTS:
                self._layouts.pop(next(iter(self._layouts)), None)
            self._layouts[key] = got
        return got


def state_of(history: History) -> TPEState:
    """The state kept with ``history``'s builder, or a new one for a history without one."""
    if history.memo is None:
        return TPEState()
    return history.memo.slot(TPEState)
