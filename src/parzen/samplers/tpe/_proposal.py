"""The density-ratio proposal: TPE proper (Bergstra, Bardenet, Bengio and Kégl, "Algorithms
for hyper-parameter optimization", NeurIPS 2011).

Completed trials are split by loss into a good group and the rest (``_split.py``). Each group
of parameters that are active together gets one product-kernel density per side, ``l`` (good)
and ``g`` (the rest), each mixed with the prior (``_parzen.py``). Candidates are drawn from
``l`` and ranked by ``l / g``. The parameters of a group are modelled jointly, not one by one
as in the original TPE: the multivariate TPE that Watanabe ("Tree-structured Parzen estimator:
understanding its algorithm components and their roles for better empirical performance",
2023) analyses with the other choices made here (the split rule, the bandwidths, the prior's
weight). Conditional parameters are modelled only on the trials where they were active.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from parzen.samplers.tpe._encode import Group, encode_group, snap
from parzen.samplers.tpe._failures import Screen
from parzen.samplers.tpe._parzen import Bandwidth, ParzenEstimator, fit, log_ratio
from parzen.samplers.tpe._pending import near_pending, push_out
from parzen.samplers.tpe._scratch import buffer
from parzen.samplers.tpe._split import Split, n_below
from parzen.samplers.tpe._work import Candidates, Pick, Work

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


@dataclass(frozen=True)
class ProposalSettings:
    """The split, the densities and the candidates (``TPESampler(gamma=..., ...)``).

    Attributes:
        n_EI_candidates: candidates drawn from ``l`` per group and point (hyperopt's name).
            Default 24.
        parallel_n_EI_candidates: the same when results are outstanding (a batch, or
            pending trials). Default 48.
        gamma: if given, hyperopt's split rule of ``ceil(gamma * sqrt(n))`` good trials
            (Bergstra et al., 2011), for compatibility; by default (None) the linear rule.
        below_fraction: fraction of completed trials counted as good (the linear rule;
            Watanabe, 2023, compares it with hyperopt's square-root one). Default 0.1.
        below_cap: maximum number of good trials (linear rule). Default 25.
        linear_forgetting: the most recent trials of the bad group keep full weight, older
            ones are down-weighted linearly (hyperopt's rule); 0 disables. Default 25.
        multivariate: model the parameters active together jointly, one product kernel per
            group (Watanabe, 2023), else one by one (Bergstra et al., 2011). Default True.
        bandwidth_factor: factor of the kernel width in Scott's rule (Scott, "Multivariate
            density estimation", 1992; ``_parzen.Bandwidth``). Default 0.2.
        parallel_bandwidth_factor: the factor used when results are outstanding: wider
            kernels spread a batch. Default 0.26.
        min_bandwidth: smallest kernel width, relative to the range. Default 0.01.
    """

    n_EI_candidates: int = 24  # noqa: N815 - hyperopt's name
    parallel_n_EI_candidates: int = 48  # noqa: N815
    gamma: float | None = None
    below_fraction: float = 0.1
    below_cap: int = 25
    linear_forgetting: int = 25
    multivariate: bool = True
    bandwidth_factor: float = 0.2
    parallel_bandwidth_factor: float = 0.26
    min_bandwidth: float = 0.01
    # The kernel widths' rules, sequential and with results outstanding; derived.
    _bandwidths: tuple[Bandwidth, Bandwidth] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_bandwidths", (
            Bandwidth(factor=self.bandwidth_factor, min_width=self.min_bandwidth),
            Bandwidth(factor=self.parallel_bandwidth_factor, min_width=self.min_bandwidth)))

    def bandwidth(self, batch: bool) -> Bandwidth:
        """How kernel widths are chosen, with results outstanding (``batch``) or not."""
        return self._bandwidths[batch]

    def n_candidates(self, batch: bool) -> int:
        """Candidates per group and point."""
        return self.parallel_n_EI_candidates if batch else self.n_EI_candidates

    def n_below(self, n_completed: int) -> int:
        """How many of ``n_completed`` trials count as good."""
        return n_below(n_completed, self.below_fraction, self.below_cap, self.gamma)


@dataclass(frozen=True)
class Proposal:
    """The candidates of one group, the best by ``l / g`` (``best``), and ``l``."""

    cands: Candidates
    best: int
    good: ParzenEstimator


def propose(settings: ProposalSettings, prior_weight: float, pick: Pick, sp: Split
            ) -> Proposal:
    """Fit ``l`` and ``g`` for ``pick``'s group on the rows where it was active, draw
    candidates from ``l`` and score them by ``log l - log g``; candidates near a pending
    point are pushed out of its neighbourhood or, failing that, scored ``-inf``."""
    g, work, active, batch = pick.g, pick.work, pick.active, pick.batch
    keep_b = active[sp.below]
    keep_a = active[sp.above]
    below, above = sp.below[keep_b], sp.above[keep_a]
    xd, xc = _encode(g, work, np.concatenate([below, above]))
    nb = below.shape[0]
    bw = settings.bandwidth(batch)
    l_est = fit(g, xd[:nb], xc[:nb], sp.w_below[keep_b], prior_weight, bw)
    g_est = fit(g, xd[nb:], xc[nb:], sp.w_above[keep_a], prior_weight, bw)
    cn, cc = l_est.sample(settings.n_candidates(batch), pick.rng)
    cn, raw = snap(g, cn)
    score = log_ratio(l_est, g_est, cn, cc, work.scratch)
    if pick.min_distance > 0 and g.numeric:
        near = near_pending(pick, cn, cc)
        if near.any():
            moved = np.flatnonzero(near)
            cn, raw = snap(g, push_out(pick, cn, near))
            score[moved] = log_ratio(l_est, g_est, cn[moved], cc[moved], work.scratch)
            # Moved away from one pending point, a candidate may be near another.
            near = near_pending(pick, cn, cc)
        if not near.all():
            score = np.where(near, -np.inf, score)
    screen = Screen.of(pick)
    if screen is not None:
        # Nearer a failed trial than a completed one: ranked last (_failures.py).
        off = ~screen.passes(cn, cc)
        if not off.all():
            score = np.where(off, -np.inf, score)
    return Proposal(Candidates(cn, cc, raw, score), int(np.argmax(score)), l_est)


def _encode(g: Group, work: Work, rows: IntArray) -> tuple[FloatArray, IntArray]:
    """``rows`` as design rows and codes: the history's from the kept encoding, this
    batch's afresh."""
    if work.n0 == 0:
        return encode_group(g, work.values, rows)
    hd, hc = work.history_rows(g)
    if rows.shape[0] == 0 or int(rows.max()) < work.n0:
        # np.take: half the time of fancy indexing for a (m, F) gather. The rows live in
        # a scratch buffer: the estimators fitted on them do not outlive this group's
        # choice (see _scratch.py for why it matters).
        xd = np.take(hd, rows, axis=0, out=buffer(work.scratch, "design_rows",
                                                   (rows.shape[0], hd.shape[1])))
        return xd, np.take(hc, rows, axis=0)
    old = rows < work.n0
    xd = np.empty((rows.shape[0], g.design_width))
    xc = np.empty((rows.shape[0], len(g.categorical)), dtype=np.intp)
    xd[old], xc[old] = hd[rows[old]], hc[rows[old]]
    xd[~old], xc[~old] = encode_group(g, work.values, rows[~old])
    return xd, xc
