"""Asynchronous successive halving (ASHA) and Hyperband, as stopping rules.

ASHA: Li, Jamieson, Rostamizadeh, Gonina, Ben-Tzur, Hardt, Recht, Talwalkar (2020), "A System
for Massively Parallel Hyperparameter Tuning", MLSys (arXiv:1810.05934), Algorithm 2.
Hyperband: Li, Jamieson, DeSalvo, Rostamizadeh, Talwalkar (2018), "Hyperband: A Novel
Bandit-Based Approach to Hyperparameter Optimization", JMLR 18(185), Algorithm 1.

Successive halving places rungs at resources ``r * eta**(s + k)`` (``r`` the minimum
resource, ``eta`` the reduction factor, ``s`` the minimum early-stopping rate, ``k = 0, 1,
...``) and lets the top ``1/eta`` of the trials at each rung go on. ASHA makes it
asynchronous: a rung never waits to fill up. The paper's scheduler *promotes* paused trials;
parzen's objectives run on until they report, so the same rule is applied as a *stop*: a trial
reaching rung ``k`` goes on if it is among the best ``ceil(n / eta)`` of the ``n`` trials that
have reached rung ``k`` so far (itself included), and stops otherwise. The first trials at a
rung therefore go on more easily than later ones; the paper bounds what such early
promotions cost (its section 3.2), and the next trial's comparison includes them.

Hyperband hedges over how aggressive to be: it runs successive halving brackets with early
stopping rates ``s = 0 .. s_max`` (``s_max = floor(log_eta(R / r))``), giving bracket
``s`` (in the paper's numbering ``s_max - s``) a share of the trials proportional to the
paper's ``n = ceil((s_max + 1) / (s_max - s + 1) * eta**(s_max - s))``. The bracket of a trial
is a hash of its tid, so every worker agrees without asking anyone; trials compete only
within their bracket.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from parzen import validation
from parzen.exceptions import ConfigError
from parzen.pruners._base import Curve, Pruner, register


def _check(who: str, min_resource: float, reduction_factor: float,
           max_resource: float | None, rate: int) -> None:
    validation.number("min_resource", min_resource, low=0, low_open=True, who=who)
    # Each rung keeps 1/reduction_factor of the trials: 1 or less would keep them all.
    validation.number("reduction_factor", reduction_factor, low=1, low_open=True, who=who)
    if max_resource is not None:
        validation.number("max_resource", max_resource, low=0, low_open=True, who=who)
        if float(min_resource) > float(max_resource):
            raise ConfigError(f"{who}: min_resource={min_resource!r} is above "
                              f"max_resource={max_resource!r}; the first rung must come "
                              "before the last step (lower min_resource)")
    validation.integer("min_early_stopping_rate", rate, 0, who=who)


def _rung(step: float, base: float, eta: float) -> int:
    """The highest rung ``k`` with ``base * eta**k <= step``; -1 before the first."""
    if step < base:
        return -1
    k = int(math.floor(math.log(step / base, eta) + 1e-9))
    while base * eta ** (k + 1) <= step:  # float log off by one
        k += 1
    while k >= 0 and base * eta ** k > step:
        k -= 1
    return k


@register
@dataclass(frozen=True)
class AshaPruner(Pruner):
    """Asynchronous successive halving: at each rung, only the best ``1/eta`` go on.

    Args:
        min_resource: the step of the first rung (``r``).
        reduction_factor: ``eta`` > 1: rungs are ``eta`` times apart and keep ``1/eta``.
        max_resource: the step at which a trial is complete (``R``): no rung at or past it.
            None: rungs go on for as long as trials report.
        min_early_stopping_rate: ``s``: the first rung is at ``r * eta**s``.
    """

    min_resource: float = 1
    reduction_factor: float = 3
    max_resource: float | None = None
    min_early_stopping_rate: int = 0
    kind: ClassVar[str] = "asha"

    def __post_init__(self) -> None:
        _check("AshaPruner", self.min_resource, self.reduction_factor, self.max_resource,
               self.min_early_stopping_rate)
        if self.max_resource is not None and self._base >= float(self.max_resource):
            # No rung before the last step: a pruner that can never stop a trial.
            raise ConfigError(
                f"AshaPruner: the first rung, min_resource * reduction_factor ** "
                f"min_early_stopping_rate = {self.min_resource!r} * "
                f"{self.reduction_factor!r} ** {self.min_early_stopping_rate!r} = "
                f"{self._base:g}, is not before max_resource={self.max_resource!r}, so no "
                "trial could ever be pruned; lower min_early_stopping_rate or min_resource")

    @property
    def _base(self) -> float:
        return float(self.min_resource) * float(self.reduction_factor) ** \
            self.min_early_stopping_rate

    def rung_step(self, k: int) -> float:
        """The step of rung ``k`` (0 is the first)."""
        return self._base * float(self.reduction_factor) ** k

    def _rung_of(self, step: float) -> int:
        k = _rung(step, self._base, float(self.reduction_factor))
        # No rung at or past the last step: a trial there is complete, not compared.
        while k >= 0 and self.max_resource is not None and \
                self.rung_step(k) >= float(self.max_resource):
            k -= 1
        return k

    def decides_at(self, tid: int, previous: int | None, step: int) -> bool:
        before = -1 if previous is None else self._rung_of(previous)
        return self._rung_of(step) > before

    def should_prune(self, own: Curve, peers: Sequence[Curve]) -> bool:
        step = own.last_step
        if step is None:
            return False
        k = self._rung_of(step)
        if k < 0:
            return False
        at = self.rung_step(k)
        mine = own.at_rung(at)
        if mine is None:
            return False
        theirs = [v for v in (p.at_rung(at) for p in peers) if v is not None]
        keep = math.ceil((len(theirs) + 1) / float(self.reduction_factor))
        better = sum(1 for v in theirs if v < mine)
        return better >= keep


@register
@dataclass(frozen=True)
class HyperbandPruner(Pruner):
    """Hyperband: ASHA brackets from most to least aggressive, trials spread over them.

    Args:
        min_resource: the smallest step at which a trial can be stopped (``r``).
        max_resource: the step at which a trial is complete (``R``).
        reduction_factor: ``eta`` > 1.
    """

    min_resource: float = 1
    max_resource: float = 81
    reduction_factor: float = 3
    kind: ClassVar[str] = "hyperband"

    def __post_init__(self) -> None:
        if self.max_resource is None:
            raise ConfigError("HyperbandPruner: max_resource must be a number (the step at "
                              "which a trial is complete), got max_resource=None")
        _check("HyperbandPruner", self.min_resource, self.reduction_factor,
               self.max_resource, 0)

    @property
    def s_max(self) -> int:
        """The most aggressive bracket's early-stopping rate."""
        return max(0, _rung(float(self.max_resource), float(self.min_resource),
                            float(self.reduction_factor)))

    def bracket_weights(self) -> list[int]:
        """Trials per bracket ``s = 0 .. s_max`` in one Hyperband round (the paper's n)."""
        eta, top = float(self.reduction_factor), self.s_max
        return [math.ceil((top + 1) / (top - s + 1) * eta ** (top - s))
                for s in range(top + 1)]

    def bracket(self, tid: int) -> int:
        """The bracket (its early-stopping rate) of trial ``tid``: a hash of the tid."""
        weights = self.bracket_weights()
        # Knuth's multiplicative hash spreads consecutive tids over the round.
        slot = ((tid * 2654435761) % 2**32) % sum(weights)
        for s, w in enumerate(weights):
            if slot < w:
                return s
            slot -= w
        return len(weights) - 1

    def _asha(self, tid: int) -> AshaPruner | None:
        """The successive halving of ``tid``'s bracket; None for a bracket whose first rung
        would be at or past ``max_resource``: the paper's bracket without early stopping."""
        s = self.bracket(tid)
        base = float(self.min_resource) * float(self.reduction_factor) ** s
        if base >= float(self.max_resource):
            return None
        return AshaPruner(self.min_resource, self.reduction_factor, self.max_resource, s)

    def decides_at(self, tid: int, previous: int | None, step: int) -> bool:
        asha = self._asha(tid)
        return asha is not None and asha.decides_at(tid, previous, step)

    def should_prune(self, own: Curve, peers: Sequence[Curve]) -> bool:
        asha = self._asha(own.tid)
        if asha is None:
            return False
        mine = self.bracket(own.tid)
        return asha.should_prune(own, [p for p in peers if self.bracket(p.tid) == mine])
