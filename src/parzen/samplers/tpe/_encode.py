"""The TPE's internal coordinates: every parameter mapped to a numeric or categorical column.

Numeric parameters are modelled in a unit-free coordinate ``u``:

* ``uniform``-family: ``u = (t - low) / (high - low)`` with ``t = log(x)`` for log kinds, so the
  prior is uniform on ``[0, 1]`` and bandwidths are fractions of the range;
* ``normal``-family: ``u = (t - mu) / (4 sigma)``, unbounded, prior ``N(0, 1/4^2)``; ``4 sigma``
  plays the role of the range (about 95% of the prior mass).

Categorical parameters (``choice``, ``pchoice``, ``randint``) are integer codes with a prior
probability vector. Quantisation is applied in the value's natural scale when decoding, as
hyperopt does, and candidates are re-encoded after it so densities are evaluated exactly where
the point will be.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from parzen.samplers._prior import quantize
from parzen.space import Choice, Normal, Param, RandInt, Space, Uniform

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

# Normal-family parameters: this many sigmas make one unit of ``u``.
NORMAL_UNIT_SIGMAS = 4.0
# Encoded values of log-normal zeros (log(0) = -inf) are clipped here, far in the prior's tail.
_U_FLOOR = -8.0


@dataclass(frozen=True)
class NumericDim:
    """One numeric column of a group. ``lo``/``hi`` are ``u`` bounds (infinite if unbounded)."""

    label: str
    param: Uniform | Normal
    lo: float
    hi: float
    q_u: float  # the quantisation step measured in ``u`` (0 when continuous), a bandwidth floor

    @property
    def bounded(self) -> bool:
        return self.lo > -np.inf

    def encode(self, x: FloatArray) -> FloatArray:
        p = self.param
        # log of a (quantised) zero is floored far below any bound, then clipped to it.
        t = np.log(np.maximum(x, 1e-300)) if p.log else x
        if isinstance(p, Uniform):
            u = (t - p.low) / (p.high - p.low)
        else:
            u = (t - p.mu) / (NORMAL_UNIT_SIGMAS * p.sigma)
        # fmax/fmin map NaN (inactive rows, never used) to a bound instead of propagating it.
        lo = self.lo if self.lo > -np.inf else _U_FLOOR
        out: FloatArray = np.fmax(np.fmin(u, self.hi), lo)
        return out

    def decode(self, u: FloatArray) -> FloatArray:
        """Raw trial values (natural scale, quantised) for ``u``."""
        p = self.param
        if isinstance(p, Uniform):
            t = p.low + np.clip(u, 0.0, 1.0) * (p.high - p.low)
        else:
            t = p.mu + u * (NORMAL_UNIT_SIGMAS * p.sigma)
        x = np.exp(t) if p.log else t
        return quantize(x, p.q)

    def prior_logpdf(self, u: FloatArray) -> FloatArray:
        if self.bounded:
            return np.zeros_like(u)
        s = 1.0 / NORMAL_UNIT_SIGMAS
        out: FloatArray = -0.5 * (u / s) ** 2 - float(np.log(s * np.sqrt(2.0 * np.pi)))
        return out

    def prior_sample(self, n: int, rng: np.random.Generator) -> FloatArray:
        if self.bounded:
            return rng.uniform(0.0, 1.0, size=n)
        return rng.normal(0.0, 1.0 / NORMAL_UNIT_SIGMAS, size=n)


@dataclass(frozen=True)
class CategoricalDim:
    """One categorical column: codes ``0..k-1`` and the prior probability of each."""

    label: str
    param: Choice | RandInt
    prior: FloatArray
    # Per-call constants, derived from ``prior`` once.
    log_prior: FloatArray = field(init=False, repr=False, compare=False)
    prior_cdf: FloatArray = field(init=False, repr=False, compare=False)
    k: int = field(init=False, compare=False)

    def __post_init__(self) -> None:
        with np.errstate(divide="ignore"):
            object.__setattr__(self, "log_prior", np.log(self.prior))
        cdf = np.cumsum(self.prior)
        object.__setattr__(self, "prior_cdf", cdf / cdf[-1])
        object.__setattr__(self, "k", int(self.prior.shape[0]))

    def prior_sample(self, n: int, rng: np.random.Generator) -> IntArray:
        """``n`` codes from the prior; the same draws as ``rng.choice(k, size=n, p=prior)``."""
        out: IntArray = np.searchsorted(self.prior_cdf, rng.random(n), side="right")
        return out

    @property
    def offset(self) -> int:
        return self.param.low if isinstance(self.param, RandInt) else 0

    def encode(self, x: FloatArray) -> IntArray:
        return np.fmax(np.fmin(x - self.offset, self.k - 1), 0).astype(np.intp)

    def decode(self, c: IntArray) -> FloatArray:
        return (c + self.offset).astype(np.float64)


def numeric_dim(p: Uniform | Normal) -> NumericDim:
    if isinstance(p, Uniform):
        q_u = 0.0
        if p.q is not None:
            # Step in u near the lower end; for log kinds the grid is finer there than above,
            # so this is the smallest (safest) floor.
            if p.log:
                lo_x = max(np.exp(p.low), p.q)
                q_u = float(np.log1p(p.q / lo_x) / (p.high - p.low))
            else:
                q_u = p.q / (p.high - p.low)
        return NumericDim(p.label, p, 0.0, 1.0, min(q_u, 1.0))
    q_u = 0.0
    if p.q is not None and not p.log:
        q_u = p.q / (NORMAL_UNIT_SIGMAS * p.sigma)
    return NumericDim(p.label, p, -np.inf, np.inf, q_u)


def categorical_dim(p: Choice | RandInt) -> CategoricalDim:
    if isinstance(p, Choice):
        w = np.asarray(p.weights, dtype=np.float64)
    else:
        w = np.full(p.high - p.low, 1.0 / (p.high - p.low))
    return CategoricalDim(p.label, p, w / w.sum())


@dataclass(frozen=True)
class Group:
    """Parameters active under the same conditions; modelled jointly by one product kernel."""

    labels: tuple[str, ...]
    numeric: tuple[NumericDim, ...]
    categorical: tuple[CategoricalDim, ...]
    # Per-call constants of the numeric columns, derived once.
    lo: FloatArray = field(init=False, repr=False, compare=False)  # u bounds
    hi: FloatArray = field(init=False, repr=False, compare=False)
    q_floor: FloatArray = field(init=False, repr=False, compare=False)  # half steps
    bounded: IntArray = field(init=False, repr=False, compare=False)  # bounded columns
    bounded_cols: IntArray | slice = field(init=False, repr=False, compare=False)
    unbounded: tuple[int, ...] = field(init=False, repr=False, compare=False)
    # Where each categorical's one-hot block starts in a design row (see ``design``).
    cat_start: tuple[int, ...] = field(init=False, repr=False, compare=False)
    sq_start: int = field(init=False, repr=False, compare=False)  # where u**2 starts
    gap_start: int = field(init=False, repr=False, compare=False)  # where the gaps start
    _num: _Columns = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_num", _Columns.of(self.numeric))
        lo = np.array([d.lo for d in self.numeric], dtype=np.float64)
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", np.array([d.hi for d in self.numeric],
                                                dtype=np.float64))
        object.__setattr__(self, "q_floor", np.array([d.q_u / 2.0 for d in self.numeric],
                                                     dtype=np.float64))
        bounded = np.flatnonzero(np.isfinite(lo))
        object.__setattr__(self, "bounded", bounded)
        # The bounded columns as a slice when they are the first ones (always, for spaces
        # without normal-family parameters), so that selecting them copies nothing.
        object.__setattr__(self, "bounded_cols",
                           slice(0, bounded.shape[0])
                           if np.array_equal(bounded, np.arange(bounded.shape[0])) else bounded)
        object.__setattr__(self, "unbounded",
                           tuple(j for j, d in enumerate(self.numeric) if not d.bounded))
        start = len(self.numeric)
        starts = []
        for c in self.categorical:
            starts.append(start)
            start += c.k
        object.__setattr__(self, "cat_start", tuple(starts))
        object.__setattr__(self, "sq_start", start)
        object.__setattr__(self, "gap_start", start + len(self.numeric))

    @property
    def dim(self) -> int:
        return len(self.numeric) + len(self.categorical)

    @property
    def design_width(self) -> int:
        return self.gap_start + int(self.bounded.shape[0])

    def design(self, u: FloatArray, codes: IntArray) -> FloatArray:
        """Observations as design rows ``[u | one-hot of each category | u**2 | gap]``, where
        ``gap`` is the distance from each bounded column's value to its nearer bound.

        A row is fixed once its trial exists, and with these columns every kernel's log at a
        point is one dot product of the first ``sq_start`` columns with a point-side vector
        that carries the bandwidths (see ``ParzenEstimator.logpdf``), the weighted mean and
        variance of ``u`` are one more product, and the kernels' truncation needs only the
        gaps.
        """
        m, dn = codes.shape[0], u.shape[1]
        out = np.zeros((m, self.design_width))
        out[:, :dn] = u
        np.multiply(u, u, out=out[:, self.sq_start:self.gap_start])
        b = self.bounded_cols
        np.minimum(u[:, b] - self.lo[b], self.hi[b] - u[:, b], out=out[:, self.gap_start:])
        rows = np.arange(m)
        for j, start in enumerate(self.cat_start):
            out[rows, start + codes[:, j]] = 1.0
        return out

    def encode_numeric(self, x: FloatArray) -> FloatArray:
        """``NumericDim.encode`` of every column of raw values ``x (m, dn)``, in one pass."""
        c = self._num
        t = x
        if c.log.shape[0] == x.shape[1]:
            t = np.log(np.maximum(x, 1e-300))
        elif c.log.shape[0]:
            t = x.copy()
            t[:, c.log] = np.log(np.maximum(x[:, c.log], 1e-300))
        u = (t - c.off) / c.span
        out: FloatArray = np.fmax(np.fmin(u, c.hi, out=u), c.lo, out=u)
        return out

    def decode_numeric(self, u: FloatArray) -> FloatArray:
        """``NumericDim.decode`` of every column of ``u (m, dn)``, in one pass."""
        c = self._num
        if c.uniform.shape[0] == u.shape[1]:
            u = np.minimum(np.maximum(u, 0.0), 1.0)  # np.clip, without its overhead
        elif c.uniform.shape[0]:
            u = u.copy()
            u[:, c.uniform] = np.minimum(np.maximum(u[:, c.uniform], 0.0), 1.0)
        t = c.off + u * c.span
        if c.log.shape[0] == t.shape[1]:
            np.exp(t, out=t)
        elif c.log.shape[0]:
            t[:, c.log] = np.exp(t[:, c.log])
        if c.quant.shape[0]:
            t[:, c.quant] = np.round(t[:, c.quant] / c.q) * c.q
        return t


@dataclass(frozen=True)
class _Columns:
    """Per-column constants of a group's numeric encoding, as arrays for vectorised use."""

    off: FloatArray  # low (uniform family) or mu (normal family)
    span: FloatArray  # high - low, or NORMAL_UNIT_SIGMAS * sigma
    lo: FloatArray  # clip bounds of the encoding (the u floor for unbounded columns)
    hi: FloatArray
    log: IntArray  # log-kind columns
    uniform: IntArray  # uniform-family columns (clipped to [0, 1] when decoding)
    quant: IntArray  # quantised columns and their steps
    q: FloatArray

    @staticmethod
    def of(dims: Sequence[NumericDim]) -> _Columns:
        def idx(keep: list[bool]) -> IntArray:
            return np.flatnonzero(np.array(keep, dtype=bool))

        ps = [d.param for d in dims]
        return _Columns(
            off=np.array([p.low if isinstance(p, Uniform) else p.mu for p in ps], dtype=float),
            span=np.array([p.high - p.low if isinstance(p, Uniform)
                           else NORMAL_UNIT_SIGMAS * p.sigma for p in ps], dtype=float),
            lo=np.array([d.lo if d.lo > -np.inf else _U_FLOOR for d in dims], dtype=float),
            hi=np.array([d.hi for d in dims], dtype=float),
            log=idx([p.log for p in ps]),
            uniform=idx([isinstance(p, Uniform) for p in ps]),
            quant=idx([p.q is not None for p in ps]),
            q=np.array([p.q for p in ps if p.q is not None], dtype=float),
        )


