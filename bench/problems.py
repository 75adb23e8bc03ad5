"""Benchmark problems for the parzen quality harness.

Each problem declares its search space once, in a library-neutral form
(a tuple of :class:`Param`), and the runners translate that into hyperopt /
parzen ``hp.*`` expressions or optuna ``trial.suggest_*`` calls.  Objectives
take a dict of *native* values (floats, ints, category labels) so that every
library evaluates exactly the same function.

This module must import with nothing but numpy: it is loaded both in the
parzen dev venv and in the separate anchor venv.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Param",
    "Problem",
    "PROBLEMS",
    "get_problem",
    "normalise_point",
    "near_duplicate_fraction",
    "build_hp_space",
    "suggest_optuna",
    "native_point",
]


@dataclass(frozen=True)
class Param:
    """One search dimension.

    kind is one of ``uniform``, ``loguniform``, ``quniform`` (integer-valued
    grid ``low, low+q, ..., high``) or ``choice``.  Bounds are always given in
    linear units; runners convert to log bounds where a library wants them.
    """

    name: str
    kind: str
    low: float = 0.0
    high: float = 1.0
    q: float = 1.0
    options: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in ("uniform", "loguniform", "quniform", "choice"):
            raise ValueError(f"unknown param kind {self.kind!r}")
        if self.kind == "choice" and len(self.options) < 2:
            raise ValueError("choice needs at least two options")
        if self.kind == "loguniform" and self.low <= 0:
            raise ValueError("loguniform needs a positive lower bound")


@dataclass(frozen=True)
class Problem:
    """A benchmark problem: neutral space, objective and known optimum."""

    name: str
    params: tuple[Param, ...]
    objective: Callable[[Mapping[str, Any]], float]
    optimum: float
    description: str
    argmin: Mapping[str, Any] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """Short hash of the space, the optimum and objective values at probe points.

        Used as part of the anchor-cache key so that changing a problem
        invalidates cached anchor runs instead of silently reusing them.
        Hashing values (not source text) keeps the key stable under
        reformatting while still catching any change to the function.
        """
        rng = np.random.default_rng(20240601)
        probes = [dict(self.argmin)] + [random_point(self.params, rng) for _ in range(32)]
        values = [f"{self.objective(pt):.12g}" for pt in probes]
        blob = repr((self.params, self.optimum, values))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def random_point(params: Sequence[Param], rng: np.random.Generator) -> dict[str, Any]:
    """A point drawn as hyperopt's ``hp`` draws it (quniform: round(uniform / q) * q)."""
    pt: dict[str, Any] = {}
    for p in params:
        if p.kind == "choice":
            pt[p.name] = p.options[int(rng.integers(len(p.options)))]
        elif p.kind == "loguniform":
            pt[p.name] = float(np.exp(rng.uniform(math.log(p.low), math.log(p.high))))
        elif p.kind == "quniform":
            pt[p.name] = int(round(float(rng.uniform(p.low, p.high)) / p.q) * p.q)
        else:
            pt[p.name] = float(rng.uniform(p.low, p.high))
    return pt


def _box(prefix: str, dim: int, low: float, high: float) -> tuple[Param, ...]:
    return tuple(Param(f"{prefix}{i}", "uniform", low, high) for i in range(dim))


def _vec(point: Mapping[str, Any], prefix: str, dim: int) -> np.ndarray:
    return np.array([float(point[f"{prefix}{i}"]) for i in range(dim)])


# --------------------------------------------------------------------------
# Classic continuous test functions
# --------------------------------------------------------------------------


def branin(point: Mapping[str, Any]) -> float:
    """Branin-Hoo with the standard constants; three global minima."""
    x1, x2 = float(point["x1"]), float(point["x2"])
    b = 5.1 / (4.0 * math.pi**2)
    c = 5.0 / math.pi
    t = 1.0 / (8.0 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6.0) ** 2 + 10.0 * (1.0 - t) * math.cos(x1) + 10.0


