"""The median stopping rule (Golovin et al. 2017, "Google Vizier: A Service for Black-Box
Optimization", KDD, section 3.2.2).

A trial stops at step ``s`` when its best loss so far is worse than the median of the other
trials' best losses up to ``s``. Vizier compares running averages; the best-so-far is used
here, as the loss the trial could still claim had it stopped at its best step. Only peers
that have reached ``s`` take part, and none until ``n_startup_trials`` have.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from parzen import validation
from parzen.pruners._base import Curve, Pruner, register


@register
@dataclass(frozen=True)
class MedianPruner(Pruner):
    """Stop a trial whose best loss is worse than the median of its peers' at the same step.

    Args:
        n_startup_trials: how many peers must have reached a step before any trial is
            stopped there.
        n_warmup_steps: no trial is stopped before this step.
        interval_steps: decide at most once every this many steps.
    """

    n_startup_trials: int = 5
    n_warmup_steps: int = 0
    interval_steps: int = 1
    kind: ClassVar[str] = "median"

    def __post_init__(self) -> None:
        who = "MedianPruner"
        validation.integer("n_startup_trials", self.n_startup_trials, 1, who=who)
        validation.integer("n_warmup_steps", self.n_warmup_steps, 0, who=who)
        validation.integer("interval_steps", self.interval_steps, 1, who=who)

    def decides_at(self, tid: int, previous: int | None, step: int) -> bool:
        if step < self.n_warmup_steps:
            return False
        return previous is None or step // self.interval_steps > previous // self.interval_steps

    def should_prune(self, own: Curve, peers: Sequence[Curve]) -> bool:
        step = own.last_step
        if step is None:
            return False
        mine = own.best_until(step)
        theirs = [b for b in (p.best_until(step) for p in peers) if b is not None]
        if mine is None or len(theirs) < self.n_startup_trials:
            return False
        return mine > statistics.median(theirs)
