"""Simulated-annealing-style search: perturb one of the best trials, with a neighbourhood that
shrinks as the history grows."""

from __future__ import annotations

import numpy as np

from parzen import validation
from parzen.samplers._base import Point, as_algo
from parzen.samplers._history import History
from parzen.samplers._prior import quantize, sample_param, to_points
from parzen.space import Choice, Normal, RandInt, Space, Uniform


class AnnealSampler:
    """Samples near good trials.

    Each new point picks a parent among the best trials (rank-weighted), then moves every
    numeric parameter by a Gaussian step whose width shrinks like ``1 / (1 + n * shrink)``,
    and resamples each categorical from the prior with a probability that shrinks likewise.

    Args:
        avg_best_idx: mean rank of the parent among trials sorted by loss (geometric law).
        shrink_coef: how fast the neighbourhood narrows with the number of finished trials.
        n_startup_jobs: random trials before annealing starts.
    """

    def __init__(self, avg_best_idx: float = 2.0, shrink_coef: float = 0.1,
                 n_startup_jobs: int = 5) -> None:
        self.avg_best_idx = validation.number("avg_best_idx", avg_best_idx, low=0,
                                              low_open=True, who="anneal")
        self.shrink_coef = validation.number("shrink_coef", shrink_coef, low=0, who="anneal")
        self.n_startup_jobs = validation.integer("n_startup_jobs", n_startup_jobs, 0,
                                                 who="anneal")

    def suggest(self, space: Space, history: History, n: int,
                rng: np.random.Generator) -> list[Point]:
        done = np.flatnonzero(history.completed)
        cols: dict[str, np.ndarray] = {}
        if done.size < max(1, self.n_startup_jobs):
            for p in space.params:
                cols[p.label] = sample_param(p, n, rng)
            return to_points(space, cols)
        order = done[np.argsort(history.losses[done], kind="stable")]
        # Geometric ranks: the best trial is the most likely parent.
        ranks = np.minimum(rng.geometric(1.0 / self.avg_best_idx, size=n) - 1, order.size - 1)
        parents = order[ranks]
        scale = 1.0 / (1.0 + done.size * self.shrink_coef)
        for p in space.params:
            prior = sample_param(p, n, rng)
            parent_vals = history.values[p.label][parents]
            missing = np.isnan(parent_vals)  # parent had this parameter inactive
            if isinstance(p, (Choice, RandInt)):
                keep = rng.uniform(size=n) > scale
                out = np.where(keep & ~missing, parent_vals, prior)
            else:
                assert isinstance(p, (Uniform, Normal))
                out = self._perturb(p, parent_vals, scale, rng)
                out = np.where(missing, prior, out)
            cols[p.label] = out
        return to_points(space, cols)

    @staticmethod
    def _perturb(p: Uniform | Normal, vals: np.ndarray, scale: float,
                 rng: np.random.Generator) -> np.ndarray:
        if isinstance(p, Uniform):
            lo, hi = p.low, p.high
            x = np.log(np.maximum(vals, 1e-300)) if p.log else vals
            x = x + rng.normal(0.0, (hi - lo) * scale, size=vals.shape)
            # Reflect into range rather than clip, so the bounds do not collect mass.
            span = hi - lo
            x = lo + np.abs(np.mod(x - lo + span, 2 * span) - span)
            x = np.clip(x, lo, hi)
        else:
            x = np.log(np.maximum(vals, 1e-300)) if p.log else vals
            x = x + rng.normal(0.0, p.sigma * scale, size=vals.shape)
        if p.log:
            x = np.exp(x)
        out: np.ndarray = quantize(x, p.q)
        if isinstance(p, Uniform) and p.q is not None and not p.log:
            # Quantisation can step past the bounds by q/2, as the prior's does.
            out = np.clip(out, quantize(np.array([p.low]), p.q)[0],
                          quantize(np.array([p.high]), p.q)[0])
        return out


suggest = as_algo(AnnealSampler, __name__)

__all__ = ["AnnealSampler", "suggest"]
