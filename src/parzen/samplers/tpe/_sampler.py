"""The TPE sampler: settings, validation and the suggestion loop."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from parzen import validation
from parzen.exceptions import ConfigError
from parzen.samplers._base import Point
from parzen.samplers._history import History
from parzen.samplers._prior import sample_prior, to_points
from parzen.samplers.tpe._encode import Group, build_groups, encode_group, snap
from parzen.samplers.tpe._local import (
    GUARD,
    PROBE_GATE,
    PROBE_REACH,
    SAME,
    SIZES,
    probe_directions,
    quadratic_step,
)
from parzen.samplers.tpe._parzen import Bandwidth, fit, log_ratio
from parzen.samplers.tpe._rows import encoded_rows
from parzen.samplers.tpe._scratch import scratch
from parzen.samplers.tpe._split import Split, n_below, split
from parzen.samplers.tpe._surrogate import (
    MAX_ROWS,
    Surrogate,
    column_span,
    design_features,
    features,
    group_features,
)
from parzen.space import Space

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]


# The groups of the last space seen, by fingerprint. ``hyperopt_suggest`` builds a fresh
# sampler per call, and a loop that calls ``fmin`` once per step compiles a new (equal) Space
# each time, so this lives at module level and is keyed by structure, not identity.
_GROUP_CACHE: tuple[str, bool, list[Group]] | None = None


@dataclass(frozen=True)
class _Work:
    """Mutable per-call state: the history plus the points of the batch handed out so far."""

    values: dict[str, FloatArray]
    losses: FloatArray
    pending: BoolArray
    # Rows from the history, whose encoding is kept across calls (``_rows.py``); rows after
    # them are this batch's.
    n0: int = 0
    history: dict[str, FloatArray] = field(default_factory=dict)
    # The history's encoded rows per group, looked up once per call.
    encoded: dict[int, tuple[FloatArray, IntArray]] = field(default_factory=dict)
    # Local fits by (group, categories, neighbourhood size): they use completed trials only,
    # so every point of a batch would otherwise refit the same quadratics.
    fits: dict[tuple[int, bytes, float], tuple[FloatArray, float] | None] = field(
        default_factory=dict)

    def history_rows(self, g: Group) -> tuple[FloatArray, IntArray]:
        """The first ``n0`` rows encoded for ``g`` (design rows, codes)."""
        out = self.encoded.get(id(g))
        if out is None:
            out = encoded_rows(g, self.history, self.n0)
            self.encoded[id(g)] = out
        return out


@dataclass(frozen=True)
class _Ranker:
    """Re-ranks the best candidates of one group by the surrogate's prediction."""

    model: Surrogate | None
    top: int
    groups: list[Group]
    labels: tuple[str, ...] | list[str]

    def pick(self, g: Group, score: FloatArray, best: int, cn: FloatArray, cc: IntArray,
             point: Point, top: int | None = None,
             rng: np.random.Generator | None = None) -> int:
        """The candidate to propose among the ``top`` best by ``score``.

        Without ``rng``: among those that share the categories of ``best`` (the TPE alone
        decides categories), the lowest predicted mean. With ``rng``: the lowest value of one
        joint draw from the surrogate's posterior (Thompson sampling), over all categories.
        Other groups' values come from ``point`` (chosen so far) or count as inactive.
        """
        if self.model is None:
            return best
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


