"""The history's rows in the TPE's coordinates, kept from one suggestion to the next.

Encoding every completed trial (a log and a rescale per numeric value) on every suggestion is
about a twentieth of a suggestion's time at n=1000. A trial's values never change once its row
exists: ``HistoryBuilder`` only appends rows, and hands out read-only views of its column
buffers. So each group's encoded rows are kept together with the buffers they were read from,
and a later suggestion over the same buffers encodes only the rows added since. Any other
history (arrays that are not such views, a regrown buffer, another space) is encoded afresh.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from parzen.samplers.tpe._encode import Group, encode_group

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

# Entries kept at once: one per group of the spaces in use; more only when a process tunes
# several spaces in turn, and then the oldest is dropped.
_MAX_ENTRIES = 16


@dataclass
class _Entry:
    group: Group
    sources: tuple[FloatArray, ...]  # the builder's buffers, one per label of the group
    n: int  # rows encoded so far
    xd: FloatArray  # (capacity, design width) design rows
    xc: IntArray  # (capacity, dc)


_CACHE: dict[int, _Entry] = {}


def _buffer(view: FloatArray) -> FloatArray | None:
    """The append-only buffer behind a history column, or None if it is not such a view."""
    base = view.base
    if view.flags.writeable or not isinstance(base, np.ndarray) or base.ndim != 1:
        return None
    return base


def encoded_rows(group: Group, values: Mapping[str, FloatArray], n: int
                 ) -> tuple[FloatArray, IntArray]:
    """The first ``n`` rows of ``values`` encoded for ``group``: design rows and codes."""
    sources = tuple(_buffer(values[lab]) for lab in group.labels)
    if any(s is None for s in sources):
        return encode_group(group, values, slice(0, n))
    bufs: tuple[FloatArray, ...] = tuple(s for s in sources if s is not None)
    entry = _CACHE.get(id(group))
    fresh = (entry is None or entry.group is not group or entry.n > n
             or any(a is not b for a, b in zip(entry.sources, bufs, strict=True)))
    if fresh:
        cap = bufs[0].shape[0]
        entry = _Entry(group, bufs, 0, np.empty((cap, group.design_width)),
                       np.empty((cap, len(group.categorical)), dtype=np.intp))
        if len(_CACHE) >= _MAX_ENTRIES:
            del _CACHE[next(iter(_CACHE))]
        _CACHE[id(group)] = entry
    assert entry is not None
    if entry.n < n:
        xd, xc = encode_group(group, values, slice(entry.n, n))
        entry.xd[entry.n:n] = xd
        entry.xc[entry.n:n] = xc
        entry.n = n
    return entry.xd[:n], entry.xc[:n]


def clear() -> None:
    """Forget every kept encoding."""
    _CACHE.clear()
