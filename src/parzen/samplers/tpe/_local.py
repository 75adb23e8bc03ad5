"""Local steps: when a point is the minimum of a quadratic fitted around the best trial.

TPE narrows in on the best region only as fast as its densities shrink; a step to the minimum
of a quadratic fitted to the trials nearest the incumbent (``_quadratic.py``) closes in on the
optimum within it. Sequentially, one suggestion in ``local_every`` is such a step. With
results outstanding, each of the first ``parallel_local`` neighbourhood sizes gives a minimum
and the first that no pending trial is already evaluating is taken: a batch's first points
get one each, and a worker pool asking for one point at a time gets a new one whenever the
results moved the minimum or the last one came back. When the first size's minimum is being
evaluated and is a short step, probes around it (``_probes.py``) come instead of the other
sizes' minima.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from parzen.samplers.tpe._encode import snap
from parzen.samplers.tpe._failures import Screen
from parzen.samplers.tpe._probes import SAME, Around, ProbeSettings, probe
from parzen.samplers.tpe._quadratic import quadratic_step
from parzen.samplers.tpe._work import Pick

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

# Neighbourhood sizes, in coefficients per fit, tried in order for the points of a batch: each
# gives its own minimum, so a batch can hold several local points that are not duplicates.
SIZES = (2.0, 3.0, 4.5, 6.0)
# A local point within this fraction of its neighbourhood's radius of a trial still pending is
# one already being evaluated.
GUARD = 0.25


@dataclass(frozen=True)
class LocalSettings:
    """When local steps are taken (``TPESampler(local_every=..., parallel_local=...)``).

    Attributes:
        local_every: sequentially, one suggestion in ``local_every`` (when the history's
            length is a multiple of it) is a local step, where the quadratic has a minimum
            and it is not a trial already made; 0 turns local steps off (in batches too).
            Default 2.
        parallel_local: with results outstanding (a batch, or trials running), up to this
            many neighbourhood sizes each give a minimum, and the first that no pending trial
            is already evaluating (none within a quarter of the neighbourhood's radius, nor
            within ``min_distance``) is proposed; 0 turns them off with results outstanding.
            At most 4 (``len(SIZES)``). Default 4.
    """

    local_every: int = 2
    parallel_local: int = 4


def local_step(settings: LocalSettings, probes: ProbeSettings, pick: Pick, c0: IntArray
               ) -> FloatArray | None:
    """The local step for ``pick``'s group among completed trials with categories ``c0``,
    in the unit encoding (a probe around a pending step when ``probes`` say so); None when
    this point takes none."""
    g, work, rows, active, batch = pick.g, pick.work, pick.rows, pick.active, pick.batch
    if settings.local_every == 0 or work.n0 == 0:
        return None
    if not batch and rows % settings.local_every:
        return None
    n0 = work.n0
    design, codes = work.history_rows(g)
    # Fitted to measured losses only: a failure's imputed worst loss would bend the
    # quadratic by scale, not shape (_failures.py). Failed trials still count as seen below.
    done = work.measured(n0) & active[:n0]
    if g.categorical:
        done &= (codes[:n0] == c0[None, :]).all(axis=1)
    dn = len(g.numeric)
    idx = np.flatnonzero(done)
    u = design[idx, :dn]
    # Every trial active in g, this batch's points included, to check the step against.
    seen = np.flatnonzero(active[:rows])
    old = seen[seen < n0]
    seen_u = design[old, :dn]
    if old.shape[0] < seen.shape[0]:
        new = seen[seen >= n0]
        seen_u = np.concatenate([seen_u, np.stack(
            [d.encode(work.values[d.label][new]) for d in g.numeric], axis=1)])
    waiting = work.pending[seen] & ~np.isfinite(work.losses[seen])
    y = work.losses[idx]
    screen = Screen.of(pick)
    reach = pick.reach
    for size in SIZES[:settings.parallel_local] if batch else SIZES[:1]:
        key = (g.labels, c0.tobytes(), size)
        if key not in work.fits:
            work.fits[key] = quadratic_step(u, y, g.lo, g.hi, size)
        got = work.fits[key]
        if got is None:
            continue
        step = got[0] if screen is None else screen.back_off(got[0], u[int(np.argmin(y))],
                                                             c0)
        if step is None:
            continue
        x: FloatArray = snap(g, step[None, :])[0][0]
        radius = got[1]
        gap = np.sqrt(((seen_u - x) ** 2).sum(axis=1))
        short = size == SIZES[0] and probes.gate(
            float(np.sqrt(((x - u[int(np.argmin(y))]) ** 2).sum())), radius)
        # A pending trial within min_distance is a near-duplicate, as for any candidate.
        # Converging, only that: the pending trials around are probes, and a minimum the
        # results moved off the one being evaluated is a new step (in a worker pool,
        # else it would probe around a running step until it came back).
        busy = waiting & (gap < (reach if short else max(GUARD * radius, reach)))
        if busy.any():
            if short:
                # The first fit's step is being evaluated and is short: probes around it
                # instead of the larger neighbourhoods' steps (_probes.py says why).
                center = seen_u[np.flatnonzero(busy)[np.argmin(gap[busy])]]
                return probe(probes, g, Around(center, seen_u, seen_u[waiting], reach),
                             pick.rng, None if screen is None else (screen, c0))
            continue
        if (gap < SAME).any():
            continue
        return x
    return None

