"""Probes: batch points placed around a local step that is being evaluated.

A batch may hold only one point close to the optimum (its points must be ``min_distance``
apart), so the fits of its local steps (``_quadratic.py``) span the batch's spread, and over
that width the function is not quadratic. Once the step is short against its neighbourhood
(the fit places the optimum well inside it: ``PROBE_GATE``), the batch's next points are
probes: as close to the step as the batch allows, along the axes both ways (and the corners
of squares on pairs of axes, up to three dimensions). They give the next round's fit a core
of trials around the optimum in every direction, and the fit is then made there.

``bench/README.md`` ("TPE settings") has the measurements behind the gate and the reach.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from parzen.samplers.tpe._encode import Group, snap
from parzen.samplers.tpe._failures import Screen

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

# Probes go in when the step is shorter than this fraction of its neighbourhood's radius.
PROBE_GATE = 0.35
# Probes sit this far beyond the distance under which two points of a batch are duplicates.
PROBE_REACH = 1.1
# A point closer than this (in the unit encoding) to a trial is that trial again: a quantised
# parameter snapped back, or the steps converged.
SAME = 1e-6


@dataclass(frozen=True)
class ProbeSettings:
    """Probes around a pending local step (``TPESampler(parallel_probes=...)``).

    Attributes:
        parallel_probes: with results outstanding, once the first neighbourhood's step is
            short against its radius and is being evaluated, up to this many points go
            around it as probes instead of the larger neighbourhoods' steps; 0 turns them
            off. Default 7. While converging, only a pending trial within ``min_distance``
            blocks a new step, so in a worker pool results that move the minimum off the
            running step give a new step rather than more probes around the old one.
    """

    parallel_probes: int = 7

    def gate(self, step: float, radius: float) -> bool:
        """Whether a step of length ``step`` in a neighbourhood of ``radius`` is short
        enough to probe around."""
        return self.parallel_probes > 0 and step < PROBE_GATE * radius


@dataclass(frozen=True)
class Around:
    """A pending local step and the trials near which probes must not go, in ``u``.

    Attributes:
        center: the step being evaluated, ``(d,)``.
        seen: every trial active in the group, the batch's points included, ``(k, d)``.
        pending: those without a result yet, ``(p, d)``.
        reach: the duplicate distance, ``min_distance * sqrt(dim)``.
    """

    center: FloatArray
    seen: FloatArray
    pending: FloatArray
    reach: float


def probe(settings: ProbeSettings, g: Group, around: Around, rng: np.random.Generator,
          screen: tuple[Screen, IntArray] | None = None) -> FloatArray | None:
    """The next probe around ``around.center``, or None when it has ``parallel_probes``
    already or every direction would duplicate a trial or lie nearer a failed trial than a
    completed one (``screen``, with the step's categories)."""
    h = PROBE_REACH * around.reach
    pending_u, seen_u = around.pending, around.seen
    near = np.sqrt(((pending_u - around.center) ** 2).sum(axis=1)) < 1.5 * h
    if int(near.sum()) - 1 >= settings.parallel_probes:
        return None
    for v in probe_directions(around.center.shape[0], rng):
        x: FloatArray = snap(g, np.minimum(np.maximum(around.center + h * v, g.lo), g.hi)[
            None, :])[0][0]
        # Clipped or snapped, a probe can land near another point: it must still be one
        # the batch may hold.
        if (np.sqrt(((pending_u - x) ** 2).sum(axis=1)) < around.reach).any():
            continue
        if (np.sqrt(((seen_u - x) ** 2).sum(axis=1)) < SAME).any():
            continue
        if screen is not None and not screen[0].passes(x[None, :], screen[1][None, :])[0]:
            continue
        return x
    return None


def probe_directions(d: int, rng: np.random.Generator) -> FloatArray:
    """Offsets of probes around a step, in units of the probes' reach, in the order to try
    them, ``(k, d)``.

    The axes both ways, in random order (a batch of 8 in 6 dimensions has room for 7 of the
    12); up to three dimensions, then the corners of the square on each pair of axes, which a
    full quadratic's cross terms need. Corners, not unit diagonals: a diagonal at the reach
    would be closer than the reach to the axis probes beside it (0.77 of it).
    """
    axes = np.concatenate([np.eye(d), -np.eye(d)])[rng.permutation(2 * d)]
    if d > 3:
        return axes
    rows, cols = np.triu_indices(d, k=1)
    diag = np.zeros((4 * rows.shape[0], d))
    for k, (si, sj) in enumerate(((1.0, 1.0), (1.0, -1.0), (-1.0, 1.0), (-1.0, -1.0))):
        sel = np.arange(k, diag.shape[0], 4)
        diag[sel, rows] = si
        diag[sel, cols] = sj
    out: FloatArray = np.concatenate([axes, diag[rng.permutation(diag.shape[0])]])
    return out
