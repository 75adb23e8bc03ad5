"""Vectorised sampling from the prior of every parameter, and the shared value transforms."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from parzen.space import Choice, Normal, Param, RandInt, Space, Uniform

FloatArray = npt.NDArray[np.float64]


def quantize(x: FloatArray, q: float | None) -> FloatArray:
    """hyperopt's rounding: ``round(x / q) * q``."""
    if q is None:
        return x
    return np.round(x / q) * q


def sample_param(p: Param, n: int, rng: np.random.Generator) -> FloatArray:
    """``n`` draws from ``p``'s prior, as raw trial values (float array)."""
    if isinstance(p, Choice):
        return rng.choice(len(p.options), size=n, p=np.asarray(p.weights)).astype(float)
    if isinstance(p, RandInt):
        return rng.integers(p.low, p.high, size=n).astype(float)
    if isinstance(p, Uniform):
        x = rng.uniform(p.low, p.high, size=n)
    elif isinstance(p, Normal):
        x = rng.normal(p.mu, p.sigma, size=n)
    else:  # pragma: no cover - every Param subclass is handled above
        raise TypeError(f"unknown parameter type {type(p).__name__}")
    if p.log:
        x = np.exp(x)
    return quantize(x, p.q)


def sample_prior(space: Space, n: int, rng: np.random.Generator) -> dict[str, FloatArray]:
    """``n`` draws for every parameter, active or not (``to_points`` drops the inactive)."""
    return {p.label: sample_param(p, n, rng) for p in space.params}


def to_points(space: Space, columns: Mapping[str, FloatArray]) -> list[dict[str, Any]]:
    """Rows of ``columns`` as points holding only the labels active in each row.

    Choices and randints become Python ints, other values Python floats.
    """
    n = len(next(iter(columns.values()))) if columns else 0
    ints = {p.label for p in space.params if isinstance(p, (Choice, RandInt))}
    points: list[dict[str, Any]] = []
    for i in range(n):
        point: dict[str, Any] = {}
        for p in space.params:  # parents first, so activity is decided by earlier entries
            if space.is_active(p.label, point):
                v = float(columns[p.label][i])
                point[p.label] = int(v) if p.label in ints else v
        points.append(point)
    return points
