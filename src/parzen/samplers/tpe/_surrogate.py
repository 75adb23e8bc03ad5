"""A small Gaussian-process surrogate of the losses, used in three places.

1. **Re-ranking candidates** (``_rerank.py``). ``l / g`` says where good trials are *dense*,
   not where the loss is *lowest*, and among the top few candidates it is a weak
   tie-breaker; the surrogate's prediction decides among them instead, within the best
   candidate's categories (without that rule the re-ranking locked onto the first good
   category).
2. **Fantasies for pending trials** (``_pending.py``; the "kriging believer" of Ginsbourger,
   Le Riche and Carraro, 2010). A batch is built one point at a time, and the points already
   handed out have no results yet. Each is given the loss the surrogate predicts for it and
   then counts as completed: predicted good, it joins the good group; predicted poor, the
   rest.
3. **Thompson draws in batches** (``_rerank.py``). Past a batch's first points, candidates are
   ranked by one joint draw from the posterior instead of its mean (``Surrogate.sample``), so
   the batch spreads over what the model is unsure of.

Losses are modelled through their ranks (normal scores), so the objective's scale does not
matter; a predicted score maps back to a loss through the empirical quantiles of the completed
ones. The kernel is an isotropic squared exponential on the TPE's unit-free encoding
(categoricals one-hot, a mismatch at distance 1) with a fixed length scale of ``0.1 * sqrt(d)``:
fitting it by marginal likelihood chose about that anyway, and smaller scales made the
re-ranking greedy, so the scale is a regulariser here, not a fitted quantity. The model sees
the most recent ``MAX_ROWS`` completed trials only: that keeps its cost (about 0.25 ms per
suggestion, encoding included) independent of the history size, and recent trials are the
ones near the region the TPE is refining. ``bench/README.md`` ("TPE settings") has the
measurements behind these choices.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy.linalg.lapack import dpotrf, dpotrs, dtrtrs
from scipy.special import ndtr, ndtri

from parzen.samplers.tpe._encode import Group

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

_NOISE = 0.05  # observation noise of the rank scores (their variance is ~1)
_SCALE = 0.1  # length scale per sqrt(dimension)
MAX_ROWS = 64  # the surrogate is fitted on at most this many (most recent) completed trials


def features(groups: Sequence[Group], values: dict[str, FloatArray], rows: IntArray
             ) -> FloatArray:
    """Rows as unit-free feature vectors: numeric ``u`` (-1 when inactive), one-hot categories
    scaled so that a mismatch is at distance 1 (all zeros when inactive)."""
    cols: list[FloatArray] = []
    for g in groups:
        if g.numeric:
            x = np.stack([values[d.label][rows] for d in g.numeric], axis=1)
            missing = np.isnan(x)
            # 1.0 stands in for inactive values (valid on a log scale too); they become -1.
            cols.append(np.where(missing, -1.0, g.encode_numeric(np.where(missing, 1.0, x))))
        for c in g.categorical:
            v = values[c.label][rows]
            onehot = np.zeros((rows.shape[0], c.k))
            ok = np.flatnonzero(~np.isnan(v))
            onehot[ok, c.encode(v[ok])] = np.sqrt(0.5)
            cols.append(onehot)
    return np.concatenate(cols, axis=1) if cols else np.zeros((rows.shape[0], 0))


def design_features(groups: Sequence[Group], designs: Sequence[FloatArray],
                    values: dict[str, FloatArray], rows: IntArray) -> FloatArray:
    """``features`` of ``rows``, taken from each group's design rows (``Group.design``)
    instead of encoding the values again; ``designs[i]`` holds group ``i``'s."""
    cols: list[FloatArray] = []
    for g, design in zip(groups, designs, strict=True):
        dn = len(g.numeric)
        sub = design[rows]
        inactive = np.isnan(values[g.labels[0]][rows])
        if dn:
            u = sub[:, :dn]
            u[inactive] = -1.0
            cols.append(u)
        if g.categorical:
            onehot = sub[:, dn:g.sq_start]
            onehot *= np.sqrt(0.5)
            onehot[inactive] = 0.0
            cols.append(onehot)
    return np.concatenate(cols, axis=1) if cols else np.zeros((rows.shape[0], 0))


def group_features(g: Group, un: FloatArray, codes: IntArray) -> FloatArray:
    """The columns ``features`` gives group ``g``, for points active in it, from their
    numeric ``u`` values ``(k, dn)`` and category codes ``(k, dc)``."""
    cols = [un]
    for j, c in enumerate(g.categorical):
        onehot = np.zeros((codes.shape[0], c.k))
        onehot[np.arange(codes.shape[0]), codes[:, j]] = np.sqrt(0.5)
        cols.append(onehot)
    return np.concatenate(cols, axis=1) if len(cols) > 1 else un


