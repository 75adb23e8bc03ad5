"""The sampler protocol and the adaptor to hyperopt's ``suggest(new_ids, domain, trials, seed)``.

A sampler is a pure function of the space, the history and a random generator. Everything
hyperopt-shaped (domains, trial documents) is converted here, at the edge.
"""

from __future__ import annotations

import functools
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


def origin_of(sampler: Sampler) -> str:
    """The name a trial's ``origin`` gives ``sampler`` (``TPESampler`` gives ``"tpe"``)."""
    return type(sampler).__name__.removesuffix("Sampler").lower() or "sampler"


def sampler_for(algo: Callable[..., Any]) -> Sampler | None:
    """The parzen sampler behind ``algo`` (``tpe.suggest``, or a ``functools.partial`` of it
    with keyword settings), built once; None for any other algorithm. The coordinator then
    asks it for points directly, with no hyperopt documents in between."""
    settings: dict[str, Any] = {}
    if isinstance(algo, functools.partial):
        if algo.args:
            return None
        settings = dict(algo.keywords)
        algo = algo.func
    if not isinstance(algo, SamplerAlgo):
        return None
    sampler: Sampler = algo.make(**settings)
    return sampler


def hyperopt_suggest(sampler: Sampler, new_ids: Sequence[int], domain: Any, trials: Any,
                     seed: int) -> list[dict[str, Any]]:
    """Run ``sampler`` behind hyperopt's algorithm signature and return trial documents,
    each with the sampler's name as its ``origin``. Only hyperopt-style callers that call
    ``tpe.suggest`` themselves come through here; fmin asks the sampler directly."""
    space: Space = domain.space
    history: History = trials.history(space)
    rng = np.random.default_rng(seed)
    points = sampler.suggest(space, history, len(new_ids), rng)
    docs: list[dict[str, Any]] = trials.docs_for_points(list(new_ids)[: len(points)], points,
                                                        origin=origin_of(sampler))
    return docs


class SamplerAlgo:
    """A sampler behind hyperopt's algorithm signature: ``tpe.suggest(new_ids, domain,
    trials, seed, **settings)``.

    Settings are passed to the sampler's constructor, so ``functools.partial(tpe.suggest,
    n_startup_jobs=20)`` works as it does in hyperopt. ``fmin`` recognises it and builds the
    sampler once per run instead (``sampler_for``).
    """

    def __init__(self, make: Callable[..., Sampler], name: str) -> None:
        self.make = make
        self.__name__ = "suggest"
        self.__qualname__ = "suggest"
        self.__module__ = name
        self.__doc__ = (f"Suggest points with {getattr(make, '__name__', 'the sampler')}; "
                        "hyperopt's call shape. Keyword settings go to the sampler's "
                        "constructor.")

    def __call__(self, new_ids: Sequence[int], domain: Any, trials: Any, seed: int,
                 **settings: Any) -> list[dict[str, Any]]:
        return hyperopt_suggest(self.make(**settings), new_ids, domain, trials, seed)

    def __repr__(self) -> str:
        return f"<{self.__module__}.suggest>"


def as_algo(make: Callable[..., Sampler], name: str = "") -> SamplerAlgo:
    """The module-level ``suggest`` of the sampler module ``name`` (its ``__name__``; by
    default the module that defines ``make``)."""
    return SamplerAlgo(make, name or getattr(make, "__module__", "parzen.samplers"))
