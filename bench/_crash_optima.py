"""The crash problems' best feasible values, recomputed numerically (``failures.py
--check-optima``), to confirm the constants stated in ``_crash_problems.py``.

Dev venv only (scipy). Branin: a dense grid over the feasible box, then L-BFGS-B from its
best cells. Hartmann-6: SLSQP with the cliff as a constraint from the stated argmin and 300
random feasible starts (a dense grid is out of reach in 6-D). The model-like problem: every
(activation, width, depth) that fits in memory, with the learning rate on a dense grid up to
the divergence limit, then refined by a bounded scalar search.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from _crash_problems import (
    BRANIN_CLIFF_X1,
    CRASH_PROBLEMS,
    HARTMANN_CLIFF_SUM,
    MODEL_MAX_UNITS,
    model_lr_max,
    model_u,
    model_value,
)
from problems import branin, hartmann6
from scipy.optimize import minimize, minimize_scalar


def branin_cliff() -> tuple[float, dict[str, Any]]:
    x1 = np.linspace(-5.0, BRANIN_CLIFF_X1, 1451)
    x2 = np.linspace(0.0, 15.0, 1501)
    g1, g2 = np.meshgrid(x1, x2, indexing="ij")
    b, c, t = 5.1 / (4.0 * math.pi**2), 5.0 / math.pi, 1.0 / (8.0 * math.pi)
    grid = (g2 - b * g1**2 + c * g1 - 6.0) ** 2 + 10.0 * (1.0 - t) * np.cos(g1) + 10.0
    best = (math.inf, {})
    for flat in np.argsort(grid, axis=None)[:20]:
        i, j = np.unravel_index(flat, grid.shape)
        res = minimize(lambda v: branin({"x1": v[0], "x2": v[1]}), [x1[i], x2[j]],
                       method="L-BFGS-B", bounds=[(-5.0, BRANIN_CLIFF_X1), (0.0, 15.0)],
                       options={"ftol": 1e-15, "gtol": 1e-12})
        if res.fun < best[0]:
            best = (float(res.fun), {"x1": float(res.x[0]), "x2": float(res.x[1])})
    return best


def hartmann6_cliff() -> tuple[float, dict[str, Any]]:
    def f(v: np.ndarray) -> float:
        return hartmann6({f"x{i}": v[i] for i in range(6)})

    rng = np.random.default_rng(0)
    stated = CRASH_PROBLEMS["hartmann6_cliff"].feasible_argmin
    starts = [np.array([stated[f"x{i}"] for i in range(6)])]
    while len(starts) < 301:
        v = rng.uniform(0.0, 1.0, 6)
        if v[0] + v[1] >= HARTMANN_CLIFF_SUM:
            starts.append(v)
    cons = [{"type": "ineq", "fun": lambda v: v[0] + v[1] - HARTMANN_CLIFF_SUM}]
    best = (math.inf, {})
    for v0 in starts:
        res = minimize(f, v0, method="SLSQP", bounds=[(0.0, 1.0)] * 6, constraints=cons,
                       options={"ftol": 1e-14, "maxiter": 500})
        if res.success and res.x[0] + res.x[1] >= HARTMANN_CLIFF_SUM - 1e-12 \
                and res.fun < best[0]:
            best = (float(res.fun), {f"x{i}": float(res.x[i]) for i in range(6)})
    return best


def model_oom() -> tuple[float, dict[str, Any]]:
    best: tuple[float, dict[str, Any]] = (math.inf, {})
    for act in ("relu", "tanh", "gelu"):
        for width in range(32, 1025, 32):
            for depth in range(1, 13):
                if width * depth > MODEL_MAX_UNITS:
                    continue
                u_max = model_u(model_lr_max(depth))

                def f(u: float, width: int = width, depth: int = depth, act: str = act
                      ) -> float:
                    return model_value({"lr": 10.0 ** (5.0 * u - 5.0), "width": width,
                                        "depth": depth, "activation": act})

                us = np.linspace(0.0, u_max, 2001)
                u0 = float(us[int(np.argmin([f(u) for u in us]))])
                step = float(us[1] - us[0])
                res = minimize_scalar(f, bounds=(max(0.0, u0 - step), min(u_max, u0 + step)),
                                      method="bounded", options={"xatol": 1e-12})
                # The edge itself is feasible (the crash is lr > lr_max): try it exactly.
                cands = [(float(res.fun), 10.0 ** (5.0 * float(res.x) - 5.0)),
                         (model_value({"lr": model_lr_max(depth), "width": width,
                                       "depth": depth, "activation": act}),
                          model_lr_max(depth))]
                value, lr = min(cands)
                if value < best[0]:
                    best = (value, {"lr": lr, "width": width, "depth": depth,
                                    "activation": act})
    return best


SOLVERS: dict[str, Callable[[], tuple[float, dict[str, Any]]]] = {
    "branin_cliff": branin_cliff,
    "hartmann6_cliff": hartmann6_cliff,
    "model_oom": model_oom,
}
