"""Runners get NEW trials evaluated. The coordinator loop is the same for all of them.

One module (or package) per way of running trials, each behind the ``Runner`` protocol
(``base.py``): ``inline`` (in this process, ``Trials``), ``local`` (local sandbox processes,
``ParallelTrials``), ``celery`` (Celery workers over a shared MongoDB, ``MongoTrials``)
and ``spark`` (long-lived Spark tasks on a Spark session's executors, ``SparkTrials``).
``build_runner`` picks one from the backend the trials ask for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from parzen.backends import Backend, CeleryBackend, InlineBackend, LocalBackend, SparkBackend
from parzen.domain import Domain
from parzen.pruners import Pruner
from parzen.runners.base import Closing, Runner
from parzen.runners.celery import CeleryRunner
from parzen.runners.inline import InlineRunner
from parzen.runners.local import LocalProcessRunner
from parzen.runners.spark import SparkRunner, run_settings
from parzen.trials import Trials

if TYPE_CHECKING:  # the coordinator imports the runners package; only a type is needed
    from parzen.coordinator import RunSettings


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
    if isinstance(backend, SparkBackend):
        return SparkRunner(trials, domain, backend, max_evals, pruner)
    raise TypeError(f"no runner for backend {backend!r}")


def prepare_settings(backend: Backend, settings: RunSettings) -> RunSettings:
    """fmin's settings, completed by what the backend's trials object says about the run
    (``SparkTrials(timeout=..., loss_threshold=...)``, hyperopt's arguments)."""
    if isinstance(backend, SparkBackend):
        return run_settings(backend, settings)
    return settings


__all__ = ["Closing", "Runner", "build_runner", "prepare_settings"]