def column_span(groups: Sequence[Group], g: Group) -> tuple[int, int]:
    """Where group ``g``'s columns lie in ``features``' layout."""
    start = 0
    for h in groups:
        width = len(h.numeric) + sum(c.k for c in h.categorical)
        if h is g:
            return start, start + width
        start += width
    raise ValueError("group not in groups")


def _kernel(d2: FloatArray, ls2: float) -> FloatArray:
    """Squared-exponential kernel; entries below 1e-12 are zeroed, as subnormal numbers would
    make the Cholesky factorisation a hundred times slower.

    The exponentials are taken in single precision (numpy vectorises float32 ``exp`` on AVX2
    but not float64, 3x apart); a relative error of 1e-7 in the kernel is far below the 0.05
    noise that regularises it.
    """
    arg = np.multiply(d2, -0.5 / ls2, dtype=np.float32)
    np.maximum(arg, np.float32(-28.0), out=arg)  # e^-28 < 1e-12, and never subnormal
    k = np.exp(arg, out=arg).astype(np.float64)
    k[k < 1e-12] = 0.0
    return k


def _sq_dist(a: FloatArray, a2: FloatArray, b: FloatArray, b2: FloatArray) -> FloatArray:
    """Squared distances between rows of ``a`` and ``b``, given their squared norms."""
    d2 = a @ b.T
    d2 *= -2.0
    d2 += a2[:, None]
    d2 += b2[None, :]
    out: FloatArray = np.maximum(d2, 0.0, out=d2)
    return out


def _sq_norms(a: FloatArray) -> FloatArray:
    # einsum, as numpy's sum over a short trailing axis is slow.
    out: FloatArray = np.einsum("ij,ij->i", a, a)
    return out


class Surrogate:
    """GP posterior mean of the losses' rank scores, fitted on features ``x`` and losses ``y``."""

    def __init__(self, x: FloatArray, y: FloatArray) -> None:
        n = y.shape[0]
        self.x = x
        self.x2 = _sq_norms(x)
        order = np.argsort(y, kind="stable")
        self.sorted_y = y[order]
        rank = np.empty(n)
        rank[order] = np.arange(n)
        z = ndtri((rank + 0.5) / n)
        self.ls2 = _SCALE * _SCALE * max(x.shape[1], 1)
        k = _kernel(_sq_dist(x, self.x2, x, self.x2), self.ls2)
        k.flat[::n + 1] += _NOISE  # the diagonal
        # LAPACK directly: scipy.linalg's wrappers cost more than the factorisation at this
        # size. The noise keeps k positive definite.
        chol, info = dpotrf(k, lower=1, clean=0)
        if info != 0:  # pragma: no cover - only a non-finite input could get here
            raise np.linalg.LinAlgError(f"surrogate kernel not positive definite ({info})")
        alpha, _ = dpotrs(chol, z, lower=1)
        self.alpha: FloatArray = np.asarray(alpha, dtype=np.float64)
        self.chol: FloatArray = chol

    def score(self, q: FloatArray) -> FloatArray:
        """Predicted rank scores at features ``q``: lower is better (a normal score)."""
        k = _kernel(_sq_dist(q, _sq_norms(q), self.x, self.x2), self.ls2)
        return np.asarray(k @ self.alpha, dtype=np.float64)

    def sample(self, q: FloatArray, rng: np.random.Generator) -> FloatArray:
        """One joint draw of the noise-free rank scores at features ``q`` from the posterior.

        The prior variance is 1 (the scores are normal scores), so far from every observation
        a draw ranges as widely as the scores themselves.
        """
        q2 = _sq_norms(q)
        ks = _kernel(_sq_dist(q, q2, self.x, self.x2), self.ls2)
        mean = ks @ self.alpha
        v, _ = dtrtrs(self.chol, ks.T, lower=1)
        cov = _kernel(_sq_dist(q, q2, q, q2), self.ls2) - v.T @ v
        # The jitter (a standard deviation of 1e-3 in score units) keeps the factorisation
        # defined when two rows of q coincide, which candidates of a group without numeric
        # parameters do. eigh is the fallback only: with threaded BLAS it measured 0.3-10 ms
        # at 32 rows against 0.02 ms for the Cholesky factorisation.
        cov.flat[::cov.shape[0] + 1] += 1e-6
        z = rng.standard_normal(cov.shape[0])
        chol, info = dpotrf(cov, lower=1, clean=1)
        if info == 0:
            draw = chol @ z
        else:  # pragma: no cover - rounding beyond the jitter
            w, vec = np.linalg.eigh(cov)
            draw = vec @ (np.sqrt(np.maximum(w, 0.0)) * z)
        return np.asarray(mean + draw, dtype=np.float64)

    def predict(self, q: FloatArray) -> FloatArray:
        """Believed losses at features ``q``: the predicted rank mapped to a loss quantile."""
        n = self.sorted_y.shape[0]
        pos = np.clip(ndtr(self.score(q)) * n - 0.5, 0.0, n - 1.0)
        return np.asarray(np.interp(pos, np.arange(n), self.sorted_y), dtype=np.float64)