class TPESampler:
    """Tree-structured Parzen Estimator (Bergstra et al., 2011) with multivariate kernels.

    Completed trials are split by loss into a good group (the best
    ``min(ceil(below_fraction * n), below_cap)``) and the rest. Each group of parameters that
    are active together gets one product-kernel density per side, ``l`` (good) and ``g``
    (the rest), each mixed with the prior. Candidates are drawn from ``l`` and ranked by
    ``l / g``; the best ``refine_candidates`` of them that share the best one's categories are
    then re-ranked by a small Gaussian-process surrogate of the losses, and the one it predicts
    lowest is proposed (``_surrogate.py`` says why); past the first points of a batch, the one a
    random draw from the surrogate ranks lowest (``parallel_thompson``). Some points are local
    steps instead: the minimum of a quadratic fitted to the trials nearest the best one
    (``_local.py``; ``local_every`` and ``parallel_local`` say when), and in a converging batch
    probes around that step (``parallel_probes``). Conditional parameters
    are modelled only on the trials where they were active; groups are chosen parents-first,
    so a child's model is the one of the branch just picked.

    A batch of ``n`` points is built one point at a time, each added as pending before the next
    is chosen. Pending trials are fantasised ("believer"): each gets the loss a small Gaussian
    process fitted to the completed trials predicts for it and is then split like a completed
    trial, so the batch follows the model's belief as sequential TPE would follow real results.
    The surrogate is the same Gaussian process that re-ranks candidates.
    With ``believer=False`` they count as bad instead (a constant liar with the worst loss, at
    ``pending_weight`` of a completed trial's weight). A candidate closer than
    ``min_distance`` to a pending point is moved out to that distance (or, if it is then near
    another, discarded), so a batch holds no near-duplicates. When points are
    chosen without all results known (``n > 1`` or pending trials), kernels are widened to
    ``parallel_bandwidth_factor``, ``parallel_n_EI_candidates`` are drawn and
    ``parallel_refine_candidates`` are re-ranked. With ``n == 1``
    and nothing pending none of this applies: sequential TPE is unchanged.

    Args:
        n_startup_jobs: points drawn from the prior before modelling starts; pending trials
            count towards it (hyperopt's name and meaning).
        n_EI_candidates: candidates drawn from ``l`` per group and point.
        refine_candidates: how many of the best candidates by ``l / g`` the surrogate re-ranks;
            0 or 1 ranks by ``l / g`` alone (classic TPE).
        gamma: if given, hyperopt's split rule of ``ceil(gamma * sqrt(n))`` good trials, for
            compatibility; by default the linear rule is used, which measured stronger.
        prior_weight: weight of the prior in each mixture, relative to one trial.
        linear_forgetting: the most recent trials of the bad group keep full weight, older ones
            are down-weighted linearly (hyperopt's rule); 0 disables.
        below_fraction: fraction of completed trials counted as good (linear rule).
        below_cap: maximum number of good trials (linear rule).
        multivariate: model parameters active together jointly (else one by one).
        believer: fantasise pending trials' losses with a Gaussian process (see above).
        constant_liar: without ``believer``, count pending trials as bad (else ignore them).
        pending_weight: kernel weight of a pending trial in the bad group (constant liar).
        min_distance: normalised distance (per dimension, ranges scaled to 1, a categorical
            mismatch counting 1) under which a candidate duplicates a pending point; 0 disables.
        bandwidth_factor: Scott-rule factor of the kernel width.
        parallel_bandwidth_factor: the factor used when results are outstanding.
        parallel_n_EI_candidates: candidates per group and point when results are outstanding.
        parallel_refine_candidates: ``refine_candidates`` when results are outstanding.
        parallel_polish: while fewer trials than this are pending (the first points of each
            batch), the chosen point is polished: the surrogate also ranks
            ``polish_candidates`` random perturbations of it (same categories; each numeric
            ``u`` moved by a normal draw of ``polish_scale`` times the good density's kernel
            width) and the best prediction is proposed. A batch learns from many results at
            once but gets few rounds, and its points must stay ``min_distance`` apart; the
            polished ones take the fine steps a sequential run takes one at a time. At batch
            size 8 (200 held-out seeds), regret at 100 evaluations fell by 8-26% on four of
            the five numeric benchmark problems (Levy unchanged). Sequentially it made the
            search greedy (Levy-5 9x worse), so it applies only with results outstanding.
        polish_candidates: perturbations ranked when polishing.
        polish_scale: their size, relative to the good density's kernel widths.
        parallel_thompson: the batch points after the polished ones (and a point asked for
            while ``parallel_polish`` or more trials are pending) are re-ranked by one joint
            draw from the surrogate's posterior (Thompson sampling) instead of its mean, over
            the top candidates of every category. The mean gives every such point the same
            verdict, so a batch piles into one category and one basin; independent draws
            spread it where the surrogate is unsure, in proportion to how unsure it is. A
            category tried a few times keeps a wide posterior and so keeps getting points.
            At batch size 8 (200 held-out seeds, two random streams), regret at 100
            evaluations fell by 30-41% on rf_mixed (the best category is found sooner) and
            26-29% on Levy-5; the other four moved within the streams' noise (-16% to +15%).
            With ``False``, those points are ranked by the mean within the best candidate's
            categories, like sequential points.
        local_every: sequentially, one suggestion in ``local_every`` (when the history's
            length is a multiple of it) is a local step, where the quadratic has a minimum
            and it is not a trial already made; 0 turns local steps off (in batches too).
            TPE narrows in on the best region only as fast as its densities shrink; the
            steps close in on the optimum within it. Over 200 held-out seeds, the median
            regret at 100 evaluations fell 1.8-2.8x on Rosenbrock-5, Ackley-5 and Levy-5, 12x
            on rf_mixed, from 0.029 to 2e-5 on Hartmann6 and from 0.0017 to 5e-11 on Branin;
            every 3rd or 4th suggestion measured worse on Hartmann6, Levy-5 and rf_mixed. With
            noise added to the losses (``bench/noisy.py``) they still helped (Hartmann6, noise
            sd 0.05: 2.8x lower true regret) or measured within noise (sd 0.2).
        parallel_local: with results outstanding (a batch, or trials running), up to this many
            neighbourhood sizes each give a minimum, and the first that no pending trial is
            already evaluating (none within a quarter of the neighbourhood's radius, nor
            within ``min_distance``) is proposed: a batch's first points are local steps, and
            a worker pool asking for one point at a time gets a new one when the results have
            moved the minimum or the last one is back. 0 turns them off with results
            outstanding; at most 4.
        parallel_probes: with results outstanding, once the first neighbourhood's step is
            short against its radius (the fit places the optimum well inside it) and is being
            evaluated, up to this many points go around it as probes instead of the larger
            neighbourhoods' steps: as close as ``min_distance`` allows, along the axes (and
            the corners of squares on pairs of axes, up to three dimensions). A batch may hold
            only one point near the optimum, so without them its fits span the batch's
            spread, where the function is not quadratic; with them the next round's fit has a
            core of trials around the optimum and is made there (``_local.py``). At batch
            size 8 over 100 held-out seeds, median regret at 100 evaluations fell from
            1.6e-6 to 5.2e-8 on Branin, 2.8e-4 to 3.1e-5 on Hartmann6, 1.9 to 1.1 on Ackley-5,
            1.4e-5 to 4.5e-6 on rf_mixed, 12.0 to 10.4 on Rosenbrock-5 and 0.114 to 0.101 on
            Levy-5. Converging, only a pending trial within ``min_distance`` blocks a new
            step: in a worker pool, results that move the minimum off the running step give
            a new one rather than more probes around it (pool of 8, ``bench/pool.py``, 60
            seeds, probes off -> on: Branin 2.8e-6 -> 1.2e-6, Hartmann6 0.0027 -> 0.0021,
            Ackley-5 2.42 -> 2.29, Levy-5 0.112 -> 0.096, Rosenbrock-5 12.6 -> 13.7,
            rf_mixed 5.0e-5 -> 1.2e-4; over 100 seeds rf_mixed's geometric mean 1.4e-4 ->
            1.0e-4). 0 turns them off.
        refine_max_pending: the surrogate re-ranks only while fewer trials than this are
            pending. Each pending trial is one of the surrogate's own fantasies; with many of
            them, following its prediction piles a batch into one basin (at batch size 24 on
            Levy-5 it doubled the regret), so larger batches fall back to ``l / g``.
        min_bandwidth: smallest kernel width, relative to the range.
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
        self.n_startup_jobs = validation.integer("n_startup_jobs", n_startup_jobs, 0, who="tpe")
        self.n_EI_candidates = validation.integer("n_EI_candidates", n_EI_candidates, 1, who="tpe")
        self.refine_candidates = validation.integer(
            "refine_candidates", refine_candidates, 0, who="tpe")
        self.parallel_refine_candidates = validation.integer(
            "parallel_refine_candidates", parallel_refine_candidates, 0, who="tpe")
        self.refine_max_pending = validation.integer(
            "refine_max_pending", refine_max_pending, 0, who="tpe")
        self.gamma = None if gamma is None else validation.number(
            "gamma", gamma, low=0.0, high=1.0, low_open=True, who="tpe")
        self.prior_weight = validation.number("prior_weight", prior_weight, low=0.0, who="tpe")
        self.linear_forgetting = validation.integer(
            "linear_forgetting", linear_forgetting, 0, who="tpe")
        self.below_fraction = validation.number(
            "below_fraction", below_fraction, low=0.0, high=1.0, low_open=True, who="tpe")
        self.below_cap = validation.integer("below_cap", below_cap, 1, who="tpe")
        self.multivariate = validation.flag("multivariate", multivariate, who="tpe")
        self.believer = validation.flag("believer", believer, who="tpe")
        self.constant_liar = validation.flag("constant_liar", constant_liar, who="tpe")
        self.pending_weight = validation.number(
            "pending_weight", pending_weight, low=0.0, low_open=True, who="tpe")
        self.min_distance = validation.number(
            "min_distance", min_distance, low=0.0, high=1.0, who="tpe")
        self.bandwidth = Bandwidth(
            factor=validation.number(
                "bandwidth_factor", bandwidth_factor, low=0.0, high=10.0, low_open=True,
                who="tpe"),
            min_width=validation.number(
                "min_bandwidth", min_bandwidth, low=0.0, high=1.0, low_open=True, who="tpe"),
        )
        self.parallel_bandwidth_factor = validation.number(
            "parallel_bandwidth_factor", parallel_bandwidth_factor, low=0.0, high=10.0,
            low_open=True, who="tpe")
        self.parallel_n_EI_candidates = validation.integer(
            "parallel_n_EI_candidates", parallel_n_EI_candidates, 1, who="tpe")
        self.parallel_polish = validation.integer("parallel_polish", parallel_polish, 0, who="tpe")
        self.polish_candidates = validation.integer(
            "polish_candidates", polish_candidates, 1, who="tpe")
        self.polish_scale = validation.number(
            "polish_scale", polish_scale, low=0.0, high=10.0, low_open=True, who="tpe")
        self.parallel_thompson = validation.flag("parallel_thompson", parallel_thompson, who="tpe")
        self.local_every = validation.integer("local_every", local_every, 0, who="tpe")
        self.parallel_local = validation.integer("parallel_local", parallel_local, 0, who="tpe")
        self.parallel_probes = validation.integer("parallel_probes", parallel_probes, 0, who="tpe")
        if self.parallel_local > len(SIZES):
            raise ConfigError(f"tpe: parallel_local must be at most {len(SIZES)} (one per "
                              f"neighbourhood size), got parallel_local={parallel_local!r}")

    def _groups(self, space: Space) -> list[Group]:
        global _GROUP_CACHE
        cache = _GROUP_CACHE
        key = space.fingerprint()
        if cache is None or cache[0] != key or cache[1] != self.multivariate:
            cache = (key, self.multivariate, build_groups(space, self.multivariate))
            _GROUP_CACHE = cache
        return cache[2]

    def suggest(self, space: Space, history: History, n: int,
                rng: np.random.Generator) -> list[Point]:
        """Propose ``n`` points; see the class docstring."""
        if n <= 0:
            return []
        n_done = history.n_completed
        n_pend = int(np.count_nonzero(history.pending & ~history.completed))
        handed = n_done + n_pend
        n_random = n if n_done == 0 else min(max(self.n_startup_jobs - handed, 0), n)
        if n_random == n or not space.params:
            return to_points(space, sample_prior(space, n, rng))
        head = to_points(space, sample_prior(space, n_random, rng)) if n_random else []
        groups = self._groups(space)
        n0 = history.n
        if n == 1:
            # One point: nothing is written back before it is returned, so the history's own
            # arrays serve (read only) without copies.
            work = _Work({lab: np.asarray(history.values[lab], dtype=np.float64)
                          for lab in space.labels},
                         np.asarray(history.losses, dtype=np.float64),
                         np.asarray(history.pending, dtype=bool), n0, dict(history.values))
        else:
            work = _Work(
                {lab: np.concatenate([np.asarray(history.values[lab], dtype=np.float64),
                                      np.full(n, np.nan)]) for lab in space.labels},
                np.concatenate([np.asarray(history.losses, dtype=np.float64),
                                np.full(n, np.nan)]),
                np.concatenate([np.asarray(history.pending, dtype=bool), np.zeros(n, bool)]),
                n0, dict(history.values),
            )
        k_below = n_below(n_done, self.below_fraction, self.below_cap, self.gamma)
        bw = self.bandwidth
        n_cand = self.n_EI_candidates
        refine = self.refine_candidates
        if n > 1 or n_pend:
            bw = dataclasses.replace(bw, factor=self.parallel_bandwidth_factor)
            n_cand = self.parallel_n_EI_candidates
            refine = self.parallel_refine_candidates
        model: Surrogate | None = None
        points: list[Point] = []
        for i, drawn in enumerate(head):
            for lab, v in drawn.items():
                work.values[lab][n0 + i] = float(v)
            work.pending[n0 + i] = True
            points.append(drawn)
        for i in range(n_random, n):
            rows = n0 + i
            waiting = np.flatnonzero(work.pending[:rows] & ~np.isfinite(work.losses[:rows]))
            fantasise = self.believer and waiting.shape[0] > 0
            refining = refine > 1 and waiting.shape[0] < self.refine_max_pending
            if model is None and n_done >= 2 and (fantasise or refining):
                model = self._surrogate(groups, work, n0)
            if fantasise and model is not None:
                losses = work.losses[:rows].copy()
                losses[waiting] = model.predict(features(groups, work.values, waiting))
                kb = n_below(n_done + waiting.shape[0], self.below_fraction, self.below_cap,
                             self.gamma)
                sp = split(losses, np.zeros(rows, bool), kb, self.linear_forgetting)
            else:
                pending = work.pending[:rows] if self.constant_liar else np.zeros(rows, bool)
                sp = split(work.losses[:rows], pending, k_below, self.linear_forgetting,
                           self.pending_weight)
            ranker = _Ranker(model, refine, groups, space.labels) if refining else None
            point: Point = {}
            for g in groups:
                if not space.is_active(g.labels[0], point):
                    continue
                self._choose(g, work, rows, sp, rng, point, bw, n_cand, ranker,
                             n > 1 or n_pend > 0)
            points.append(point)
            if i + 1 < n:
                for lab, v in point.items():
                    work.values[lab][rows] = float(v)
                work.pending[rows] = True
        return points

    @staticmethod
    def _surrogate(groups: list[Group], work: _Work, n0: int) -> Surrogate:
        """The surrogate, fitted on the (most recent ``MAX_ROWS``) completed trials."""
        done = np.flatnonzero(np.isfinite(work.losses[:n0]))[-MAX_ROWS:]
        if work.n0 < n0:
            x = features(groups, work.values, done)
        else:
            designs = [work.history_rows(g)[0] for g in groups]
            x = design_features(groups, designs, work.values, done)
        return Surrogate(x, work.losses[done])

    def _choose(self, g: Group, work: _Work, rows: int, sp: Split, rng: np.random.Generator,
                point: Point, bw: Bandwidth, n_cand: int, ranker: _Ranker | None,
                batch: bool = False) -> None:
        """Pick the values of group ``g`` for ``point`` (in place)."""
        active = ~np.isnan(work.values[g.labels[0]][:rows])
        keep_b = active[sp.below]
        keep_a = active[sp.above]
        below, above = sp.below[keep_b], sp.above[keep_a]
        xd, xc = self._encode(g, work, np.concatenate([below, above]))
        nb = below.shape[0]
        l_est = fit(g, xd[:nb], xc[:nb], sp.w_below[keep_b], self.prior_weight, bw)
        g_est = fit(g, xd[nb:], xc[nb:], sp.w_above[keep_a], self.prior_weight, bw)
        cn, cc = l_est.sample(n_cand, rng)
        cn, raw = snap(g, cn)
        score = log_ratio(l_est, g_est, cn, cc)
        if self.min_distance > 0 and g.numeric:
            near = self._near_pending(g, work, rows, active, cn, cc)
            if near.any():
                moved = np.flatnonzero(near)
                cn, raw = snap(g, self._push_out(g, work, rows, active, cn, near))
                score[moved] = log_ratio(l_est, g_est, cn[moved], cc[moved])
                # Moved away from one pending point, a candidate may be near another.
                near = self._near_pending(g, work, rows, active, cn, cc)
            if not near.all():
                score = np.where(near, -np.inf, score)
        best = int(np.argmax(score))
        # Trials without a result yet, active in g: this batch's points so far and, with
        # asynchronous workers, the ones still running. Counting both keeps a worker pool
        # that asks for one point at a time from polishing every point (7 pending of 8).
        waiting = np.flatnonzero(work.pending[:rows] & active)
        if ranker is not None:
            exploit = not batch or waiting.shape[0] < self.parallel_polish
            draw = None if exploit or not self.parallel_thompson else rng
            best = ranker.pick(g, score, best, cn, cc, point, rng=draw)
            local = (self._local(g, work, rows, active, cc[best], batch, rng) if g.numeric
                     else None)
            if local is not None:
                cn, raw = snap(g, local[None, :])
                cc = cc[best:best + 1]
                best = 0
            elif batch and exploit and g.numeric:
                cn, cc, raw = self._polish(g, work, rows, active, ranker, point, cn[best],
                                           cc[best], l_est.width, rng)
                best = 0
        for j, d in enumerate(g.numeric):
            point[d.label] = float(raw[best, j])
        for j, c in enumerate(g.categorical):
            point[c.label] = int(c.decode(cc[best:best + 1, j])[0])

    def _polish(self, g: Group, work: _Work, rows: int, active: BoolArray, ranker: _Ranker,
                point: Point, x0: FloatArray, c0: IntArray, width: FloatArray,
                rng: np.random.Generator) -> tuple[FloatArray, IntArray, FloatArray]:
        """The chosen point ``(x0, c0)`` and perturbations of it, the one the surrogate ranks
        best first; returns ``(u, codes, raw)`` with that one in row 0."""
        pert = x0 + rng.normal(size=(self.polish_candidates, x0.shape[0])) * (
            width * self.polish_scale)
        cn, raw = snap(g, np.minimum(np.maximum(np.concatenate([x0[None, :], pert]), g.lo),
                                     g.hi))
        cc = np.repeat(c0[None, :], cn.shape[0], axis=0)
        # Perturbations that would duplicate a pending point are out; x0 itself passed.
        score = np.zeros(cn.shape[0])
        if self.min_distance > 0:
            near = self._near_pending(g, work, rows, active, cn, cc)
            near[0] = False
            score[near] = -np.inf
        i = ranker.pick(g, score, 0, cn, cc, point, top=cn.shape[0])
        return cn[i:i + 1], cc[i:i + 1], raw[i:i + 1]

    def _local(self, g: Group, work: _Work, rows: int, active: BoolArray, c0: IntArray,
               batch: bool, rng: np.random.Generator) -> FloatArray | None:
        """The local step for group ``g`` (``_local.py``) among completed trials with
        categories ``c0``, in the unit encoding; None when this point takes none.

        Sequentially, one point in ``local_every`` (by history length) takes it. With results
        outstanding, each of the first ``parallel_local`` neighbourhood sizes gives a minimum
        and the first that no pending trial is already evaluating is taken: a batch's first
        points get one each, and a worker pool asking for one point at a time gets a new one
        whenever the results moved the minimum or the last one came back. When the first
        size's minimum is being evaluated and is a short step, probes around it
        (``_probe``) come instead of the other sizes' minima.
        """
        if self.local_every == 0 or work.n0 == 0:
            return None
        if not batch and rows % self.local_every:
            return None
        n0 = work.n0
        design, codes = work.history_rows(g)
        done = np.isfinite(work.losses[:n0]) & active[:n0]
        if g.categorical:
            done &= (codes[:n0] == c0[None, :]).all(axis=1)
        dn = len(g.numeric)
        idx = np.flatnonzero(done)
        u = design[idx, :dn]
        # Every trial active in g, this batch's points included, to check the step against.
        seen = np.flatnonzero(active[:rows])
        old = seen[seen < n0]
        seen_u = design[old, :dn]
        if old.shape[0] < seen.shape[0]:
            new = seen[seen >= n0]
            seen_u = np.concatenate([seen_u, np.stack(
                [d.encode(work.values[d.label][new]) for d in g.numeric], axis=1)])
        waiting = work.pending[seen] & ~np.isfinite(work.losses[seen])
        y = work.losses[idx]
        reach = self.min_distance * math.sqrt(g.dim)
        for size in SIZES[:self.parallel_local] if batch else SIZES[:1]:
            key = (id(g), c0.tobytes(), size)
            if key not in work.fits:
                work.fits[key] = quadratic_step(u, y, g.lo, g.hi, size)
            got = work.fits[key]
            if got is None:
                continue
            x: FloatArray = snap(g, got[0][None, :])[0][0]
            radius = got[1]
            gap = np.sqrt(((seen_u - x) ** 2).sum(axis=1))
            short = (size == SIZES[0] and self.parallel_probes > 0 and float(
                np.sqrt(((x - u[int(np.argmin(y))]) ** 2).sum())) < PROBE_GATE * radius)
            # A pending trial within min_distance is a near-duplicate, as for any candidate.
            # Converging, only that: the pending trials around are probes, and a minimum the
            # results moved off the one being evaluated is a new step (in a worker pool,
            # else it would probe around a running step until it came back).
            busy = waiting & (gap < (reach if short else max(GUARD * radius, reach)))
            if busy.any():
                if short:
                    # The first fit's step is being evaluated and is short: probes around
                    # it instead of the larger neighbourhoods' steps (_local.py says why).
                    center = seen_u[np.flatnonzero(busy)[np.argmin(gap[busy])]]
                    return self._probe(g, center, seen_u, seen_u[waiting], reach, rng)
                continue
            if (gap < SAME).any():
                continue
            return x
        return None

    def _probe(self, g: Group, center: FloatArray, seen_u: FloatArray, pending_u: FloatArray,
               reach: float, rng: np.random.Generator) -> FloatArray | None:
        """The next probe around ``center`` (a pending step), or None when it has
        ``parallel_probes`` already or every direction would duplicate a trial."""
        h = PROBE_REACH * reach
        around = np.sqrt(((pending_u - center) ** 2).sum(axis=1)) < 1.5 * h
        if int(around.sum()) - 1 >= self.parallel_probes:
            return None
        for v in probe_directions(center.shape[0], rng):
            x: FloatArray = snap(g, np.minimum(np.maximum(center + h * v, g.lo), g.hi)[None, :]
                                 )[0][0]
            # Clipped or snapped, a probe can land near another point: it must still be one
            # the batch may hold.
            if (np.sqrt(((pending_u - x) ** 2).sum(axis=1)) < reach).any():
                continue
            if (np.sqrt(((seen_u - x) ** 2).sum(axis=1)) < SAME).any():
                continue
            return x
        return None

    @staticmethod
    def _encode(g: Group, work: _Work, rows: IntArray) -> tuple[FloatArray, IntArray]:
        """``rows`` as design rows and codes: the history's from the kept encoding, this
        batch's afresh."""
        if work.n0 == 0:
            return encode_group(g, work.values, rows)
        hd, hc = work.history_rows(g)
        if rows.shape[0] == 0 or int(rows.max()) < work.n0:
            # np.take: half the time of fancy indexing for a (m, F) gather. The rows live in
            # a scratch buffer: the estimators fitted on them do not outlive this group's
            # choice (see _scratch.py for why it matters).
            xd = np.take(hd, rows, axis=0, out=scratch("design_rows", (rows.shape[0],
                                                                       hd.shape[1])))
            return xd, np.take(hc, rows, axis=0)
        old = rows < work.n0
        xd = np.empty((rows.shape[0], g.design_width))
        xc = np.empty((rows.shape[0], len(g.categorical)), dtype=np.intp)
        xd[old], xc[old] = hd[rows[old]], hc[rows[old]]
        xd[~old], xc[~old] = encode_group(g, work.values, rows[~old])
        return xd, xc

    def _push_out(self, g: Group, work: _Work, rows: int, active: BoolArray, cn: FloatArray,
                  near: BoolArray) -> FloatArray:
        """Move the ``near`` candidates radially away from their nearest pending point to just
        beyond ``min_distance``, in place of discarding them.

        Late in a run most candidates from ``l`` fall near the batch's first points; discarded,
        the rest of the batch would come from the few far candidates. Moved to the radius, they
        probe the incumbent's neighbourhood instead, which measured 10-50% lower regret at batch
        size 8 (200 held-out seeds).
        """
        pend = np.flatnonzero(work.pending[:rows] & active)
        idx = np.flatnonzero(near)
        pu = np.empty((pend.shape[0], len(g.numeric)))
        for j, d in enumerate(g.numeric):
            pu[:, j] = d.encode(work.values[d.label][pend])
        diff = cn[idx][:, None, :] - pu[None, :, :]
        nearest = np.argmin((diff ** 2).sum(axis=2), axis=1)
        vec = diff[np.arange(idx.shape[0]), nearest]
        norm = np.sqrt((vec ** 2).sum(axis=1))
        flat = norm <= 1e-12
        if flat.any():
            # A candidate exactly on a pending point has no direction: use the first axis.
            vec[flat] = 0.0
            vec[flat, 0] = 1.0
            norm[flat] = 1.0
        # 5% beyond the radius, so that snapping to a quantisation grid rarely pulls it back.
        reach = self.min_distance * np.sqrt(g.dim) * 1.05
        out: FloatArray = np.array(cn, dtype=np.float64)
        out[idx] = np.minimum(np.maximum(pu[nearest] + vec * (reach / norm)[:, None], g.lo),
                              g.hi)
        return out

    def _near_pending(self, g: Group, work: _Work, rows: int, active: BoolArray,
                      cn: FloatArray, cc: IntArray) -> BoolArray:
        """Candidates closer than ``min_distance`` to a pending point active in ``g``."""
        pend = np.flatnonzero(work.pending[:rows] & active)
        if pend.shape[0] == 0:
            return np.zeros(cn.shape[0], dtype=bool)
        d2 = np.zeros((cn.shape[0], pend.shape[0]))
        for j, d in enumerate(g.numeric):
            pu = d.encode(work.values[d.label][pend])
            d2 += (cn[:, j:j + 1] - pu[None, :]) ** 2
        for j, c in enumerate(g.categorical):
            pc = c.encode(work.values[c.label][pend])
            d2 += cc[:, j:j + 1] != pc[None, :]
        return np.asarray((d2 < self.min_distance ** 2 * g.dim).any(axis=1))
