"""Trials without a result yet: how they enter the split, and how far new points keep from them.

A batch is built one point at a time, each added as pending before the next is chosen, and
with asynchronous workers some trials are still running. Such a trial is either *believed*:
given the loss the surrogate predicts for it and split like a completed trial (the "kriging
believer" of Ginsbourger, Le Riche and Carraro, "Kriging is well-suited to parallelize
optimization", 2010), or counted as bad (their "constant liar", with the worst loss), at a
reduced kernel weight. Either way the batch follows the model as sequential TPE would follow
real results, instead of piling onto the incumbent.

Candidates closer than ``min_distance`` to a pending point are moved out to that distance
(``push_out``) or, if they are then near another one, discarded (``near_pending``), so that a
batch holds no near-duplicates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from parzen.samplers.tpe._split import Split, split
from parzen.samplers.tpe._surrogate import features

if TYPE_CHECKING:
    from parzen.samplers.tpe._encode import Group
    from parzen.samplers.tpe._proposal import ProposalSettings
    from parzen.samplers.tpe._surrogate import Surrogate
    from parzen.samplers.tpe._work import Pick, Turn

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class PendingSettings:
    """How pending trials are treated (``TPESampler(believer=..., ...)``).

    Attributes:
        believer: fantasise pending trials' losses with the surrogate (kriging believer,
            Ginsbourger et al., 2010) and split them like completed trials. Default True.
        constant_liar: without ``believer``, count pending trials as bad (a constant liar
            with the worst loss, Ginsbourger et al., 2010); else ignore them. Default True.
        pending_weight: kernel weight of a pending trial in the bad group, relative to a
            completed trial's (constant liar only). Default 0.3.
        min_distance: normalised distance (per dimension, ranges scaled to 1, a categorical
            mismatch counting 1) under which a candidate duplicates a pending point; 0
            disables. Default 0.01.
    """

    believer: bool = True
    constant_liar: bool = True
    pending_weight: float = 0.3
    min_distance: float = 0.01


def split_rows(settings: PendingSettings, proposal: ProposalSettings, turn: Turn,
               believe: tuple[Surrogate, Sequence[Group]] | None) -> Split:
    """The good/bad split of the rows before ``turn``'s point.

    With ``believe`` (the surrogate and the groups of its features), pending rows get the
    loss it predicts and count as completed; otherwise they are constant liars (or ignored).
    """
    work, rows, waiting = turn.work, turn.rows, turn.waiting
    n_done = work.n_done
    if believe is not None and waiting.shape[0] > 0:
        model, groups = believe
        losses = work.losses[:rows].copy()
        losses[waiting] = model.predict(features(groups, work.values, waiting))
        return split(losses, np.zeros(rows, bool), proposal.n_below(n_done + waiting.shape[0]),
                     proposal.linear_forgetting)
    pending = work.pending[:rows] if settings.constant_liar else np.zeros(rows, bool)
    return split(work.losses[:rows], pending, proposal.n_below(n_done),
                 proposal.linear_forgetting, settings.pending_weight)


def near_pending(pick: Pick, u: FloatArray, codes: IntArray) -> BoolArray:
    """Candidates ``(u, codes)`` closer than ``min_distance`` to a pending point active in
    the group."""
    if pick.waiting.shape[0] == 0:
        return np.zeros(u.shape[0], dtype=bool)
    g, work, pend = pick.g, pick.work, pick.waiting
    d2 = np.zeros((u.shape[0], pend.shape[0]))
    for j in range(len(g.numeric)):
        d2 += (u[:, j:j + 1] - pick.waiting_u[None, :, j]) ** 2
    for j, c in enumerate(g.categorical):
        pc = c.encode(work.values[c.label][pend])
        d2 += codes[:, j:j + 1] != pc[None, :]
    return np.asarray((d2 < pick.min_distance ** 2 * g.dim).any(axis=1))


def push_out(pick: Pick, u: FloatArray, near: BoolArray) -> FloatArray:
    """``u`` with the ``near`` candidates moved radially away from their nearest pending point
    to just beyond ``min_distance``, in place of discarding them.

    Late in a run most candidates from ``l`` fall near the batch's first points; discarded,
    the rest of the batch would come from the few far candidates. Moved to the radius, they
    probe the incumbent's neighbourhood instead (``bench/README.md``, "TPE settings").
    """
    g = pick.g
    pu = pick.waiting_u
    idx = np.flatnonzero(near)
    diff = u[idx][:, None, :] - pu[None, :, :]
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
    reach = pick.min_distance * np.sqrt(g.dim) * 1.05
    out: FloatArray = np.array(u, dtype=np.float64)
    out[idx] = np.minimum(np.maximum(pu[nearest] + vec * (reach / norm)[:, None], g.lo), g.hi)
    return out
