"""The TPE sampler: its settings, and the loop that builds a suggestion from the parts."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from parzen import validation
from parzen.exceptions import ConfigError
from parzen.samplers._base import Point
from parzen.samplers._history import History
from parzen.samplers._prior import sample_prior, to_points
from parzen.samplers.tpe._encode import snap
from parzen.samplers.tpe._failures import Imputed, impute
from parzen.samplers.tpe._local import SIZES, LocalSettings, local_step
from parzen.samplers.tpe._pending import PendingSettings, split_rows
from parzen.samplers.tpe._polish import PolishSettings, polish
from parzen.samplers.tpe._prior import PriorSettings
from parzen.samplers.tpe._probes import ProbeSettings
from parzen.samplers.tpe._proposal import ProposalSettings, propose
from parzen.samplers.tpe._rerank import Ranker, RerankSettings, fit_surrogate
from parzen.samplers.tpe._scratch import Scratch
from parzen.samplers.tpe._split import Split
from parzen.samplers.tpe._state import Layout, state_of
from parzen.samplers.tpe._surrogate import Surrogate
from parzen.samplers.tpe._work import Candidates, Pick, Turn, Work
from parzen.space import Space

FloatArray = npt.NDArray[np.float64]

_WHO = "tpe"


@dataclass(frozen=True)
class TPESettings:
    """Every setting of the TPE, by part; ``TPESampler``'s keyword arguments build it."""

    prior: PriorSettings = field(default_factory=PriorSettings)
    proposal: ProposalSettings = field(default_factory=ProposalSettings)
    pending: PendingSettings = field(default_factory=PendingSettings)
    rerank: RerankSettings = field(default_factory=RerankSettings)
    local: LocalSettings = field(default_factory=LocalSettings)
    probes: ProbeSettings = field(default_factory=ProbeSettings)
    polish: PolishSettings = field(default_factory=PolishSettings)


