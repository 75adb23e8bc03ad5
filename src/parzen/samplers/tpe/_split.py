"""Splitting trials into the "below" (good) and "above" (the rest) groups, and their weights.

Pending trials have no loss. They go to the above group: the constant liar with the *worst*
loss. That lowers the density ratio around points already handed out, so parallel workers
(and the members of one batch) spread out instead of piling onto the incumbent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]


def n_below(n_completed: int, fraction: float, cap: int, hyperopt_gamma: float | None) -> int:
    """How many of ``n_completed`` finished trials count as good.

    ``hyperopt_gamma`` reproduces hyperopt's rule ``ceil(gamma * sqrt(n))``; otherwise the
    linear rule ``min(ceil(fraction * n), cap)``. At least one trial is always below.
    """
    if n_completed <= 0:
        return 0
    if hyperopt_gamma is not None:
        k = math.ceil(hyperopt_gamma * math.sqrt(n_completed))
    else:
        k = min(math.ceil(fraction * n_completed), cap)
    return max(1, min(k, n_completed))


@dataclass(frozen=True)
class Split:
    """Row indices of each group and their kernel weights (before the prior is added)."""

    below: IntArray
    above: IntArray
    w_below: FloatArray
    w_above: FloatArray


def split(losses: FloatArray, pending: BoolArray, k_below: int, forgetting: int) -> Split:
    """Rank completed rows by loss (ties: earlier first) and put pending rows above.

    Rows that failed (no loss, not pending) are ignored, as hyperopt does.
    """
    done = np.flatnonzero(np.isfinite(losses))
    order = done[np.argsort(losses[done], kind="stable")]
    below = np.sort(order[:k_below])
    above = np.sort(np.concatenate([order[k_below:], np.flatnonzero(pending
                                                                    & ~np.isfinite(losses))]))
    return Split(below, above, np.ones(below.shape[0]),
                 recency_weights(above, losses.shape[0], forgetting))


def recency_weights(rows: IntArray, n_rows: int, forgetting: int) -> FloatArray:
    """hyperopt's linear forgetting: the ``forgetting`` most recent rows weigh 1, older rows
    ramp down linearly towards ``1/len(rows)``. Row order is submission order."""
    m = rows.shape[0]
    if forgetting <= 0 or m <= forgetting:
        return np.ones(m)
    # rows is sorted, so position in it is recency rank among the group's rows.
    ramp = np.linspace(1.0 / m, 1.0, num=m - forgetting)
    return np.concatenate([ramp, np.ones(forgetting)])
