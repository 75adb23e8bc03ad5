"""Batch polish: the first points of a batch take a fine step the surrogate chooses.

A batch learns from many results at once but gets few rounds, and its points must stay
``min_distance`` apart, so it takes the fine steps a sequential run takes one at a time less
often. While fewer than ``parallel_polish`` trials are pending, the chosen point is
polished: the surrogate also ranks random perturbations of it (same categories, each numeric
``u`` moved by a normal draw of ``polish_scale`` times the good density's kernel width) and
the best prediction is proposed. Sequentially this made the search greedy, so it applies only
with results outstanding (``bench/README.md``, "TPE settings", has the figures).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from parzen.samplers.tpe._encode import snap
from parzen.samplers.tpe._failures import Screen
from parzen.samplers.tpe._pending import near_pending
from parzen.samplers.tpe._rerank import Ranker
from parzen.samplers.tpe._work import Candidates, Pick

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


@dataclass(frozen=True)
class PolishSettings:
    """Polishing a batch's first points (``TPESampler(parallel_polish=..., ...)``).

    Attributes:
        parallel_polish: while fewer trials than this are pending (the first points of each
            batch), the chosen point is polished; 0 turns polishing off. Default 2.
        polish_candidates: perturbations the surrogate ranks when polishing. Default 32.
        polish_scale: their size, relative to the good density's kernel widths. Default 0.5.
    """

    parallel_polish: int = 2
    polish_candidates: int = 32
    polish_scale: float = 0.5

    def applies(self, n_waiting: int) -> bool:
        """Whether a point chosen with ``n_waiting`` trials pending is polished."""
        return n_waiting < self.parallel_polish


def polish(settings: PolishSettings, pick: Pick, ranker: Ranker, start: Candidates,
           width: FloatArray) -> Candidates:
    """The chosen point ``start`` (one row) and perturbations of it of ``width`` (the good
    density's kernel widths) times ``polish_scale``; the one the surrogate ranks best, as
    one row."""
    g = pick.g
    x0, c0 = start.u[0], start.codes[0]
    pert = x0 + pick.rng.normal(size=(settings.polish_candidates, x0.shape[0])) * (
        width * settings.polish_scale)
    cn, raw = snap(g, np.minimum(np.maximum(np.concatenate([x0[None, :], pert]), g.lo),
                                 g.hi))
    cc = np.repeat(c0[None, :], cn.shape[0], axis=0)
    # Perturbations that would duplicate a pending point are out; x0 itself passed.
    score = np.zeros(cn.shape[0])
    if pick.min_distance > 0:
        near = near_pending(pick, cn, cc)
        near[0] = False
        score[near] = -np.inf
    screen = Screen.of(pick)
    if screen is not None:
        # The surrogate smooths over a crash region's edge: moves towards a failed trial
        # are out (_failures.py); x0, the proposal's own choice, stays.
        off = ~screen.passes(cn, cc)
        off[0] = False
        score[off] = -np.inf
    cands = Candidates(cn, cc, raw, score)
    i = ranker.pick(g, cands, 0, pick.point, top=cn.shape[0])
    return Candidates(cn[i:i + 1], cc[i:i + 1], raw[i:i + 1], score[i:i + 1])
