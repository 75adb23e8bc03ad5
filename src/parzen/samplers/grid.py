"""Grid search over finite spaces: every combination once, then exhaustion.

A space is finite when every parameter is a choice, a randint or a quantised uniform
(``quniform``, ``qloguniform``, ``uniformint``). Conditional spaces enumerate only the active
combinations. Points already in the history (finished or pending) are never proposed again.
``functools.partial(grid.suggest, grid_seed=3, shuffle=False)`` sets the visiting order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from parzen import validation
from parzen.exceptions import SpaceError
from parzen.samplers._base import Point, as_algo
from parzen.samplers._history import History
from parzen.space import Choice, Param, RandInt, Space, Uniform

MAX_GRID_POINTS = 1_000_000


def grid_values(p: Param) -> list[Any]:
    """The finite list of raw values a parameter can take.

    Raises:
        SpaceError: the parameter is continuous or unbounded.
    """
    if isinstance(p, Choice):
        return list(range(len(p.options)))
    if isinstance(p, RandInt):
        return list(range(p.low, p.high))
    if isinstance(p, Uniform) and p.q is not None:
        lo, hi = (math.exp(p.low), math.exp(p.high)) if p.log else (p.low, p.high)
        first, last = round(lo / p.q), round(hi / p.q)
        if last - first + 1 > MAX_GRID_POINTS:
            raise SpaceError(f"grid search: {p.kind}({p.label!r}) has {last - first + 1} "
                             f"values, more than {MAX_GRID_POINTS}; use a larger q")
        return [float(k * p.q) for k in range(first, last + 1)]
    raise SpaceError(
        f"grid search needs a finite space, but {p.kind}({p.label!r}) is continuous; use "
        "hp.choice, hp.randint, hp.quniform or hp.uniformint, or another algorithm"
    )


def enumerate_grid(space: Space) -> list[Point]:
    """Every active combination of the space's values, in a fixed order."""
    values = {p.label: grid_values(p) for p in space.params}
    out: list[Point] = []

    def walk(i: int, point: Point) -> Iterator[Point]:
        if i == len(space.params):
            yield dict(point)
            return
        p = space.params[i]
        if not space.is_active(p.label, point):
            yield from walk(i + 1, point)
            return
        for v in values[p.label]:
            point[p.label] = v
            yield from walk(i + 1, point)
        del point[p.label]

    for pt in walk(0, {}):
        out.append(pt)
        if len(out) > MAX_GRID_POINTS:
            raise SpaceError(f"grid search: the space has more than {MAX_GRID_POINTS} points; "
                             "coarsen it or use tpe.suggest")
    return out


def _key(point: Point) -> tuple[tuple[str, float], ...]:
    return tuple(sorted((k, round(float(v), 9)) for k, v in point.items()))


class GridSampler:
    """Proposes untried grid points in a seeded, shuffled order.

    Args:
        seed: fixes the visiting order (the order must not change between calls, so it does
            not come from the per-call generator).
        shuffle: visit in a random order (default) or in enumeration order.
    """

    def __init__(self, seed: int = 0, shuffle: bool = True) -> None:
        # numpy refuses negative seeds, so they are refused here, where the name is known.
        self.seed = validation.integer("seed", seed, 0, who="grid")
        self.shuffle = shuffle
        self._cache: tuple[str, list[Point]] | None = None

    def _grid(self, space: Space) -> list[Point]:
        fp = space.fingerprint()
        if self._cache is None or self._cache[0] != fp:
            pts = enumerate_grid(space)
            if self.shuffle:
                order = np.random.default_rng(self.seed).permutation(len(pts))
                pts = [pts[i] for i in order]
            self._cache = (fp, pts)
        return self._cache[1]

    def suggest(self, space: Space, history: History, n: int,
                rng: np.random.Generator) -> list[Point]:
        tried = set()
        for i in range(history.n):
            row = {lab: col[i] for lab, col in history.values.items() if not np.isnan(col[i])}
            tried.add(_key(row))
        out: list[Point] = []
        for pt in self._grid(space):
            if len(out) == n:
                break
            if _key(pt) not in tried:
                out.append(pt)
        return out


_shared: dict[tuple[int, bool], GridSampler] = {}


def _grid_sampler(grid_seed: int = 0, shuffle: bool = True) -> GridSampler:
    # The setting is not called ``seed``: that name is the per-call argument of hyperopt's
    # ``suggest(new_ids, domain, trials, seed)``, so ``partial(grid.suggest, seed=3)`` could
    # never be called. One sampler per setting keeps the enumerated grid cached across calls.
    key = (grid_seed, shuffle)
    if key not in _shared:
        _shared[key] = GridSampler(grid_seed, shuffle)
    return _shared[key]


suggest = as_algo(_grid_sampler, __name__)

__all__ = ["GridSampler", "enumerate_grid", "grid_values", "suggest"]