def build_groups(space: Space, multivariate: bool) -> list[Group]:
    """Split the space into groups, parents' groups first.

    With ``multivariate`` every set of parameters sharing a condition set is one group;
    otherwise each parameter is its own group (the independent TPE of Bergstra et al.).
    """
    buckets: dict[object, list[Param]] = {}
    for p in space.params:
        key: object = space.conditions[p.label] if multivariate else p.label
        buckets.setdefault(key, []).append(p)
    groups = []
    for params in buckets.values():
        num = tuple(numeric_dim(p) for p in params if isinstance(p, (Uniform, Normal)))
        cat = tuple(categorical_dim(p) for p in params if isinstance(p, (Choice, RandInt)))
        groups.append(Group(tuple(p.label for p in params), num, cat))
    return groups


def encode_group(group: Group, values: Mapping[str, FloatArray], rows: IntArray | slice
                 ) -> tuple[FloatArray, IntArray]:
    """The group's rows as design rows ``(m, design_width)`` and category codes ``(m, dc)``."""
    m = len(values[group.labels[0]][rows])
    xn = np.empty((m, len(group.numeric)))
    for j, d in enumerate(group.numeric):
        xn[:, j] = values[d.label][rows]
    xc = np.empty((m, len(group.categorical)), dtype=np.intp)
    for j, c in enumerate(group.categorical):
        xc[:, j] = c.encode(np.asarray(values[c.label][rows], dtype=np.float64))
    return group.design(group.encode_numeric(xn), xc), xc


def snap(group: Group, un: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Decode numeric candidates to raw values and re-encode them (quantised, clipped)."""
    raw = group.decode_numeric(un)
    return group.encode_numeric(raw), raw