class TPESampler:
    """Tree-structured Parzen Estimator (Bergstra et al., "Algorithms for hyper-parameter
    optimization", NeurIPS 2011) with multivariate kernels (Watanabe, "Tree-structured Parzen
    estimator: understanding its algorithm components and their roles for better empirical
    performance", 2023).

    Each suggestion is built from parts, each with its settings and module:

    * the prior (``_prior.py``): the first ``n_startup_jobs`` points, and its weight in every
      density;
    * the density-ratio proposal (``_proposal.py``): completed trials split by loss into a
      good group and the rest, one product-kernel density per side and group of parameters
      active together, ``l`` and ``g``; candidates drawn from ``l``, ranked by ``l / g``;
    * the surrogate re-ranking (``_rerank.py``): the best few candidates re-ranked by a small
      Gaussian process of the losses, by its mean, or in a batch by a posterior draw
      (Thompson sampling);
    * the local step (``_local.py``): now and then, the minimum of a quadratic fitted to the
      trials nearest the best one;
    * the probes (``_probes.py``): in a converging batch, points around a local step being
      evaluated;
    * batch polish (``_polish.py``): a batch's first points moved to the surrogate's best
      nearby prediction;
    * pending trials (``_pending.py``): believed (kriging believer) or constant liars
      (Ginsbourger et al., 2010), and kept ``min_distance`` apart.

    A batch of ``n`` points is built one point at a time, each added as pending before the
    next is chosen; conditional parameters are chosen parents first, each group modelled on
    the trials where it was active. When points are chosen with results outstanding
    (``n > 1`` or pending trials) the ``parallel_*`` settings apply; with ``n == 1`` and
    nothing pending, sequential TPE is unchanged. ``bench/README.md`` ("TPE settings") has
    the measurements behind the defaults.

    Args:
        n_startup_jobs: points drawn from the prior before modelling starts; pending trials
            count towards it (hyperopt's). Default 10.
        n_EI_candidates: candidates drawn from ``l`` per group and point (hyperopt's).
            Default 24.
        refine_candidates: how many of the best candidates the surrogate re-ranks; 0 or 1
            ranks by ``l / g`` alone (classic TPE). Default 5.
        parallel_refine_candidates: ``refine_candidates`` with results outstanding. Default 16.
        refine_max_pending: the surrogate re-ranks only while fewer trials than this are
            pending. Default 8.
        gamma: if given, hyperopt's split of ``ceil(gamma * sqrt(n))`` good trials (Bergstra
            et al., 2011); by default (None) ``below_fraction`` and ``below_cap`` decide.
        prior_weight: weight of the prior in each density, relative to one trial (hyperopt's).
            Default 1.0.
        linear_forgetting: the most recent trials of the bad group keep full weight, older
            ones are down-weighted linearly (hyperopt's); 0 disables. Default 25.
        below_fraction: fraction of completed trials counted as good. Default 0.1.
        below_cap: maximum number of good trials. Default 25.
        multivariate: model parameters active together jointly (Watanabe, 2023), else one by
            one (Bergstra et al., 2011). Default True.
        believer: give pending trials the loss the surrogate predicts (kriging believer,
            Ginsbourger et al., 2010). Default True.
        constant_liar: without ``believer``, count pending trials as bad (constant liar,
            Ginsbourger et al., 2010), else ignore them. Default True.
        pending_weight: kernel weight of a constant liar, relative to a completed trial.
            Default 0.3.
        min_distance: normalised distance (per dimension, ranges scaled to 1, a categorical
            mismatch counting 1) under which a point duplicates a pending one; 0 disables.
            Default 0.01.
        bandwidth_factor: Scott-rule factor of the kernel width. Default 0.2.
        parallel_bandwidth_factor: ``bandwidth_factor`` with results outstanding. Default 0.26.
        parallel_n_EI_candidates: ``n_EI_candidates`` with results outstanding. Default 48.
        parallel_polish: while fewer trials than this are pending, the chosen point is
            polished by the surrogate (batches only). Default 2.
        polish_candidates: perturbations ranked when polishing. Default 32.
        polish_scale: their size, relative to the good density's kernel widths. Default 0.5.
        parallel_thompson: batch points past the polished ones are re-ranked by a posterior
            draw (Thompson sampling) over every category, else by the mean. Default True.
        local_every: sequentially, one suggestion in this many is a local step; 0 turns
            local steps off (in batches too). Default 2.
        parallel_local: with results outstanding, how many neighbourhood sizes may give a
            local step (at most 4); 0 turns them off there. Default 4.
        parallel_probes: with results outstanding, how many probes may go around a short
            local step being evaluated; 0 turns them off. Default 7.
        min_bandwidth: smallest kernel width, relative to the range. Default 0.01.
        verbose: accepted for hyperopt compatibility; ignored.

    Raises:
        ConfigError: a setting has the wrong type or is out of range.
    """

    def __init__(self, *, n_startup_jobs: int = 10, n_EI_candidates: int = 24,  # noqa: N803
                 refine_candidates: int = 5, parallel_refine_candidates: int = 16,
                 refine_max_pending: int = 8,
                 gamma: float | None = None, prior_weight: float = 1.0,
                 linear_forgetting: int = 25, below_fraction: float = 0.1,
                 below_cap: int = 25, multivariate: bool = True, believer: bool = True,
                 constant_liar: bool = True, pending_weight: float = 0.3,
                 min_distance: float = 0.01, bandwidth_factor: float = 0.2,
                 parallel_bandwidth_factor: float = 0.26, parallel_n_EI_candidates: int = 48,
                 parallel_polish: int = 2, polish_candidates: int = 32,
                 polish_scale: float = 0.5, parallel_thompson: bool = True,
                 local_every: int = 2, parallel_local: int = 4, parallel_probes: int = 7,
                 min_bandwidth: float = 0.01, verbose: bool = False) -> None:
        integer, number, flag = validation.integer, validation.number, validation.flag
        # Checked in the order they always were, so that with several bad settings the one
        # reported stays the same.
        n_startup = integer("n_startup_jobs", n_startup_jobs, 0, who=_WHO)
        n_ei = integer("n_EI_candidates", n_EI_candidates, 1, who=_WHO)
        refine = integer("refine_candidates", refine_candidates, 0, who=_WHO)
        parallel_refine = integer("parallel_refine_candidates", parallel_refine_candidates, 0,
                                  who=_WHO)
        max_pending = integer("refine_max_pending", refine_max_pending, 0, who=_WHO)
        checked_gamma = None if gamma is None else number(
            "gamma", gamma, low=0.0, high=1.0, low_open=True, who=_WHO)
        weight = number("prior_weight", prior_weight, low=0.0, who=_WHO)
        forgetting = integer("linear_forgetting", linear_forgetting, 0, who=_WHO)
        fraction = number("below_fraction", below_fraction, low=0.0, high=1.0, low_open=True,
                          who=_WHO)
        cap = integer("below_cap", below_cap, 1, who=_WHO)
        joint = flag("multivariate", multivariate, who=_WHO)
        believe = flag("believer", believer, who=_WHO)
        liar = flag("constant_liar", constant_liar, who=_WHO)
        liar_weight = number("pending_weight", pending_weight, low=0.0, low_open=True,
                             who=_WHO)
        spacing = number("min_distance", min_distance, low=0.0, high=1.0, who=_WHO)
        factor = number("bandwidth_factor", bandwidth_factor, low=0.0, high=10.0,
                        low_open=True, who=_WHO)
        min_width = number("min_bandwidth", min_bandwidth, low=0.0, high=1.0, low_open=True,
                           who=_WHO)
        parallel_factor = number("parallel_bandwidth_factor", parallel_bandwidth_factor,
                                 low=0.0, high=10.0, low_open=True, who=_WHO)
        parallel_n_ei = integer("parallel_n_EI_candidates", parallel_n_EI_candidates, 1,
                                who=_WHO)
        n_polish = integer("parallel_polish", parallel_polish, 0, who=_WHO)
        polish_k = integer("polish_candidates", polish_candidates, 1, who=_WHO)
        polish_size = number("polish_scale", polish_scale, low=0.0, high=10.0, low_open=True,
                             who=_WHO)
        thompson = flag("parallel_thompson", parallel_thompson, who=_WHO)
        every = integer("local_every", local_every, 0, who=_WHO)
        n_local = integer("parallel_local", parallel_local, 0, who=_WHO)
        n_probes = integer("parallel_probes", parallel_probes, 0, who=_WHO)
        if n_local > len(SIZES):
            raise ConfigError(f"tpe: parallel_local must be at most {len(SIZES)} (one per "
                              f"neighbourhood size), got parallel_local={parallel_local!r}")
        self.settings = TPESettings(
            prior=PriorSettings(n_startup_jobs=n_startup, prior_weight=weight),
            proposal=ProposalSettings(
                n_EI_candidates=n_ei, parallel_n_EI_candidates=parallel_n_ei,
                gamma=checked_gamma, below_fraction=fraction, below_cap=cap,
                linear_forgetting=forgetting, multivariate=joint, bandwidth_factor=factor,
                parallel_bandwidth_factor=parallel_factor, min_bandwidth=min_width),
            pending=PendingSettings(believer=believe, constant_liar=liar,
                                    pending_weight=liar_weight, min_distance=spacing),
            rerank=RerankSettings(refine_candidates=refine,
                                  parallel_refine_candidates=parallel_refine,
                                  refine_max_pending=max_pending, parallel_thompson=thompson),
            local=LocalSettings(local_every=every, parallel_local=n_local),
            probes=ProbeSettings(parallel_probes=n_probes),
            polish=PolishSettings(parallel_polish=n_polish, polish_candidates=polish_k,
                                  polish_scale=polish_size),
        )

    def __repr__(self) -> str:
        return f"TPESampler(settings={self.settings!r})"

    def suggest(self, space: Space, history: History, n: int,
                rng: np.random.Generator) -> list[Point]:
        """Propose ``n`` points; see the class docstring.

        What is derived from the history's rows (the groups of the space, their encoded rows,
        scratch buffers) is kept in ``history.memo`` for the next suggestion (``_state.py``);
        the answer depends only on the space, the history and ``rng``.
        """
        if n <= 0:
            return []
        s = self.settings
        imputed = impute(history)
        n_done = imputed.n_done
        n_pend = int(np.count_nonzero(history.pending & ~history.completed))
        n_random = s.prior.n_random(n, n_done, n_pend)
        if n_random == n or not space.params:
            return to_points(space, sample_prior(space, n, rng))
        head = to_points(space, sample_prior(space, n_random, rng)) if n_random else []
        state = state_of(history)
        layout = state.layout(space, s.proposal.multivariate)
        work = _work(space, history, imputed, n, layout, state.scratch)
        batch = n > 1 or n_pend > 0
        points: list[Point] = []
        for i, drawn in enumerate(head):
            _hand_out(work, work.n0 + i, drawn)
            points.append(drawn)
        model: Surrogate | None = None
        for i in range(n_random, n):
            turn = Turn(work, work.n0 + i)
            n_waiting = turn.waiting.shape[0]
            fantasise = s.pending.believer and n_waiting > 0
            refining = s.rerank.refining(batch, n_waiting)
            if model is None and n_done >= 2 and (fantasise or refining):
                model = fit_surrogate(layout.groups, work)
            believe = (model, layout.groups) if fantasise and model is not None else None
            sp = split_rows(s.pending, s.proposal, turn, believe)
            ranker = (Ranker(model, s.rerank.top(batch), layout.groups, space.labels)
                      if refining else None)
            point: Point = {}
            for g in layout.groups:
                if space.is_active(g.labels[0], point):
                    self._choose(Pick(g, work, turn.rows, point, rng, batch,
                                      s.pending.min_distance), sp, ranker)
            points.append(point)
            if i + 1 < n:
                _hand_out(work, turn.rows, point)
        return points

    def _choose(self, pick: Pick, sp: Split, ranker: Ranker | None) -> None:
        """Choose the values of ``pick``'s group for ``pick.point`` (in place)."""
        s = self.settings
        g = pick.g
        prop = propose(s.proposal, s.prior.prior_weight, pick, sp)
        cands, best = prop.cands, prop.best
        if ranker is not None:
            # Waiting rows are this batch's points so far and, with asynchronous workers, the
            # trials still running. Counting both keeps a worker pool that asks for one point
            # at a time from polishing every point (7 pending of 8).
            exploit = not pick.batch or s.polish.applies(pick.waiting.shape[0])
            draw = None if exploit or not s.rerank.parallel_thompson else pick.rng
            best = ranker.pick(g, cands, best, pick.point, rng=draw)
            step = local_step(s.local, s.probes, pick, cands.codes[best]) if g.numeric else None
            if step is not None:
                u, raw = snap(g, step[None, :])
                cands, best = Candidates(u, cands.codes[best:best + 1], raw, np.zeros(1)), 0
            elif pick.batch and exploit and g.numeric:
                cands = polish(s.polish, pick, ranker, cands.row(best), prop.good.width)
                best = 0
        for j, d in enumerate(g.numeric):
            pick.point[d.label] = float(cands.raw[best, j])
        for j, c in enumerate(g.categorical):
            pick.point[c.label] = int(c.decode(cands.codes[best:best + 1, j])[0])


