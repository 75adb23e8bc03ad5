"""Fantasised losses for pending trials: a small Gaussian-process "believer".

A batch is built one point at a time, and the points already handed out have no results yet.
Sequential TPE would have seen them. Here each pending point is given the loss that a Gaussian
process fitted to the completed trials predicts for it (the "kriging believer" of Ginsbourger et
al., 2010) and then counts as completed: a pending point predicted to be good joins the good
group, one predicted to be poor joins the rest. Measured over 2 x 60 seeds x 6 problems at batch
size 8, this cut the batch/sequential regret ratio from ~2.4 to ~1.6-1.9 (geometric mean) where
the worst-loss constant liar had been used.

Losses are modelled through their ranks (normal scores), so the objective's scale does not
matter, and a prediction is mapped back to a loss through the empirical quantiles of the
completed ones. The kernel is an isotropic squared exponential on the TPE's unit-free encoding
(categoricals one-hot, a mismatch at distance 1); its length scale is picked from a short grid by
marginal likelihood.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy.linalg import cho_factor, cho_solve
from scipy.special import ndtr, ndtri

from parzen.samplers.tpe._encode import Group

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

_NOISE = 0.05  # observation noise of the rank scores (their variance is ~1)
_SCALES = (0.1, 0.2, 0.35, 0.6)  # length scales per sqrt(dimension)
MAX_ROWS = 200  # the GP is fitted on at most this many (most recent) completed trials


def features(groups: Sequence[Group], values: dict[str, FloatArray], rows: IntArray
             ) -> FloatArray:
    """Rows as unit-free feature vectors: numeric ``u`` (-1 when inactive), one-hot categories
    scaled so that a mismatch is at distance 1 (all zeros when inactive)."""
    cols: list[FloatArray] = []
    for g in groups:
        for d in g.numeric:
            v = values[d.label][rows]
            cols.append(np.where(np.isnan(v), -1.0, d.encode(v))[:, None])
        for c in g.categorical:
            v = values[c.label][rows]
            onehot = np.zeros((rows.shape[0], c.k))
            ok = np.flatnonzero(~np.isnan(v))
            onehot[ok, c.encode(v[ok])] = np.sqrt(0.5)
            cols.append(onehot)
    return np.concatenate(cols, axis=1) if cols else np.zeros((rows.shape[0], 0))


def _kernel(d2: FloatArray, ls2: float) -> FloatArray:
    """Squared-exponential kernel; tiny entries are zeroed, as subnormal numbers would make the
    Cholesky factorisation a hundred times slower."""
    k = np.exp(-0.5 * d2 / ls2)
    k[k < 1e-12] = 0.0
    return k


def _sq_dist(a: FloatArray, b: FloatArray) -> FloatArray:
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.asarray(np.maximum(d2, 0.0), dtype=np.float64)


class Believer:
    """GP posterior mean of the losses' rank scores, fitted on features ``x`` and losses ``y``."""

    def __init__(self, x: FloatArray, y: FloatArray) -> None:
        n = y.shape[0]
        self.x = x
        self.sorted_y = np.sort(y)
        rank = np.empty(n)
        rank[np.argsort(y, kind="stable")] = np.arange(n)
        z = ndtri((rank + 0.5) / n)
        d2 = _sq_dist(x, x)
        dim = max(x.shape[1], 1)
        self.alpha = np.zeros(n)
        self.ls2 = _SCALES[0] ** 2 * dim
        best = -np.inf
        for s in _SCALES:
            ls2 = s * s * dim
            k = _kernel(d2, ls2)
            k[np.diag_indices_from(k)] += _NOISE
            try:
                c, low = cho_factor(k, lower=True, check_finite=False)
            except np.linalg.LinAlgError:  # pragma: no cover - the noise keeps k positive
                continue
            a = cho_solve((c, low), z, check_finite=False)
            lml = float(-0.5 * z @ a - np.log(np.diag(c)).sum())
            if lml > best:
                best, self.alpha, self.ls2 = lml, a, ls2

    def predict(self, q: FloatArray) -> FloatArray:
        """Believed losses at features ``q``: the predicted rank mapped to a loss quantile."""
        z = _kernel(_sq_dist(q, self.x), self.ls2) @ self.alpha
        n = self.sorted_y.shape[0]
        pos = np.clip(ndtr(z) * n - 0.5, 0.0, n - 1.0)
        return np.asarray(np.interp(pos, np.arange(n), self.sorted_y), dtype=np.float64)
