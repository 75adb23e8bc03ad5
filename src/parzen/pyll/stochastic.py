"""``sample(space, rng=...)``: one random value of a whole space, as hyperopt's
``hyperopt.pyll.stochastic.sample`` gives it.

Every label is drawn from its prior (the draws of ``rand.suggest``), inactive branches are
dropped, and the space's expressions are evaluated on the result; unlabelled random
functions (``scope.normal(0, 1)``) draw from the same generator.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from parzen.exceptions import ConfigError
from parzen.pyll.base import (
    categorical,
    lognormal,
    loguniform,
    normal,
    qlognormal,
    qloguniform,
    qnormal,
    quniform,
    randint,
    uniform,
)
from parzen.samplers import sample_prior, to_points
from parzen.space import compile_space, space_eval

__all__ = ["categorical", "lognormal", "loguniform", "normal", "qlognormal", "qloguniform",
           "qnormal", "quniform", "randint", "sample", "uniform"]


def sample(expr: Any, rng: np.random.Generator | None = None, **kwargs: Any) -> Any:
    """A random value of the space ``expr``.

    Args:
        expr: a search space (``hp`` nodes, expressions, containers of them).
        rng: a ``numpy.random.Generator``; a fresh one when None.

    Raises:
        ConfigError: ``rng`` is not a Generator.
        SpaceError: the space is malformed.
        ExpressionError: one of its expressions raised for the values drawn.
    """
    if kwargs:
        raise ConfigError(f"sample() takes the space and rng= only, got {sorted(kwargs)}")
    if rng is None:
        rng = np.random.default_rng()
    elif not isinstance(rng, np.random.Generator):
        raise ConfigError(f"rng must be a numpy Generator (np.random.default_rng(seed)), "
                          f"got {rng!r}")
    space = compile_space(expr)
    point = to_points(space, sample_prior(space, 1, rng))[0] if space.params else {}
    return space_eval(space, point, rng=rng)
