"""Tree-structured Parzen Estimator: ``tpe.suggest`` for ``fmin`` and the ``TPESampler`` class.

``functools.partial(tpe.suggest, n_startup_jobs=20, gamma=0.25)`` works as in hyperopt; the
settings are the keyword arguments of :class:`TPESampler`.
"""

from __future__ import annotations

from parzen.samplers._base import as_algo
from parzen.samplers.tpe import _rows, _scratch
from parzen.samplers.tpe._sampler import TPESampler

suggest = as_algo(TPESampler)


def reset_caches() -> None:
    """Drop what the TPE keeps between suggestions in this process: the history's encoded
    rows (about 270 bytes per trial) and this thread's scratch buffers (about 650 bytes per
    trial of the largest history seen). The next suggestion rebuilds them; results do not
    change. For memory measurements, and for a long-lived process that is done with a large
    experiment."""
    _rows.clear()
    _scratch.clear()


__all__ = ["TPESampler", "reset_caches", "suggest"]
