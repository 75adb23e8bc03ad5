"""Re-ranking the best candidates by the surrogate (``_surrogate.py``).

``l / g`` says where good trials are dense, not where the loss is lowest, and among the top
few candidates it is a weak tie-breaker. So the best few by ``l / g`` that share the best
one's categories (the TPE alone keeps choosing and exploring categories) are re-ranked by the
Gaussian-process surrogate's predicted mean, and the lowest is proposed. Past the first
points of a batch, candidates are ranked by one joint draw from the posterior instead
(Thompson sampling: Thompson, "On the likelihood that one unknown probability exceeds another
in view of the evidence of two samples", Biometrika, 1933; for batches, Kandasamy, Krishnamurthy,
Schneider and Póczos, "Parallelised Bayesian optimisation via Thompson sampling", AISTATS
2018), over the top candidates of every category, so that the batch spreads where the model
is unsure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from parzen.samplers.tpe._encode import Group
from parzen.samplers.tpe._surrogate import (
    MAX_ROWS,
    Surrogate,
    column_span,
    design_features,
    features,
    group_features,
)
from parzen.samplers.tpe._work import Candidates, Point, Work

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class RerankSettings:
    """The surrogate's re-ranking (``TPESampler(refine_candidates=..., ...)``).

    Attributes:
        refine_candidates: how many of the best candidates by ``l / g`` the surrogate
            re-ranks; 0 or 1 ranks by ``l / g`` alone (classic TPE). Default 5.
        parallel_refine_candidates: the same when results are outstanding. Default 16.
        refine_max_pending: the surrogate re-ranks only while fewer trials than this are
            pending: each pending trial is one of the surrogate's own fantasies, and
            following many of them piles a batch into one basin, so larger batches fall back
            to ``l / g``. Default 8.
        parallel_thompson: the batch points after the polished ones (and a point asked for
            while ``parallel_polish`` or more trials are pending) are re-ranked by one joint
            draw from the surrogate's posterior (Thompson sampling) over the top candidates
            of every category, instead of by its mean within the best candidate's
            categories. The mean gives every such point the same verdict, so a batch piles
            into one category and one basin; independent draws spread it where the surrogate
            is unsure, in proportion to how unsure it is. Default True.
    """

    refine_candidates: int = 5
    parallel_refine_candidates: int = 16
    refine_max_pending: int = 8
    parallel_thompson: bool = True

    def top(self, batch: bool) -> int:
        """How many candidates are re-ranked, with results outstanding (``batch``) or not."""
        return self.parallel_refine_candidates if batch else self.refine_candidates

    def refining(self, batch: bool, n_waiting: int) -> bool:
        """Whether the surrogate re-ranks, with ``n_waiting`` trials pending."""
        return self.top(batch) > 1 and n_waiting < self.refine_max_pending


class Scorer(Protocol):
    """What the ranker needs of a model: a score per feature row (lower is better)."""

    def score(self, q: FloatArray) -> FloatArray: ...

    def sample(self, q: FloatArray, rng: np.random.Generator) -> FloatArray: ...


@dataclass(frozen=True)
class Ranker:
    """Re-ranks the best candidates of one group by the surrogate's prediction.

    Attributes:
        model: the surrogate; None defers to ``l / g``.
        top: how many of the best candidates are re-ranked.
        groups: every group, in the layout of the surrogate's features.
        labels: every label of the space.
    """

    model: Scorer | None
    top: int
    groups: Sequence[Group]
    labels: Sequence[str]

    def pick(self, g: Group, cands: Candidates, best: int, point: Point, *,
             top: int | None = None, rng: np.random.Generator | None = None) -> int:
        """The candidate to propose among the ``top`` best by ``cands.score``.

        Without ``rng``: among those that share the categories of ``best`` (the TPE alone
        decides categories), the lowest predicted mean. With ``rng``: the lowest value of one
        joint draw from the surrogate's posterior (Thompson sampling), over all categories.
        Other groups' values come from ``point`` (chosen so far) or count as inactive.
        """
        if self.model is None:
            return best
        score, cn, cc = cands.score, cands.u, cands.codes
        order = np.argsort(-score, kind="stable")
        if g.categorical and rng is None:
            order = order[(cc[order] == cc[best]).all(axis=1)]
        order = order[:self.top if top is None else top]
        order = order[np.isfinite(score[order])]
        k = order.shape[0]
        if k < 2:
            return best
        own = group_features(g, cn[order], cc[order])
        if len(self.groups) == 1:
            q = own
        else:
            values = {lab: np.array([np.nan if point.get(lab) is None else float(point[lab])])
                      for lab in self.labels}
            q = np.repeat(features(self.groups, values, np.arange(1)), k, axis=0)
            start, stop = column_span(self.groups, g)
            q[:, start:stop] = own
        pred = self.model.score(q) if rng is None else self.model.sample(q, rng)
        return int(order[int(np.argmin(pred))])


def fit_surrogate(groups: Sequence[Group], work: Work) -> Surrogate:
    """The surrogate, fitted on the (most recent ``MAX_ROWS``) completed trials of the
    history."""
    n0 = work.n0
    done = np.flatnonzero(np.isfinite(work.losses[:n0]))[-MAX_ROWS:]
    designs = [work.history_rows(g)[0] for g in groups]
    x = design_features(groups, designs, work.values, done)
    return Surrogate(x, work.losses[done])
