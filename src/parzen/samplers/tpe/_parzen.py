"""Weighted product-kernel density estimators over one group of parameters.

Each observation contributes a kernel: a Gaussian truncated to the parameter's bounds in every
numeric dimension, times an Aitchison-Aitken kernel in every categorical one. The prior is one
more mixture component. All kernels share the bandwidth of a dimension, which turns the
log-density of ``N`` candidates under ``m`` kernels into one ``(N, F) @ (F, m)`` product followed
by a log-sum-exp: no Python loop over observations anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr, ndtri

from parzen.samplers.tpe._encode import Group

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


def _small_matmul(f: FloatArray, kmat: FloatArray) -> FloatArray:
    """``f @ kmat.T``, in blocks of kernels that BLAS runs single-threaded."""
    m = kmat.shape[0]
    if m <= _KERNEL_BLOCK:
        out: FloatArray = f @ kmat.T
        return out
    out = np.empty((f.shape[0], m))
    for i in range(0, m, _KERNEL_BLOCK):
        np.matmul(f, kmat[i:i + _KERNEL_BLOCK].T, out=out[:, i:i + _KERNEL_BLOCK])
    return out


@dataclass(frozen=True)
class ParzenEstimator:
    """A fitted mixture: ``m`` observation kernels plus the prior."""

    group: Group
    mu: FloatArray  # (m, dn) kernel centres in u
    codes: IntArray  # (m, dc) kernel categories
    width: FloatArray  # (dn,) shared Gaussian widths
    eps: FloatArray  # (dc,) probability mass a categorical kernel spreads off its category
    log_norm: FloatArray  # (m,) log truncation mass of each kernel
    weights: FloatArray  # (m + 1,) mixture weights, last one the prior's; sums to 1
    lo: FloatArray  # (dn,) lower bounds in u (-inf if unbounded)
    hi: FloatArray  # (dn,)

    @property
    def m(self) -> int:
        return int(self.mu.shape[0])

    # -- density ---------------------------------------------------------------------------

    def logpdf(self, xn: FloatArray, xc: IntArray) -> FloatArray:
        """Log-density of ``N`` points given as numeric ``(N, dn)`` and categorical ``(N, dc)``."""
        n_pts = xn.shape[0] if xn.shape[1] else xc.shape[0]
        with np.errstate(divide="ignore"):
            logw = np.log(self.weights)
        out: FloatArray = logw[-1] + self._prior_logpdf(xn, xc)
        if self.m == 0:
            return out
        inv = 1.0 / self.width
        xs = xn * inv
        ms = self.mu * inv
        # Features of the points and of the kernels whose dot product, plus per-row and
        # per-kernel constants, is the log of every kernel at every point.
        feats = [xs]
        kern = [ms]
        const = (logw[:-1] - 0.5 * np.einsum("ij,ij->i", ms, ms) - self.log_norm
                 - np.log(self.width).sum() - _LOG_SQRT_2PI * self.width.shape[0])
        for j, c in enumerate(self.group.categorical):
            k = c.k
            if k == 1:
                continue
            same = np.log1p(-self.eps[j])
            other = np.log(self.eps[j] / (k - 1))
            onehot = np.zeros((n_pts, k))
            onehot[np.arange(n_pts), xc[:, j]] = 1.0
            table = np.full((self.m, k), other)
            table[np.arange(self.m), self.codes[:, j]] = same
            feats.append(onehot)
            kern.append(table)
        f = np.concatenate(feats, axis=1) if len(feats) > 1 else feats[0]
        kmat = np.concatenate(kern, axis=1) if len(kern) > 1 else kern[0]
        a = _small_matmul(f, kmat)
        a += const[None, :]
        # The per-point term -|x/w|^2/2 is common to every kernel: add it after the sum.
        row = -0.5 * np.einsum("ij,ij->i", xs, xs)
        top = a.max(axis=1)
        a -= top[:, None]
        # Kernels more than e^700 below the largest add nothing to the sum, but exp() takes a
        # slow path for arguments that underflow; flooring them keeps it on the fast one.
        np.maximum(a, -700.0, out=a)
        np.exp(a, out=a)
        kern_lse = top + np.log(a.sum(axis=1)) + row
        return np.asarray(np.logaddexp(kern_lse, out), dtype=np.float64)

    def _prior_logpdf(self, xn: FloatArray, xc: IntArray) -> FloatArray:
        n_pts = xn.shape[0] if xn.shape[1] else xc.shape[0]
        out = np.zeros(n_pts)
        # Bounded (uniform-family) columns have a flat prior in u: their log-density is 0.
        for j in self.group.unbounded:
            out += self.group.numeric[j].prior_logpdf(xn[:, j])
        for j, c in enumerate(self.group.categorical):
            out += c.log_prior[xc[:, j]]
        return out

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


def fit(group: Group, xn: FloatArray, xc: IntArray, weights: FloatArray,
        prior_weight: float, bw: Bandwidth) -> ParzenEstimator:
    """Fit the mixture to ``m`` weighted observations plus the prior with ``prior_weight``."""
    m = xn.shape[0] if xn.shape[1] else xc.shape[0]
    dn, dc = len(group.numeric), len(group.categorical)
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
            mean = wd @ xn
            std = np.sqrt(np.maximum(wd @ (xn - mean) ** 2, 0.0))
            # Few points give a noisy std; blend towards the range (the prior's spread).
            a = m / (m + bw.shrink_count)
            spread = a * std + (1.0 - a) * 1.0
        width = bw.factor * spread * shrink
        width = np.minimum(np.maximum(width, np.maximum(bw.min_width, group.q_floor)),
                           bw.max_width)
    else:
        width = np.ones(0)
    eps = np.array([min((c.k - 1) / c.k, bw.cat_factor * shrink) for c in group.categorical])
    log_norm = np.zeros(m)
    bounded = group.bounded
    if m and bounded.shape[0]:
        # Only kernels within a few widths of a bound lose mass to truncation (beyond 6
        # widths the loss is < 1e-9), so the normal CDF is evaluated for those tails alone:
        # fitting stays a few cheap passes over the data even for large m.
        if bounded.shape[0] == dn:
            x, lo_b, hi_b, w_b = xn, lo, hi, width
        else:
            x, lo_b, hi_b, w_b = xn[:, bounded], lo[bounded], hi[bounded], width[bounded]
        inv = 1.0 / w_b
        z_lo = np.subtract(lo_b, x)
        z_lo *= inv
        z_lo = z_lo.reshape(-1)
        z_hi = np.subtract(x, hi_b)
        z_hi *= inv
        z_hi = z_hi.reshape(-1)
        lost = np.zeros(x.shape)
        flat = lost.reshape(-1)
        near = np.flatnonzero(z_lo > -6.0)
        flat[near] = _lower_tail(z_lo[near])
        near = np.flatnonzero(z_hi > -6.0)
        flat[near] += _lower_tail(z_hi[near])
        np.subtract(1.0, lost, out=lost)
        np.maximum(lost, 1e-300, out=lost)
        log_norm = np.log(lost, out=lost).sum(axis=1)
    return ParzenEstimator(group, np.asarray(xn, dtype=np.float64).reshape(m, dn),
                           np.asarray(xc, dtype=np.intp).reshape(m, dc), width, eps,
                           log_norm, w_all, lo, hi)