def _work(space: Space, history: History, imputed: Imputed, n: int, layout: Layout,
          scratch: Scratch) -> Work:
    """The history's rows, their losses as the model sees them (``imputed``: failed rows at
    the worst loss), with room for the ``n`` points of the batch."""
    if n == 1:
        # One point: nothing is written back before it is returned, so the history's own
        # arrays serve (read only) without copies.
        return Work({lab: np.asarray(history.values[lab], dtype=np.float64)
                     for lab in space.labels},
                    imputed.losses, np.asarray(history.pending, dtype=bool), history.n,
                    imputed.n_done, dict(history.values), layout, scratch,
                    failed=imputed.failed)
    return Work({lab: np.concatenate([np.asarray(history.values[lab], dtype=np.float64),
                                      np.full(n, np.nan)]) for lab in space.labels},
                np.concatenate([imputed.losses, np.full(n, np.nan)]),
                np.concatenate([np.asarray(history.pending, dtype=bool), np.zeros(n, bool)]),
                history.n, imputed.n_done, dict(history.values), layout, scratch,
                failed=np.concatenate([imputed.failed, np.zeros(n, bool)]))


def _hand_out(work: Work, row: int, point: Point) -> None:
    """Write ``point`` into ``work``'s ``row`` as a pending trial."""
    for lab, v in point.items():
        work.values[lab][row] = float(v)
    work.pending[row] = True