# Hartmann-6 constants as published by Dixon & Szegő (1978).
_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H6_A = np.array(
    [
        [10.0, 3.0, 17.0, 3.5, 1.7, 8.0],
        [0.05, 10.0, 17.0, 0.1, 8.0, 14.0],
        [3.0, 3.5, 1.7, 10.0, 17.0, 8.0],
        [17.0, 8.0, 0.05, 10.0, 0.1, 14.0],
    ]
)
_H6_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)


def hartmann6(point: Mapping[str, Any]) -> float:
    """Hartmann-6 on the unit hypercube (negative, minimum about -3.32237)."""
    x = _vec(point, "x", 6)
    inner = np.sum(_H6_A * (x[None, :] - _H6_P) ** 2, axis=1)
    return float(-np.sum(_H6_ALPHA * np.exp(-inner)))


def rosenbrock5(point: Mapping[str, Any]) -> float:
    """Rosenbrock valley in 5-D; minimum 0 at (1, ..., 1)."""
    x = _vec(point, "x", 5)
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def ackley5(point: Mapping[str, Any]) -> float:
    """Ackley (a=20, b=0.2, c=2*pi) in 5-D; minimum 0 at the origin."""
    x = _vec(point, "x", 5)
    a, b, c = 20.0, 0.2, 2.0 * math.pi
    term1 = -a * math.exp(-b * math.sqrt(float(np.mean(x**2))))
    term2 = -math.exp(float(np.mean(np.cos(c * x))))
    # max(.., 0): a + e - a - e can round to -4e-16 at the optimum.
    return max(term1 + term2 + a + math.e, 0.0)


def levy5(point: Mapping[str, Any]) -> float:
    """Levy function in 5-D; minimum 0 at (1, ..., 1)."""
    x = _vec(point, "x", 5)
    w = 1.0 + (x - 1.0) / 4.0
    head = math.sin(math.pi * w[0]) ** 2
    mid = np.sum((w[:-1] - 1.0) ** 2 * (1.0 + 10.0 * np.sin(math.pi * w[:-1] + 1.0) ** 2))
    tail = (w[-1] - 1.0) ** 2 * (1.0 + math.sin(2.0 * math.pi * w[-1]) ** 2)
    return float(head + mid + tail)


# --------------------------------------------------------------------------
# Synthetic random-forest-like mixed space
# --------------------------------------------------------------------------

# Per-criterion additive penalty and the criterion-dependent optimum of the
# leaf-size coordinate.  Making the optimum move with the category means a
# sampler cannot learn the continuous part independently of the categorical.
_RF_CRIT_OFFSET = {"gini": 0.02, "entropy": 0.0, "log_loss": 0.04}
_RF_LEAF_OPT = {"gini": 0.40, "entropy": 0.50, "log_loss": 0.60}
# Interior optimum of the other coordinates (in [0, 1] normalised units).
_RF_TREES_OPT = (120 - 10) / (200 - 10)  # n_estimators = 120, on the q=10 grid
_RF_CCP_OPT = 0.375  # ccp_alpha = 10 ** (-5 + 4 * 0.375) = 10 ** -3.5
_RF_FEAT_OPT = 0.5  # max_features = 0.55
_RF_FLOOR = 0.05  # best achievable "validation error"


def rf_mixed(point: Mapping[str, Any]) -> float:
    """Smooth stand-in for a random-forest validation error.

    error = 0.05 + offset[criterion] + 0.35 * (1 - exp(-Q)) where Q is a
    positive-definite quadratic form in normalised coordinates (log10 scale
    for the two log parameters).  Q = 0 at an interior point, so the optimum
    is exactly 0.05 (criterion="entropy", n_estimators=120,
    min_samples_leaf=1e-2, ccp_alpha=10**-3.5, max_features=0.55).
    The saturating 1 - exp(-Q) keeps the surface bounded like a real error
    rate, with flat plateaus far from the optimum.
    """
    crit = str(point["criterion"])
    # Objectives may receive 120.0 (hp.quniform) or 120 (optuna suggest_int).
    trees = int(round(float(point["n_estimators"])))
    t = (trees - 10) / (200 - 10)
    u = (math.log10(float(point["min_samples_leaf"])) + 4.0) / 4.0  # [1e-4, 1]
    v = (math.log10(float(point["ccp_alpha"])) + 5.0) / 4.0  # [1e-5, 1e-1]
    m = (float(point["max_features"]) - 0.1) / 0.9  # [0.1, 1.0]
    du = u - _RF_LEAF_OPT[crit]
    dv = v - _RF_CCP_OPT
    # [[6, 1.5], [1.5, 5]] is positive definite, so the (u, v) coupling keeps
    # a unique minimum while making the problem non-separable.
    quad = (
        4.0 * (t - _RF_TREES_OPT) ** 2
        + 6.0 * du**2
        + 5.0 * dv**2
        + 3.0 * du * dv
        + 3.0 * (m - _RF_FEAT_OPT) ** 2
    )
    return _RF_FLOOR + _RF_CRIT_OFFSET[crit] + 0.35 * (1.0 - math.exp(-quad))


