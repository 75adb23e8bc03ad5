"""The prior's part in the TPE: the first points, and its weight in every density after them.

Until ``n_startup_jobs`` trials have been handed out, points are drawn from the prior (the
space's own distributions), as in hyperopt (Bergstra et al., 2011). After that the prior is
one more component of each density, ``l`` and ``g``, weighing ``prior_weight`` trials, so that
the model never rules out a region the trials have not seen.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PriorSettings:
    """The prior's settings (``TPESampler(n_startup_jobs=..., prior_weight=...)``).

    Attributes:
        n_startup_jobs: points drawn from the prior before modelling starts; pending trials
            count towards it (hyperopt's name and meaning). Default 10.
        prior_weight: weight of the prior in each mixture, relative to one trial (hyperopt's
            name and meaning). Default 1.0.
    """

    n_startup_jobs: int = 10
    prior_weight: float = 1.0

    def n_random(self, n: int, n_done: int, n_pending: int) -> int:
        """How many of ``n`` points asked for come from the prior, with ``n_done`` completed
        trials and ``n_pending`` pending: all of them until a trial has completed, else those
        still short of ``n_startup_jobs`` handed out."""
        if n_done == 0:
            return n
        return min(max(self.n_startup_jobs - (n_done + n_pending), 0), n)
