"""Stratified (Latin-hypercube-style) startup points.

Each startup point takes, in every active numeric dimension, a prior quantile from a stratum
``[k/N, (k+1)/N)`` not yet occupied by the earlier points of the history (pending included), and
each categorical dimension an option whose count is furthest below its prior share of ``N``. The
strata in use are read off the history, so the result depends only on (history, rng).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr, ndtri

from parzen.samplers._base import Point
from parzen.samplers._history import History
from parzen.samplers._prior import quantize
from parzen.space import Choice, Normal, RandInt, Space, Uniform

FloatArray = npt.NDArray[np.float64]

_EPS = 1e-12


def _to_q(p: Uniform | Normal, x: FloatArray) -> FloatArray:
    """Prior CDF of raw values ``x``."""
    t = np.log(np.maximum(x, 1e-300)) if p.log else x
    if isinstance(p, Uniform):
        q = (t - p.low) / (p.high - p.low)
    else:
        q = ndtr((t - p.mu) / p.sigma)
    return np.asarray(np.clip(q, 0.0, 1.0 - _EPS))


def _from_q(p: Uniform | Normal, q: float) -> float:
    if isinstance(p, Uniform):
        t = p.low + q * (p.high - p.low)
    else:
        t = p.mu + p.sigma * float(ndtri(min(max(q, _EPS), 1.0 - _EPS)))
    x = np.exp(t) if p.log else t
    return float(quantize(np.array([x]), p.q)[0])


def stratified_startup(space: Space, history: History, n: int, n_strata: int,
                       rng: np.random.Generator) -> list[Point]:
    """``n`` startup points stratified against the history's rows and each other."""
    rows = history.n
    cols = {lab: [float(v) for v in np.asarray(history.values[lab], dtype=np.float64)[:rows]]
            for lab in space.labels}
    points: list[Point] = []
    for _ in range(n):
        point: Point = {}
        for p in space.params:  # parents first
            if not space.is_active(p.label, point):
                continue
            old = np.asarray(cols[p.label], dtype=np.float64)
            old = old[~np.isnan(old)]
            if isinstance(p, (Choice, RandInt)):
                if isinstance(p, Choice):
                    w = np.asarray(p.weights, dtype=np.float64)
                    off, k = 0, len(p.options)
                else:
                    off, k = p.low, p.high - p.low
                    w = np.ones(k)
                w = w / w.sum()
                counts = np.bincount(np.clip(old.astype(np.intp) - off, 0, k - 1),
                                     minlength=k)
                deficit = np.maximum(w * n_strata - counts, 0.0)
                pr = deficit / deficit.sum() if deficit.sum() > 0 else w
                point[p.label] = int(rng.choice(k, p=pr)) + off
            else:
                used = np.unique(np.minimum((_to_q(p, old) * n_strata).astype(np.intp),
                                            n_strata - 1))
                free = np.setdiff1d(np.arange(n_strata), used)
                if free.shape[0] == 0:
                    free = np.arange(n_strata)
                s = int(free[rng.integers(free.shape[0])])
                point[p.label] = _from_q(p, (s + rng.random()) / n_strata)
        for lab in space.labels:
            cols[lab].append(float(point[lab]) if lab in point else np.nan)
        points.append(point)
    return points