PROBLEMS: dict[str, Problem] = {
    p.name: p
    for p in (
        Problem(
            "branin",
            (Param("x1", "uniform", -5.0, 10.0), Param("x2", "uniform", 0.0, 15.0)),
            branin,
            0.39788735772973816,
            "Branin, x1 in [-5, 10], x2 in [0, 15]",
            {"x1": math.pi, "x2": 2.275},
        ),
        Problem(
            "hartmann6",
            _box("x", 6, 0.0, 1.0),
            hartmann6,
            -3.3223680114155147,
            "Hartmann-6 on [0, 1]^6",
            {
                f"x{i}": v
                for i, v in enumerate((0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573))
            },
        ),
        Problem(
            "rosenbrock5",
            _box("x", 5, -5.0, 10.0),
            rosenbrock5,
            0.0,
            "Rosenbrock on [-5, 10]^5",
            {f"x{i}": 1.0 for i in range(5)},
        ),
        Problem(
            "ackley5",
            _box("x", 5, -32.768, 32.768),
            ackley5,
            0.0,
            "Ackley (a=20, b=0.2, c=2pi) on [-32.768, 32.768]^5",
            {f"x{i}": 0.0 for i in range(5)},
        ),
        Problem(
            "levy5",
            _box("x", 5, -10.0, 10.0),
            levy5,
            0.0,
            "Levy on [-10, 10]^5",
            {f"x{i}": 1.0 for i in range(5)},
        ),
        Problem(
            "rf_mixed",
            (
                Param("criterion", "choice", options=("gini", "entropy", "log_loss")),
                Param("n_estimators", "quniform", 10, 200, q=10),
                Param("min_samples_leaf", "loguniform", 1e-4, 1.0),
                Param("ccp_alpha", "loguniform", 1e-5, 1e-1),
                Param("max_features", "uniform", 0.1, 1.0),
            ),
            rf_mixed,
            _RF_FLOOR,
            "synthetic RF tuning: choice(3), quniform int 10..200 step 10, "
            "2 loguniform, 1 uniform; optimum 0.05",
            {
                "criterion": "entropy",
                "n_estimators": 120,
                "min_samples_leaf": 1e-2,
                "ccp_alpha": 10**-3.5,
                "max_features": 0.55,
            },
        ),
    )
}


def get_problem(name: str) -> Problem:
    try:
        return PROBLEMS[name]
    except KeyError:
        raise SystemExit(f"unknown problem {name!r}; choose from {sorted(PROBLEMS)}") from None


# --------------------------------------------------------------------------
# Translating the neutral space
# --------------------------------------------------------------------------


def build_hp_space(hp: Any, params: Sequence[Param]) -> dict[str, Any]:
    """hyperopt-style space (works for hyperopt and parzen, same ``hp`` API).

    quniform is left as a float expression (no ``scope.int``) so the space
    uses only the core ``hp`` functions; objectives round it themselves.
    """
    space: dict[str, Any] = {}
    for p in params:
        if p.kind == "uniform":
            space[p.name] = hp.uniform(p.name, p.low, p.high)
        elif p.kind == "loguniform":
            space[p.name] = hp.loguniform(p.name, math.log(p.low), math.log(p.high))
        elif p.kind == "quniform":
            space[p.name] = hp.quniform(p.name, p.low, p.high, p.q)
        else:
            space[p.name] = hp.choice(p.name, list(p.options))
    return space


