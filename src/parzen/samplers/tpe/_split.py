"""Splitting trials into the "below" (good) and "above" (the rest) groups, and their weights.

The good group is the best ``n_below`` completed trials (Bergstra et al., 2011). Pending
trials have no loss; passed as ``pending``, they go to the above group: the constant liar with
the *worst* loss (Ginsbourger et al., 2010; ``_pending.py`` chooses between this and
believing the surrogate). That lowers the density ratio around points already handed out, so
parallel workers (and the members of one batch) spread out instead of piling onto the
incumbent.
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


def split(losses: FloatArray, pending: BoolArray, k_below: int, forgetting: int,
          pending_weight: float = 1.0) -> Split:
    """Rank completed rows by loss (ties: earlier first) and put pending rows above.

    Rows that failed (no loss, not pending) are ignored, as hyperopt does.
    """
    done = np.flatnonzero(np.isfinite(losses))
    k = min(k_below, done.shape[0])
    if k < done.shape[0]:
        # O(n) selection; ties at the boundary go to the earlier row (lexsort on loss, row).
        part = done[np.argpartition(losses[done], k - 1)[:k]] if k else done[:0]
        cut = losses[part].max() if k else -np.inf
        cand = done[losses[done] <= cut]
        below = np.sort(cand[np.lexsort((cand, losses[cand]))][:k])
    else:
        below = done
    is_below = np.zeros(losses.shape[0], dtype=bool)
    is_below[below] = True
    above = np.flatnonzero((np.isfinite(losses) | pending) & ~is_below)
    w_above = recency_weights(above, forgetting)
    w_above[~np.isfinite(losses[above])] *= pending_weight
    w_below = improvement_weights(losses[below], losses[above])
    return Split(below, above, w_below, w_above)


def recency_weights(rows: IntArray, forgetting: int) -> FloatArray:
    """hyperopt's linear forgetting: the ``forgetting`` most recent rows weigh 1, older rows
    ramp down linearly towards ``1/len(rows)``. Row order is submission order."""
    m = rows.shape[0]
    if forgetting <= 0 or m <= forgetting:
        return np.ones(m)
    # rows is sorted, so position in it is recency rank among the group's rows.
    out = np.ones(m)
    steps = m - forgetting
    if steps == 1:
        out[0] = 1.0 / m
    else:
        # np.linspace(1/m, 1, steps) without its Python-level overhead.
        out[:steps] = 1.0 / m + (1.0 - 1.0 / m) / (steps - 1) * np.arange(steps)
    return out


def improvement_weights(below: FloatArray, above: FloatArray) -> FloatArray:
    """Weights of the good trials proportional to how far each beats the split threshold.

    The threshold is the best loss of the bad group, so ``l`` becomes a density of expected
    improvement rather than of mere membership, which measured lower regret and fewer falls
    into poor local basins (``bench/README.md``, "TPE settings"). Mean 1, so the prior's weight
    keeps its meaning.
    """
    done = above[np.isfinite(above)]
    if below.shape[0] < 2 or done.shape[0] == 0:
        return np.ones(below.shape[0])
    gap = done.min() - below
    if not gap.max() > 0:
        return np.ones(below.shape[0])
    w = np.maximum(gap, 1e-3 * gap.max())
    return np.asarray(w / w.mean(), dtype=np.float64)
