"""Tree-structured Parzen Estimator: ``tpe.suggest`` for ``fmin`` and the ``TPESampler`` class.

``functools.partial(tpe.suggest, n_startup_jobs=20, gamma=0.25)`` works as in hyperopt; the
settings are the keyword arguments of :class:`TPESampler`.
"""

from __future__ import annotations

from parzen.samplers._base import as_algo
from parzen.samplers.tpe._sampler import TPESampler

suggest = as_algo(TPESampler)

__all__ = ["TPESampler", "suggest"]
