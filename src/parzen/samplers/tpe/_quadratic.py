"""The quadratic fit behind local steps: the minimum of a quadratic fitted to the completed
trials nearest the best one.

TPE finds the region of good trials quickly but closes in on the best point within it only at
the rate its densities narrow (a random draw from the good density lands near the optimum
less and less often as the region shrinks). A quadratic fitted by least squares to the trials
nearest the incumbent and stepped to its minimum does that last part in a few evaluations, as
trust-region methods for derivative-free optimisation do (Powell, "The NEWUOA software for
unconstrained optimization without derivatives", 2006; Conn, Scheinberg and Vicente,
"Introduction to Derivative-Free Optimization", 2009). ``_local.py`` decides when the sampler
takes such a step.

- **Neighbourhood.** The ``m`` completed trials nearest the incumbent in the TPE's unit
  encoding, ``m = ceil(size * p)`` for ``p`` coefficients; closer ones weigh more
  (``1 / (1 + (r / radius)^2)``). When the nearest ``1.3 p`` lie within half the radius (a
  core: probes, or a run of sequential steps), the weights are a Gaussian of the core's
  radius instead, so that the fit is made where the optimum is, not over the neighbourhood
  (``focus``).
- **Shape.** Separable (``1 + 2d`` coefficients: a curvature per axis) unless a full quadratic
  (``1 + d + d(d+1)/2``) fits in a neighbourhood of at most a third of the trials: with
  fewer, its neighbourhood is most of the space and the fit is global, not local.
- **Step.** Taken only when the fitted curvature is positive along every axis (or the
  Hessian positive definite) and not flat along any; clipped to the neighbourhood's radius
  (the region where the fit was made) and to the bounds. Otherwise there is no step and TPE
  chooses as usual.

``bench/README.md`` ("TPE settings") has the measurements behind these choices.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt
from scipy.linalg.lapack import dpotrf, dpotrs

FloatArray = npt.NDArray[np.float64]

# A curvature below this fraction of the largest is flat: rounding decides its sign, and the
# step along it would be as long as the neighbourhood allows, in a direction of no gain.
FLAT = 1e-8
# The full quadratic's neighbourhood may hold at most 1 / FULL_SHARE of the trials.
FULL_SHARE = 3
# A neighbourhood has a core when its nearest CORE_SIZE points per coefficient lie within
# CORE_SHARE of its radius; uniformly spread trials put them at about 0.9 of it in 6
# dimensions, probes at a tenth.
CORE_SIZE = 1.3
CORE_SHARE = 0.5


def quadratic_step(u: FloatArray, y: FloatArray, lo: FloatArray, hi: FloatArray,
                   size: float = 2.0, focus: bool = True
                   ) -> tuple[FloatArray, float] | None:
    """The minimum of a quadratic fitted to the trials nearest the best one.

    Args:
        u: completed trials' numeric values in the unit encoding, ``(n, d)``.
        y: their losses, ``(n,)``, all finite.
        lo: the encoding's lower bounds, ``(d,)``.
        hi: its upper bounds.
        size: neighbourhood size in points per fitted coefficient.
        focus: when the neighbourhood has a core (see ``CORE_SHARE``), weigh its trials by a
            Gaussian of the core's radius, so that the fit is the core's. False only to
            compare: sequential steps pile up into such a core too, and focused fits measured
            better there as well.

    Returns:
        ``(point, radius)``: the step's end and the neighbourhood's radius; None when there
        are too few trials, they coincide, or the fit has no minimum.
    """
    n, d = u.shape
    if d == 0:
        return None
    full = int(np.ceil(size * (1 + d + d * (d + 1) // 2)))
    sep = int(np.ceil(size * (1 + 2 * d)))
    m = full if n >= FULL_SHARE * full else sep
    if n < m:
        return None
    best = u[int(np.argmin(y))]
    diff = u - best
    dist = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    near = np.argpartition(dist, m - 1)[:m] if m < n else np.arange(n)
    near = near[np.argsort(dist[near], kind="stable")]
    radius = float(dist[near[-1]])
    if radius <= 0.0:
        return None
    # In units of the radius, so that every column is of order one however small the
    # neighbourhood: unscaled, the squares of a 1e-4 neighbourhood are 1e-8 of the constant
    # column, and the normal equations (``_weighted_fit``) square that.
    dx = diff[near] / radius
    w = 1.0 / (1.0 + (dist[near] / radius) ** 2)
    if focus:
        core = float(dist[near[min(m, int(np.ceil(CORE_SIZE * m / size))) - 1]])
        if 0.0 < core < CORE_SHARE * radius:
            w = np.exp(-0.5 * (dist[near] / core) ** 2)
    if m == full:
        iu = _upper(d)
        a = np.concatenate([np.ones((m, 1)), dx, dx[:, iu[0]] * dx[:, iu[1]]], axis=1)
    else:
        a = np.concatenate([np.ones((m, 1)), dx, dx * dx], axis=1)
    coef = _weighted_fit(a, y[near], w)
    if coef is None:
        return None
    grad = coef[1:1 + d]
    if m == full:
        # c * x_i * x_j contributes c to H_ij and H_ji; c * x_i^2 contributes 2c to H_ii.
        h = np.zeros((d, d))
        h[iu] = coef[1 + d:]
        h = h + h.T
        ev = np.linalg.eigvalsh(h)
        if ev[0] <= FLAT * ev[-1]:
            return None
        step = -np.linalg.solve(h, grad)
    else:
        curv = coef[1 + d:]
        if not np.all(curv > FLAT * curv.max()):
            return None
        step = -grad / (2.0 * curv)
    length = float(np.sqrt((step ** 2).sum()))  # in radii
    if not np.isfinite(length):  # a curvature barely above FLAT can overflow the step
        return None
    if length > 1.0:
        step /= length
    out: FloatArray = np.minimum(np.maximum(best + step * radius, lo), hi)
    return out, radius


def _weighted_fit(a: FloatArray, y: FloatArray, w: FloatArray) -> FloatArray | None:
    """Weighted least squares by the normal equations; None when the columns are dependent.

    The columns are of order one (the caller scales by the radius), so squaring the condition
    number costs little precision, and a Cholesky factorisation of the small normal matrix
    took a tenth of the time of an SVD or QR solver on the tall matrix (0.25 ms for a full
    quadratic in 8 dimensions, with 90 trials), which every second suggestion pays.
    """
    aw = a * w[:, None]
    chol, info = dpotrf(aw.T @ aw, lower=1, clean=0)
    if info != 0:
        return None
    coef, info = dpotrs(chol, aw.T @ (y * w), lower=1)
    if info != 0 or not np.all(np.isfinite(coef)):
        return None
    out: FloatArray = np.asarray(coef, dtype=np.float64)
    return out


@cache
def _upper(d: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Row and column indices of a d x d matrix's upper triangle, diagonal included."""
    rows, cols = np.triu_indices(d)
    return rows, cols
