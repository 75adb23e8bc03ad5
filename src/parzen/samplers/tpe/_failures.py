"""Failed trials in the TPE: a failure is a loss worse than any seen.

A trial whose objective failed at its point (it raised, returned status ``fail`` or a loss
that is not finite: ``Trial.failed_here``) says "not here", and ignoring it, as hyperopt's and
optuna's TPE do, lets a crash region next to the optimum swallow the budget: nothing the
sampler sees changes after a failure, so it proposes the same neighbourhood again (with
parallel workers and batch polish, the very same point, clipped to the bound).

The rule, one place: each failed trial is given the worst loss among the completed trials,
and from then on counts as completed in every part that reads losses.

- The split puts it in the bad group (``_split.py``), so ``l / g`` falls around it and the
  proposal moves off the crash region at the rate the failures accumulate there.
- The surrogate models losses through their ranks (``_surrogate.py``), so a failure is the
  worst rank, not a number that distorts the fit: re-ranking, the believer's fantasies and
  the batch polish steer away from it.
- The moves that do not come from the densities (the local step, the probes around it and
  the batch polish) pass a ``Screen``: a point whose nearest trial is a failed one, not a
  completed one, is not proposed. The local step fits its quadratic to completed trials
  only (a worst-loss cliff in a quadratic fit would move the step for reasons of scale, not
  shape) and backs off towards the incumbent by halves until it passes the screen, as a line
  search would; a probe or a polish move that does not pass is dropped.

Failures of the system (``ErrorOrigin.SYSTEM``: a lost worker, a refused result) and
cancelled trials are not verdicts and are not counted. Until some trial has completed there
is no loss to impute, and failed trials count for nothing (the prior keeps proposing).
``bench/failures.py`` measures the rule against optuna's TPE (which ignores failures) and
random search on problems whose crash region borders the optimum.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from parzen.samplers._history import History
from parzen.samplers.tpe._work import Pick

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class Imputed(NamedTuple):
    """The losses the TPE models: ``losses`` with failed rows at the worst completed loss;
    ``failed`` marks those rows; ``n_done`` counts completed and imputed rows."""

    losses: FloatArray
    failed: BoolArray
    n_done: int


def impute(history: History) -> Imputed:
    """``history``'s losses with every failed row given the worst completed loss."""
    losses = np.asarray(history.losses, dtype=np.float64)
    done = np.isfinite(losses)
    n_done = int(np.count_nonzero(done))
    failed = history.failed_mask & ~done & ~history.pending
    if n_done == 0 or not failed.any():
        return Imputed(losses, np.zeros(losses.shape[0], dtype=bool), n_done)
    out = losses.copy()
    out[failed] = losses[done].max()
    return Imputed(out, failed, n_done + int(np.count_nonzero(failed)))


# Halvings of a local step towards the incumbent tried before the step is given up.
BACKTRACKS = 5


class Screen:
    """Nearest-neighbour feasibility in one group (with one set of categories): a point
    passes when its nearest trial is a completed one rather than a failed one."""

    __slots__ = ("done", "failed")

    def __init__(self, done: FloatArray, failed: FloatArray) -> None:
        self.done = done
        self.failed = failed

    @classmethod
    def of(cls, pick: Pick, codes: npt.NDArray[np.intp]) -> Screen | None:
        """The screen for ``pick``'s group with categories ``codes``, from the history's
        completed and failed trials active in it; None when none of them failed."""
        work = pick.work
        if work.failed is None or work.layout is None:
            return None
        n0 = work.n0
        failed = work.failed[:n0] & pick.active[:n0]
        if not failed.any():
            return None
        done = work.measured(n0) & pick.active[:n0]
        design, rows_codes = work.history_rows(pick.g)
        if pick.g.categorical:
            same = (rows_codes[:n0] == codes[None, :]).all(axis=1)
            failed &= same
            done &= same
        if not failed.any() or not done.any():
            return None
        dn = len(pick.g.numeric)
        return cls(design[np.flatnonzero(done), :dn], design[np.flatnonzero(failed), :dn])

    def passes(self, u: FloatArray) -> BoolArray:
        """For each row of ``u`` (``(k, d)``), whether its nearest trial completed."""
        d_done = ((u[:, None, :] - self.done[None, :, :]) ** 2).sum(axis=2).min(axis=1)
        d_failed = ((u[:, None, :] - self.failed[None, :, :]) ** 2).sum(axis=2).min(axis=1)
        out: BoolArray = d_done < d_failed
        return out

    def back_off(self, step: FloatArray, best: FloatArray) -> FloatArray | None:
        """``step``, or the longest of its halvings towards ``best`` that passes; None if
        none of ``BACKTRACKS`` does.

        A quadratic fitted to completed trials knows nothing of a crash region beside them,
        and where the optimum borders one (a learning rate just short of divergence) its
        minimum lies across the border again and again. Backing off approaches the border
        by halves instead.
        """
        tries = best + (step - best)[None, :] * (0.5 ** np.arange(BACKTRACKS))[:, None]
        ok = np.flatnonzero(self.passes(tries))
        return tries[ok[0]] if ok.shape[0] else None
