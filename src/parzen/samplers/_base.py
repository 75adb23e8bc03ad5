"""The sampler protocol and the adaptor to hyperopt's ``suggest(new_ids, domain, trials, seed)``.

A sampler is a pure function of the space, the history and a random generator. Everything
hyperopt-shaped (domains, trial documents) is converted here, at the edge.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from parzen.samplers._history import History
from parzen.space import Space

Point = dict[str, Any]


class Sampler(Protocol):
    """Proposes new points.

    ``suggest`` must not keep state between calls that changes its answer: the same space,
    history and generator state give the same points. Pending trials in ``history`` (no loss
    yet) are points already handed out; a sampler should avoid proposing them again.
    """

    def suggest(self, space: Space, history: History, n: int,
                rng: np.random.Generator) -> list[Point]:
        """Return up to ``n`` new points as ``{label: raw value}`` with only active labels.

        Returning fewer than ``n`` (possibly none) means the sampler is exhausted.
        """
        ...


def hyperopt_suggest(sampler: Sampler, new_ids: Sequence[int], domain: Any, trials: Any,
                     seed: int) -> list[dict[str, Any]]:
    """Run ``sampler`` behind hyperopt's algorithm signature and return trial documents,
    each with the sampler's name as its ``origin`` (``TPESampler`` gives ``"tpe"``)."""
    space: Space = domain.space
    history: History = trials.history(space)
    rng = np.random.default_rng(seed)
    points = sampler.suggest(space, history, len(new_ids), rng)
    origin = type(sampler).__name__.removesuffix("Sampler").lower() or "sampler"
    docs: list[dict[str, Any]] = trials.docs_for_points(list(new_ids)[: len(points)], points,
                                                        origin=origin)
    return docs


def as_algo(make: Callable[..., Sampler]) -> Callable[..., list[dict[str, Any]]]:
    """Build a module-level ``suggest(new_ids, domain, trials, seed, **settings)``.

    Settings are passed to the sampler's constructor, so ``functools.partial(tpe.suggest,
    n_startup_jobs=20)`` works as it does in hyperopt.
    """

    def suggest(new_ids: Sequence[int], domain: Any, trials: Any, seed: int,
                **settings: Any) -> list[dict[str, Any]]:
        return hyperopt_suggest(make(**settings), new_ids, domain, trials, seed)

    suggest.__doc__ = (
        f"Suggest points with {getattr(make, '__name__', 'the sampler')}; hyperopt's call "
        "shape. Keyword settings go to the sampler's constructor."
    )
    suggest.sampler_factory = make  # type: ignore[attr-defined]
    return suggest