def suggest_optuna(trial: Any, params: Sequence[Param]) -> dict[str, Any]:
    """Ask an optuna trial for every parameter of the neutral space."""
    out: dict[str, Any] = {}
    for p in params:
        if p.kind == "uniform":
            out[p.name] = trial.suggest_float(p.name, p.low, p.high)
        elif p.kind == "loguniform":
            out[p.name] = trial.suggest_float(p.name, p.low, p.high, log=True)
        elif p.kind == "quniform":
            out[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high), step=int(p.q))
        else:
            out[p.name] = trial.suggest_categorical(p.name, list(p.options))
    return out


def native_point(params: Sequence[Param], point: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-friendly copy of a point (numpy scalars -> Python scalars)."""
    out: dict[str, Any] = {}
    for p in params:
        v = point[p.name]
        if p.kind == "choice":
            out[p.name] = v.item() if isinstance(v, np.generic) else v
        elif p.kind == "quniform":
            out[p.name] = int(round(float(v)))
        else:
            out[p.name] = float(v)
    return out


def normalise_point(
    params: Sequence[Param], point: Mapping[str, Any]
) -> tuple[np.ndarray, list[Any]]:
    """Numeric dims mapped to [0, 1] (log scale for log params) + categorical labels."""
    num: list[float] = []
    cat: list[Any] = []
    for p in params:
        v = point[p.name]
        if p.kind == "choice":
            cat.append(v)
        elif p.kind == "loguniform":
            num.append(
                (math.log(float(v)) - math.log(p.low)) / (math.log(p.high) - math.log(p.low))
            )
        else:
            num.append((float(v) - p.low) / (p.high - p.low))
    return np.array(num), cat


NEAR_DUP_THRESHOLD = 0.01


def point_distance(params: Sequence[Param], a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    """Euclidean distance / sqrt(d) in the normalised space.

    Numeric dims contribute their [0, 1]-scaled difference, a categorical
    contributes 0 if equal and 1 otherwise; dividing by sqrt(d) keeps the
    result in [0, 1] whatever the dimension.
    """
    na, ca = normalise_point(params, a)
    nb, cb = normalise_point(params, b)
    mismatches = sum(0.0 if x == y else 1.0 for x, y in zip(ca, cb, strict=True))
    sq = float(np.sum((na - nb) ** 2)) + mismatches
    return math.sqrt(sq / len(params))


def near_duplicate_fraction(
    params: Sequence[Param], points: Sequence[Mapping[str, Any]], batch: int
) -> float | None:
    """Mean over batches of the fraction of within-batch pairs closer than 0.01.

    Batches are consecutive groups of ``batch`` evaluated points; a trailing
    partial batch with fewer than two points has no pairs and is skipped.
    Returns None when there is no batch with a pair (e.g. batch == 1).
    """
    fracs: list[float] = []
    for start in range(0, len(points), batch):
        group = points[start : start + batch]
        n_pairs = len(group) * (len(group) - 1) // 2
        if n_pairs == 0:
            continue
        close = sum(
            1
            for i in range(len(group))
            for j in range(i + 1, len(group))
            if point_distance(params, group[i], group[j]) < NEAR_DUP_THRESHOLD
        )
        fracs.append(close / n_pairs)
    return float(np.mean(fracs)) if fracs else None


def _self_check() -> None:
    """Each stated argmin must reach the stated optimum (run: python bench/problems.py)."""
    for prob in PROBLEMS.values():
        val = prob.objective(prob.argmin)
        tol = 1e-4 if prob.name in ("branin", "hartmann6") else 1e-9
        status = "ok" if abs(val - prob.optimum) < tol else "MISMATCH"
        print(f"{prob.name:12s} f(argmin)={val:.8f} optimum={prob.optimum:.8f} {status}")
        if status != "ok":
            raise SystemExit(1)


if __name__ == "__main__":
    _self_check()
