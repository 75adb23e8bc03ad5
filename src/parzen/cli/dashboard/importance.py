"""How much each parameter, on its own, tells about the loss: the dashboard's importance bars.

The measure is the bias-adjusted correlation ratio (epsilon squared) of the loss *ranks* on
the parameter's value, grouped:

- a choice (or any parameter with at most ``MAX_GROUPS`` distinct values) is grouped by value;
- a numeric parameter is cut into ``MAX_GROUPS`` groups of equal count by its value (fewer
  when there are few trials: at least ``MIN_PER_GROUP`` trials per group).

With ``n`` trials in ``k`` groups, ``SSB`` and ``SSW`` the between- and within-group sums of
squares of the ranks and ``MSW = SSW / (n - k)``::

    importance = max(0, (SSB - (k - 1) * MSW) / (SST + MSW))

It is the share of the variance of the loss ranking that knowing the parameter's group
explains, minus what ``k`` groups explain by chance: about 0 for a parameter without visible
effect, 1 for one that orders the trials alone. Ranks make it blind to the loss's scale and
outliers, and groups catch effects that are not monotonic (an optimum inside the range).
Only trials that finished with a finite loss and in which the parameter is active count, so a
conditional parameter is judged on the trials that used it.

It looks at one parameter at a time: an effect that shows only in combination with another
parameter is not credited (optuna's default, fANOVA on a random forest, credits pairs, at the
cost of fitting a forest; this stays a few milliseconds for 20,000 trials).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_GROUPS = 10
MIN_PER_GROUP = 5


@dataclass(frozen=True)
class Importance:
    """One parameter's importance.

    Attributes:
        label: the parameter.
        score: see the module docstring; None when fewer than two groups of
            ``MIN_PER_GROUP`` trials could be formed.
        trials: how many trials were used (finished with a finite loss, parameter active).
        groups: how many groups the trials were cut into.
    """

    label: str
    score: float | None
    trials: int
    groups: int


def importances(losses: Sequence[float], params: Sequence[Mapping[str, Any]],
                labels: Sequence[str], choices: frozenset[str] = frozenset()
                ) -> list[Importance]:
    """The importance of each of ``labels``, highest first (unscored ones last).

    Args:
        losses: one finite loss per trial.
        params: each trial's ``{label: raw value}`` (a choice's value is its index).
        labels: the parameters to score.
        choices: labels that are choices (grouped by value whatever their count).
    """
    loss = np.asarray(losses, dtype=float)
    out = []
    for label in labels:
        values = np.array([v if type(v := p.get(label)) is float else _number(v)
                           for p in params], dtype=float)
        active = np.isfinite(values)  # NaN: inactive, or not a number
        out.append(_score(label, values[active], loss[active], label in choices))
    return sorted(out, key=lambda i: (i.score is None, -(i.score or 0.0), i.label))


def _score(label: str, values: np.ndarray[Any, Any], losses: np.ndarray[Any, Any],
           choice: bool) -> Importance:
    n = len(values)
    if n < 2 * MIN_PER_GROUP:
        return Importance(label, None, n, 0)
    ranks = _ranks(losses)
    distinct, codes = np.unique(values, return_inverse=True)
    if not choice and len(distinct) > MAX_GROUPS:
        k = min(MAX_GROUPS, n // MIN_PER_GROUP)
        # Equal-count groups by the value's rank; ties share a group (averaged ranks).
        codes = np.minimum((_ranks(values) - 1) * k // n, k - 1).astype(int)
    sizes = np.bincount(codes)
    keep = sizes[codes] >= MIN_PER_GROUP  # a group of two says nothing: leave it out
    ranks, codes = ranks[keep], codes[keep]
    sizes = np.bincount(codes)
    k = int(np.count_nonzero(sizes))
    n = len(ranks)
    if k < 2 or n <= k:
        return Importance(label, None, n, k)
    means = np.bincount(codes, weights=ranks)[sizes > 0] / sizes[sizes > 0]
    grand = float(ranks.mean())
    sst = float(((ranks - grand) ** 2).sum())
    ssb = float((sizes[sizes > 0] * (means - grand) ** 2).sum())
    msw = (sst - ssb) / (n - k)
    if sst <= 0:
        return Importance(label, 0.0, n, k)
    score = (ssb - (k - 1) * msw) / (sst + msw)
    return Importance(label, float(min(1.0, max(0.0, score))), n, k)


def _number(x: Any) -> float:
    """``x`` as a float when it is a number (NaN otherwise: a label, a list, a bool, None)."""
    if isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool):
        return float(x)
    return math.nan


def _ranks(x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """1-based ranks of ``x``, ties sharing their average rank (numpy only: scipy's import
    would cost the ``parzen`` command its start-up time)."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - counts + 1 + ends) / 2.0)[inverse]
