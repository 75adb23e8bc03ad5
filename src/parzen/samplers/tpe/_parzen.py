"""Weighted product-kernel density estimators over one group of parameters.

Each observation contributes a kernel: a Gaussian truncated to the parameter's bounds in every
numeric dimension, times an Aitchison-Aitken kernel in every categorical one. The prior is one
more mixture component. All kernels share the bandwidth of a dimension, so with observations
stored as design rows (``Group.design``) the log of every kernel at ``N`` points is one
``(N, F) @ (F, m)`` product with point-side vectors that carry the bandwidths, followed by a
log-sum-exp: nothing per observation is recomputed per call, and no Python loop runs over
observations anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr, ndtri

from parzen.samplers.tpe._encode import Group
from parzen.samplers.tpe._scratch import Scratch, buffer

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

_LOG_SQRT_2PI = 0.5 * float(np.log(2.0 * np.pi))


@dataclass(frozen=True)
class Bandwidth:
    """How kernel widths are chosen (all in ``u`` units, where a bounded range is 1).

    ``width_d = factor * spread_d * m ** (-1 / (D + 4))`` (Scott's rule with dimension ``D``),
    floored at ``min_width`` and at half a quantisation step, capped at ``max_width``.
    ``spread_d`` is the range when ``scott`` is False and the data's weighted standard
    deviation (shrunk towards the range for small samples) otherwise.
    """

    factor: float = 0.2
    min_width: float = 0.01
    max_width: float = 1.0
    # Probability a categorical kernel spreads off its own category, before the Scott-style
    # shrink (capped at uniform). 0.45 beat 0.2 and 0.7 once candidates were re-ranked by the
    # surrogate: that re-ranking exploits harder, so the categories need more exploration
    # (200 held-out seeds on rf_mixed plus two more mixed spaces, sequential and batch 8).
    cat_factor: float = 0.45
    # Pseudo-count of the range in the spread estimate: with m points the spread is
    # m/(m+c) * std + c/(m+c) * range. c=2 beat 0.5, 1, 5 and 10 (60 seeds x 6 problems).
    shrink_count: float = 2.0


# Kernels per BLAS call in ``logpdf``: keeps each product (N x F x this, N ~ 24-48, F ~ 10-20)
# under OpenBLAS's multithreading threshold. Threads buy nothing at this size, and on a
# loaded machine waiting for them costs milliseconds. Blocking over kernels changes no result:
# every output is the same length-F dot product either way.
_KERNEL_BLOCK = 256


def _small_matmul(f: FloatArray, kmat: FloatArray, out: FloatArray | None = None
                  ) -> FloatArray:
    """``f @ kmat.T`` (into ``out`` if given), in blocks of kernels that BLAS runs
    single-threaded."""
    m = kmat.shape[0]
    if out is None:
        out = np.empty((f.shape[0], m))
    if m <= _KERNEL_BLOCK:
        np.matmul(f, kmat.T, out=out)
        return out
    for i in range(0, m, _KERNEL_BLOCK):
        np.matmul(f, kmat[i:i + _KERNEL_BLOCK].T, out=out[:, i:i + _KERNEL_BLOCK])
    return out


@dataclass(frozen=True)
class ParzenEstimator:
    """A fitted mixture: ``m`` observation kernels plus the prior."""

    group: Group
    design: FloatArray  # (m, F) the observations' design rows (``Group.design``)
    codes: IntArray  # (m, dc) kernel categories
    width: FloatArray  # (dn,) shared Gaussian widths
    eps: FloatArray  # (dc,) probability mass a categorical kernel spreads off its category
    # (m,) per-kernel log terms: weight, truncation mass, and the Gaussian's -mu^2/(2w^2)
    kconst: FloatArray
    weights: FloatArray  # (m + 1,) mixture weights, last one the prior's; sums to 1
    lo: FloatArray  # (dn,) lower bounds in u (-inf if unbounded)
    hi: FloatArray  # (dn,)

    @property
    def m(self) -> int:
        return int(self.design.shape[0])

    @property
    def mu(self) -> FloatArray:
        """Kernel centres in u, ``(m, dn)``."""
        return self.design[:, :len(self.group.numeric)]

    # -- density ---------------------------------------------------------------------------

    def logpdf(self, xn: FloatArray, xc: IntArray, scratch: Scratch | None = None
               ) -> FloatArray:
        """Log-density of ``N`` points given as numeric ``(N, dn)`` and categorical ``(N, dc)``;
        the temporaries live in ``scratch`` when given."""
        group = self.group
        n_pts = xc.shape[0] if group.categorical else xn.shape[0]
        with np.errstate(divide="ignore"):
            out: FloatArray = np.log(self.weights[-1]) + prior_logpdf(group, xn, xc)
        if self.m == 0:
            return out
        dn = xn.shape[1]
        # The point-side vector f of a point x, such that f . design_row is the log of that
        # row's kernel at x, up to a per-point term (row) and a per-kernel one (kconst, which
        # holds -mu^2/(2w^2)): x/w^2 . mu is the cross term of the Gaussian's exponent, and
        # (same - other) on x's category picks the categorical kernel's log beyond ``other``.
        inv2 = 1.0 / (self.width * self.width)
        f = np.zeros((n_pts, group.sq_start))
        np.multiply(xn, inv2, out=f[:, :dn])
        row = (-0.5 * ((xn * xn) @ inv2) - np.log(self.width).sum() - _LOG_SQRT_2PI * dn)
        pts = np.arange(n_pts)
        for j, c in enumerate(group.categorical):
            if c.k == 1:
                continue  # one category: its kernel is 1 everywhere
            same = np.log1p(-self.eps[j])
            other = np.log(self.eps[j] / (c.k - 1))
            f[pts, group.cat_start[j] + xc[:, j]] = same - other
            row += other
        a = _small_matmul(f, self.design[:, :group.sq_start],
                          out=buffer(scratch, "kernel_logs", (n_pts, self.m)))
        a += self.kconst
        top = a.max(axis=1)
        # Kernels more than e^80 below the largest add nothing to the sum, but exp() takes a
        # slow path for arguments whose result is subnormal; flooring them keeps it on the
        # fast one. The exponentials are taken in single precision: numpy vectorises float32
        # exp on AVX2 machines but not float64 exp, 3x apart over the bad group's N x m terms.
        # Each term is within [e^-80, 1] and the largest is exactly 1, so the sum's relative
        # error is ~1e-7: nothing for ranking candidates.
        e = buffer(scratch, "kernel_exps", a.shape, np.float32)
        np.subtract(a, top[:, None], out=e, casting="same_kind")
        np.maximum(e, np.float32(-80.0), out=e)
        np.exp(e, out=e)
        kern_lse = top + np.log(e.sum(axis=1, dtype=np.float64)) + row
        return np.asarray(np.logaddexp(kern_lse, out), dtype=np.float64)

    # -- sampling --------------------------------------------------------------------------

    def sample(self, n: int, rng: np.random.Generator) -> tuple[FloatArray, IntArray]:
        """``n`` draws from the mixture (numeric in u, categorical codes)."""
        cdf = np.cumsum(self.weights)
        comp = np.minimum(np.searchsorted(cdf, rng.uniform(0.0, cdf[-1], size=n),
                                          side="right"), self.m)
        from_prior = comp == self.m
        kc = np.where(from_prior, 0, comp)
        dn, dc = len(self.group.numeric), len(self.group.categorical)
        xn = np.empty((n, dn))
        xc = np.empty((n, dc), dtype=np.intp)
        n_prior = int(from_prior.sum())
        if dn:
            u = rng.uniform(size=(n, dn))
            if self.m:
                # Inverse-CDF sampling of the truncated normals, all dimensions at once; for
                # unbounded dimensions the CDF bounds are 0 and 1.
                mu = self.mu[kc]
                with np.errstate(invalid="ignore"):
                    a = ndtr((self.lo - mu) / self.width)
                    b = ndtr((self.hi - mu) / self.width)
                # np.minimum(np.maximum(...)) is np.clip without its Python-level overhead.
                p = a + u * (b - a)
                z = ndtri(np.minimum(np.maximum(p, 1e-300, out=p), 1.0 - 1e-16, out=p))
                z *= self.width
                z += mu
                np.minimum(np.maximum(z, self.lo, out=z), self.hi, out=xn)
            if n_prior:
                if self.group.unbounded:
                    for j, d in enumerate(self.group.numeric):
                        xn[from_prior, j] = d.prior_sample(n_prior, rng)
                else:
                    # Every column uniform on [0, 1]: one draw of the same stream.
                    xn[from_prior] = rng.uniform(0.0, 1.0, size=(dn, n_prior)).T
        for j, c in enumerate(self.group.categorical):
            if self.m:
                own = self.codes[kc, j]
                if c.k > 1:
                    # One uniform per draw decides both whether it moves and where to: Generator
                    # .integers costs ~20 us per call, more than the rest of this loop.
                    u = rng.uniform(size=n)
                    move = u < self.eps[j]
                    r = np.minimum((u / self.eps[j] * (c.k - 1)).astype(np.intp), c.k - 2)
                    other = r + (r >= own)
                    xc[:, j] = np.where(move, other, own)
                else:
                    xc[:, j] = own
            if n_prior:
                xc[from_prior, j] = c.prior_sample(n_prior, rng)
        return xn, xc


def prior_logpdf(group: Group, xn: FloatArray, xc: IntArray) -> FloatArray:
    """Log-density of the points under the prior, in ``u`` coordinates."""
    n_pts = xn.shape[0] if xn.shape[1] else xc.shape[0]
    out = np.zeros(n_pts)
    # Bounded (uniform-family) columns have a flat prior in u: their log-density is 0.
    for j in group.unbounded:
        out += group.numeric[j].prior_logpdf(xn[:, j])
    for j, c in enumerate(group.categorical):
        out += c.log_prior[xc[:, j]]
    return out


def log_ratio(l_est: ParzenEstimator, g_est: ParzenEstimator, xn: FloatArray, xc: IntArray,
              scratch: Scratch | None = None) -> FloatArray:
    """``log l(x) - log g(x)``, TPE's ranking of candidates (Bergstra et al., 2011)."""
    return np.asarray(l_est.logpdf(xn, xc, scratch) - g_est.logpdf(xn, xc, scratch),
                      dtype=np.float64)


# Abramowitz & Stegun 7.1.26 for erfc, rescaled to the normal CDF (absolute error < 1e-7).
_AS_P = 0.3275911 / float(np.sqrt(2.0))
_AS_A = (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)


def _lower_tail(z: FloatArray) -> FloatArray:
    """``ndtr(z)`` for ``z <= 0`` (a kernel's mass beyond a bound), to within 1e-7.

    scipy's exact ``ndtr`` costs ~13 ns per element; fitting the bad group's density at n=1000
    evaluates it for thousands of kernel-dimension pairs, and this is a third cheaper. The error
    only shifts a kernel's normalising constant by under 1e-7.
    """
    t = 1.0 / (1.0 - _AS_P * z)
    y = np.full_like(t, _AS_A[0])
    for c in _AS_A[1:]:
        y *= t
        y += c
    y *= t
    y *= np.exp(-0.5 * z * z)
    y *= 0.5
    return y


def fit(group: Group, xd: FloatArray, xc: IntArray, weights: FloatArray,
        prior_weight: float, bw: Bandwidth) -> ParzenEstimator:
    """Fit the mixture to ``m`` weighted observations plus the prior with ``prior_weight``.

    Args:
        group: the parameters modelled.
        xd: the observations' design rows ``(m, F)`` (``Group.design``).
        xc: their category codes ``(m, dc)``.
        weights: their kernel weights ``(m,)``.
        prior_weight: the prior's weight, in the same units.
        bw: how kernel widths are chosen.
    """
    m = xd.shape[0]
    dn = len(group.numeric)
    lo, hi = group.lo, group.hi
    w_all = np.append(np.asarray(weights, dtype=np.float64), prior_weight)
    total = w_all.sum()
    w_all = w_all / total if total > 0 else np.append(np.zeros(m), 1.0)
    n_eff = max(float(m), 1.0)
    shrink = n_eff ** (-1.0 / (group.dim + 4))
    if dn:
        spread = np.ones(dn)
        if m > 1:
            wd = w_all[:m] / max(w_all[:m].sum(), 1e-300)
            # Weighted mean and variance from the design's u and u**2 columns in one product:
            # u lies in [0, 1] (or a few units for normal-family columns), far from where
            # E[u^2] - E[u]^2 loses precision.
            moments = wd @ xd
            mean = moments[:dn]
            std = np.sqrt(np.maximum(moments[group.sq_start:group.gap_start] - mean * mean,
                                     0.0))
            # Few points give a noisy std; blend towards the range (the prior's spread).
            a = m / (m + bw.shrink_count)
            spread = a * std + (1.0 - a) * 1.0
        width = bw.factor * spread * shrink
        width = np.minimum(np.maximum(width, np.maximum(bw.min_width, group.q_floor)),
                           bw.max_width)
    else:
        width = np.ones(0)
    eps = np.array([min((c.k - 1) / c.k, bw.cat_factor * shrink) for c in group.categorical])
    with np.errstate(divide="ignore"):
        kconst = np.log(w_all[:m])
    if dn and m:
        kconst -= 0.5 * (xd[:, group.sq_start:group.gap_start] @ (1.0 / (width * width)))
    cols = group.bounded_cols
    if m and group.bounded.shape[0]:
        kconst -= _log_mass_inside(xd[:, group.gap_start:], hi[cols] - lo[cols], width[cols])
    return ParzenEstimator(group, xd, np.asarray(xc, dtype=np.intp), width, eps, kconst,
                           w_all, lo, hi)


def _log_mass_inside(gap: FloatArray, span: FloatArray, width: FloatArray) -> FloatArray:
    """Log of the mass each kernel keeps inside the bounds, from the distances ``gap (m, d)``
    of its centre to the nearer bound, the ranges ``span`` and the widths.

    A kernel loses mass only past a bound within a few widths of its centre (beyond 6 widths
    the loss is < 1e-9), so the normal CDF is evaluated for those tails alone. Kernels narrower
    than a twelfth of the range reach at most the nearer bound, which halves the work in the
    common case; wider ones get the far tail as well.
    """
    neg_inv = -1.0 / width
    z = gap * neg_inv
    lost: FloatArray = np.zeros(z.shape)
    flat_z = z.reshape(-1)
    hit = np.flatnonzero(flat_z > -6.0)
    lost.reshape(-1)[hit] = _lower_tail(flat_z[hit])
    wide = np.flatnonzero(12.0 * width > span)
    if wide.shape[0]:
        z_far = (span[wide] - gap[:, wide]) * neg_inv[wide]
        lost[:, wide] += _lower_tail(z_far)
    np.subtract(1.0, lost, out=lost)
    # Column by column: numpy reduces along a short trailing axis slowly. Each factor is at
    # least the mass of a width <= 1 Gaussian inside a unit range (> 0.3), so the product
    # cannot underflow.
    mass = lost[:, 0].copy()
    for j in range(1, int(lost.shape[1])):
        mass *= lost[:, j]
    return np.asarray(np.log(mass), dtype=np.float64)
