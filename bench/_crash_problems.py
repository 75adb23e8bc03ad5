"""Problems with a crash region next to the optimum, for ``failures.py``.

Each problem is an ordinary benchmark function plus a region where the objective *raises*,
as a real one does when a learning rate diverges or a model does not fit in memory. The
region sits next to (or over) the optimum, so a sampler that homes in on the good region and
ignores failures keeps proposing points that crash.

The regret of a run is measured against the best *feasible* value (``feasible_optimum``): the
lowest loss outside the crash region, computed numerically once (``failures.py
--check-optima`` recomputes it) and stated here.

Like ``problems.py``, this module imports nothing but numpy and ``problems``: it is loaded
both in the parzen dev venv and in the anchor venv.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from problems import Param, branin, hartmann6, random_point


class Crash(RuntimeError):
    """The objective failed at this point: it lies in the problem's crash region."""


class Diverged(Crash):
    """The training run diverged (NaN loss): the learning rate is too large for the depth."""


class OutOfMemory(Crash):
    """The model does not fit in memory: width x depth is too large."""


@dataclass(frozen=True)
class CrashProblem:
    """A problem whose objective raises in part of the space.

    Attributes:
        name: the key in ``CRASH_PROBLEMS``.
        params: the neutral search space (``problems.Param``).
        value: the loss as a function of a native point, defined everywhere (the crash
            region included: it is where the loss would be if the run did not crash).
        crash: the exception the objective raises at a point, or None when it runs.
        feasible_optimum: the lowest ``value`` outside the crash region (the regret's zero).
        feasible_argmin: a point reaching it.
        crash_volume: the share of the prior (hyperopt's ``hp`` sampling of ``params``) that
            crashes; random search crashes about this often.
        description: one line for the table.
    """

    name: str
    params: tuple[Param, ...]
    value: Callable[[Mapping[str, Any]], float]
    crash: Callable[[Mapping[str, Any]], Crash | None]
    feasible_optimum: float
    feasible_argmin: Mapping[str, Any]
    crash_volume: float
    description: str

    def objective(self, point: Mapping[str, Any]) -> float:
        """The loss at ``point``; raises the crash region's exception there."""
        exc = self.crash(point)
        if exc is not None:
            raise exc
        return self.value(point)

    def fingerprint(self) -> str:
        """Short hash of the space, the stated optimum and the objective at probe points
        (crash or value), so a changed problem invalidates cached anchor runs."""
        rng = np.random.default_rng(20240607)
        probes = [dict(self.feasible_argmin)] + [random_point(self.params, rng)
                                                for _ in range(64)]
        seen = []
        for pt in probes:
            exc = self.crash(pt)
            seen.append(type(exc).__name__ if exc is not None else f"{self.value(pt):.12g}")
        blob = repr((self.params, self.feasible_optimum, seen))
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


# --------------------------------------------------------------------------
# Branin with a cliff at x1 = 9.5
# --------------------------------------------------------------------------

BRANIN_CLIFF_X1 = 9.5


def branin_crash(point: Mapping[str, Any]) -> Crash | None:
    """Branin crashes for x1 > 9.5: 3.3 % of the box, right of the optimum at x1 = 9.42."""
    x1 = float(point["x1"])
    if x1 > BRANIN_CLIFF_X1:
        return Crash(f"x1={x1:.6g} > {BRANIN_CLIFF_X1}: the simulation diverged")
    return None


# --------------------------------------------------------------------------
# Hartmann-6 with a half-space cliff next to the optimum
# --------------------------------------------------------------------------

# The global optimum is at x0 + x1 = 0.20169 + 0.150011 = 0.3517; the cliff x0 + x1 < 0.33
# leaves it feasible at a distance of 0.0217 in x0 + x1 (0.0153 in Euclidean distance), and
# cuts off the part of its basin towards the origin. The region is the corner triangle
# 0.33^2 / 2 = 5.4 % of the cube, and is not aligned with any axis, so a sampler that models
# each coordinate on its own cannot cut it off with one bound.
HARTMANN_CLIFF_SUM = 0.33


def hartmann6_crash(point: Mapping[str, Any]) -> Crash | None:
    s = float(point["x0"]) + float(point["x1"])
    if s < HARTMANN_CLIFF_SUM:
        return Crash(f"x0 + x1 = {s:.6g} < {HARTMANN_CLIFF_SUM}: the simulation diverged")
    return None


# --------------------------------------------------------------------------
# A model-like mixed space: learning rate, width, depth, activation
# --------------------------------------------------------------------------

# OOM above this many units (width x depth).
MODEL_MAX_UNITS = 6144
# The largest learning rate that trains at a depth: log10(lr_max) = -0.7 - 0.06 * depth
# (deeper networks diverge at smaller rates): 0.17 at depth 1, 0.038 at depth 12.
MODEL_LR_CLIFF = (-0.7, 0.06)
# The best learning rate per activation, as u = (log10(lr) + 5) / 5 in [0, 1]; and the loss
# added by the activation. gelu at u = 0.84 (lr = 0.145) is the unconstrained optimum, beyond
# every depth's divergence limit.
_MODEL_U_OPT = {"relu": 0.82, "tanh": 0.74, "gelu": 0.84}
_MODEL_ACT_OFFSET = {"relu": 0.01, "tanh": 0.03, "gelu": 0.0}
_MODEL_DEPTH_OPT = (8 - 1) / 11  # depth 8
_MODEL_FLOOR = 0.10


