"""Runners get NEW trials evaluated. The coordinator loop is the same for all of them.

One module (or package) per way of running trials, each behind the ``Runner`` protocol
(``base.py``): ``inline`` (in this process, ``Trials``), ``local`` (local sandbox processes,
``ParallelTrials``) and ``celery`` (Celery workers over a shared MongoDB, ``MongoTrials``).
``build_runner`` picks one from the backend the trials ask for.
"""

from __future__ import annotations

from parzen.backends import Backend, CeleryBackend, InlineBackend, LocalBackend
from parzen.domain import Domain
from parzen.pruners import Pruner
from parzen.runners.base import Closing, Runner
from parzen.runners.celery import CeleryRunner
from parzen.runners.inline import InlineRunner
from parzen.runners.local import LocalProcessRunner
from parzen.trials import Trials


def build_runner(backend: Backend, trials: Trials, domain: Domain, *,
                 catch_eval_exceptions: bool, max_evals: int | None,
                 pruner: Pruner | None = None) -> Runner:
    """The runner for ``backend`` (what ``trials.backend()`` returned).

    Args:
        catch_eval_exceptions: inline only: record the objective's exception and go on,
            instead of raising it (hyperopt's flag; other runners always record).
        max_evals: the run's budget, for the experiment document (None: none).
        pruner: stops trials whose reports say they are hopeless (None: none).
    Raises:
        ConfigError: the backend's settings cannot work (no broker, no key, ...).
    """
    if isinstance(backend, InlineBackend):
        return InlineRunner(domain, trials, catch_eval_exceptions, pruner)
    if isinstance(backend, LocalBackend):
        return LocalProcessRunner(trials, domain, backend, pruner)
    if isinstance(backend, CeleryBackend):
        return CeleryRunner(trials, domain, backend, max_evals, pruner)
    raise TypeError(f"no runner for backend {backend!r}")


__all__ = ["Closing", "Runner", "build_runner"]
