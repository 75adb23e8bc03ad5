"""Tree-structured Parzen Estimator: ``tpe.suggest`` for ``fmin`` and the ``TPESampler`` class.

``functools.partial(tpe.suggest, n_startup_jobs=20, gamma=0.25)`` works as in hyperopt; the
settings are the keyword arguments of :class:`TPESampler`, grouped by part in
:class:`TPESettings`.
"""

from __future__ import annotations

from parzen.samplers._base import as_algo
from parzen.samplers._history import History
from parzen.samplers.tpe._local import LocalSettings
from parzen.samplers.tpe._pending import PendingSettings
from parzen.samplers.tpe._polish import PolishSettings
from parzen.samplers.tpe._prior import PriorSettings
from parzen.samplers.tpe._probes import ProbeSettings
from parzen.samplers.tpe._proposal import ProposalSettings
from parzen.samplers.tpe._rerank import RerankSettings
from parzen.samplers.tpe._sampler import TPESampler, TPESettings
from parzen.samplers.tpe._state import TPEState

suggest = as_algo(TPESampler, __name__)


def reset_caches(history: History) -> None:
    """Drop what the TPE keeps with ``history`` between suggestions: the encoded rows (about
    270 bytes per trial) and the scratch buffers (about 650 bytes per trial of the largest
    history seen). The next suggestion rebuilds them; results do not change.

    For memory measurements, and for a long-lived process that is done with a large
    experiment but keeps its trials. ``Trials.history(space)`` gives the history; what is
    kept goes anyway with the history's builder, which ``Trials`` rebuilds when the space
    changes.

    Args:
        history: a history from ``Trials.history`` or ``HistoryBuilder.view``; one built by
            hand keeps nothing, and is left alone.
    """
    if history.memo is not None:
        history.memo.drop(TPEState)


__all__ = [
    "LocalSettings",
    "PendingSettings",
    "PolishSettings",
    "PriorSettings",
    "ProbeSettings",
    "ProposalSettings",
    "RerankSettings",
    "TPESampler",
    "TPESettings",
    "reset_caches",
    "suggest",
]