def model_u(lr: float) -> float:
    """The learning rate on [0, 1]: log10(lr) mapped from [-5, 0]."""
    return (math.log10(lr) + 5.0) / 5.0


def model_lr_max(depth: int) -> float:
    a, b = MODEL_LR_CLIFF
    return float(10.0 ** (a - b * depth))


def model_value(point: Mapping[str, Any]) -> float:
    """A smooth stand-in for a validation loss.

    loss = 0.10 + offset[activation] + 0.6 * (1 - exp(-Q)), Q a positive-definite quadratic
    form in u (the log learning rate on [0, 1]), log2 width and depth on [0, 1], with the
    learning rate and depth coupled (the best rate moves with the depth). Its minimum, 0.10
    (gelu, lr 0.145, width 1024, depth 8), is in the crash region on both counts: the rate
    diverges at depth 8 and 1024 x 8 units do not fit.
    """
    act = str(point["activation"])
    u = model_u(float(point["lr"]))
    w = (math.log2(float(point["width"])) - 5.0) / 5.0  # 32 .. 1024
    d = (float(point["depth"]) - 1.0) / 11.0  # 1 .. 12
    du = u - _MODEL_U_OPT[act]
    dd = d - _MODEL_DEPTH_OPT
    # [[6, 1], [1, 2]] is positive definite: one minimum, not separable in (u, depth).
    quad = 6.0 * du * du + 2.0 * du * dd + 2.0 * dd * dd + 3.0 * (w - 1.0) ** 2
    return _MODEL_FLOOR + _MODEL_ACT_OFFSET[act] + 0.6 * (1.0 - math.exp(-quad))


def model_crash(point: Mapping[str, Any]) -> Crash | None:
    # Objectives may receive 512.0 (hp.quniform) or 512 (optuna suggest_int).
    width, depth = int(round(float(point["width"]))), int(round(float(point["depth"])))
    if width * depth > MODEL_MAX_UNITS:
        return OutOfMemory(f"width {width} x depth {depth} = {width * depth} units > "
                           f"{MODEL_MAX_UNITS}: CUDA out of memory")
    lr = float(point["lr"])
    if lr > model_lr_max(depth):
        return Diverged(f"lr={lr:.4g} > {model_lr_max(depth):.4g} at depth {depth}: "
                        "the training loss is NaN")
    return None


CRASH_PROBLEMS: dict[str, CrashProblem] = {
    p.name: p
    for p in (
        CrashProblem(
            "branin_cliff",
            (Param("x1", "uniform", -5.0, 10.0), Param("x2", "uniform", 0.0, 15.0)),
            branin,
            branin_crash,
            # Branin's global minimum; two of its three minimisers (x1 = pi, 9.42) are
            # feasible.
            0.39788735772973816,
            {"x1": 3 * math.pi, "x2": 2.475},
            0.5 / 15.0,
            "Branin; raises for x1 > 9.5 (3.3 % of the box; optimum at x1 = 9.42 feasible)",
        ),
        CrashProblem(
            "hartmann6_cliff",
            tuple(Param(f"x{i}", "uniform", 0.0, 1.0) for i in range(6)),
            hartmann6,
            hartmann6_crash,
            # Hartmann-6's global minimum, 0.0153 from the cliff.
            -3.3223680114155147,
            {f"x{i}": v for i, v in
             enumerate((0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573))},
            HARTMANN_CLIFF_SUM**2 / 2.0,
            "Hartmann-6; raises for x0 + x1 < 0.33 (5.4 % of the cube; optimum 0.015 away)",
        ),
        CrashProblem(
            "model_oom",
            (
                Param("lr", "loguniform", 1e-5, 1.0),
                Param("width", "quniform", 32, 1024, q=32),
                Param("depth", "quniform", 1, 12, q=1),
                Param("activation", "choice", options=("relu", "tanh", "gelu")),
            ),
            model_value,
            model_crash,
            # At the edge of both crash conditions: the largest rate that trains at depth 8
            # (0.066) and the widest layer that fits 8 of them (768 x 8 = 6144 units).
            # Enumerating every (activation, width, depth) with the best feasible rate gives
            # it (``failures.py --check-optima``).
            0.13229443086829823,
            {"lr": model_lr_max(8), "width": 768, "depth": 8, "activation": "gelu"},
            0.343,
            "model-like: loguniform lr, width 32..1024 step 32, depth 1..12, activation; "
            "raises for width x depth > 6144 (OOM) or lr > 10^(-0.7 - 0.06 depth) "
            "(diverged): 34 % of the prior, holding the unconstrained optimum 0.10",
        ),
    )
}


def get_crash_problem(name: str) -> CrashProblem:
    try:
        return CRASH_PROBLEMS[name]
    except KeyError:
        raise SystemExit(f"unknown crash problem {name!r}; choose from "
                         f"{', '.join(CRASH_PROBLEMS)}") from None
