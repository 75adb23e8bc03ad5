"""Random search: independent draws from the prior."""

from __future__ import annotations

import numpy as np

from parzen.samplers._base import Point, as_algo
from parzen.samplers._history import History
from parzen.samplers._prior import sample_prior, to_points
from parzen.space import Space


class RandomSampler:
    """Draws every point independently from the space's prior."""

    def suggest(self, space: Space, history: History, n: int,
                rng: np.random.Generator) -> list[Point]:
        return to_points(space, sample_prior(space, n, rng))


suggest = as_algo(RandomSampler, __name__)
