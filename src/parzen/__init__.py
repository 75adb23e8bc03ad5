"""parzen: distributed hyperparameter optimisation with hyperopt's API.

Change ``hyperopt`` to ``parzen`` in the import lines (``from parzen import fmin, hp``,
``from parzen.pyll import scope``, ``import parzen.pyll.stochastic``,
``from parzen.base import Trials``); the code stays the same. ``Trials`` runs in-process;
``ParallelTrials`` uses local worker processes; ``MongoTrials`` distributes trials to Celery
workers through MongoDB; ``SparkTrials`` runs them as tasks on a Spark cluster.

The API loads on first use: ``import parzen`` alone imports nothing heavy, so that the
``parzen`` command (``parzen.cli``, a subpackage) starts without numpy, scipy, pymongo and
Celery. The first read of any name below (``parzen.fmin``, ``from parzen import hp``) imports
the whole API, as hyperopt's package does on import, ``parzen.pyll.stochastic`` included.
"""

from __future__ import annotations

import importlib
import sys
import types
import typing

from parzen.version import __version__

if typing.TYPE_CHECKING:  # for type checkers; at run time, _load() binds the same names
    from parzen import anneal, base, exceptions, hp, progress, pruners, pyll, rand, tpe
    from parzen.domain import Domain
    from parzen.early_stop import no_progress_loss
    from parzen.exceptions import (
        AllTrialsFailed,
        BadSearchSpace,
        ConfigError,
        DuplicateLabel,
        ExpressionError,
        InvalidAnnotatedParameter,
        InvalidDistribution,
        InvalidLoss,
        InvalidReport,
        InvalidResult,
        InvalidResultStatus,
        InvalidTrial,
        ParzenError,
        ReportOutsideTrial,
        SpaceError,
        UnsupportedExpression,
    )
    from parzen.fmin import fmin
    from parzen.mongoexp import MongoTrials
    from parzen.parallel import ParallelTrials
    from parzen.reporting import TrialHandle, TrialPruned, report
    from parzen.samplers import grid
    from parzen.space import space_eval
    from parzen.spark import SparkTrials
    from parzen.trial import (
        STATUS_FAIL,
        STATUS_NEW,
        STATUS_OK,
        STATUS_RUNNING,
        STATUS_STRINGS,
    )
    from parzen.trials import (
        JOB_STATE_CANCEL,
        JOB_STATE_DONE,
        JOB_STATE_ERROR,
        JOB_STATE_NEW,
        JOB_STATE_RUNNING,
        JOB_STATES,
        Trials,
        generate_trials_to_calculate,
        trials_from_docs,
    )

# Public names bound on first use: submodules re-exported as they are (``parzen.hp``), and
# names defined in a module (``fmin`` in ``parzen.fmin``). tests/test_architecture.py reads
# these module names as imports of this package; tests/test_public_api.py checks the names
# against __all__.
_MODULES: dict[str, str] = {
    "anneal": "parzen.anneal", "base": "parzen.base", "exceptions": "parzen.exceptions",
    "grid": "parzen.samplers.grid", "hp": "parzen.hp", "progress": "parzen.progress",
    "pruners": "parzen.pruners", "pyll": "parzen.pyll", "rand": "parzen.rand", "tpe": "parzen.tpe",
}
_NAMES: dict[str, str] = {
    "Domain": "parzen.domain", "no_progress_loss": "parzen.early_stop",
    "AllTrialsFailed": "parzen.exceptions", "BadSearchSpace": "parzen.exceptions",
    "ConfigError": "parzen.exceptions", "DuplicateLabel": "parzen.exceptions",
    "ExpressionError": "parzen.exceptions",
    "InvalidAnnotatedParameter": "parzen.exceptions",
    "InvalidDistribution": "parzen.exceptions", "InvalidLoss": "parzen.exceptions",
    "InvalidReport": "parzen.exceptions", "ReportOutsideTrial": "parzen.exceptions",
    "InvalidResult": "parzen.exceptions", "InvalidResultStatus": "parzen.exceptions",
    "InvalidTrial": "parzen.exceptions", "ParzenError": "parzen.exceptions",
    "SpaceError": "parzen.exceptions", "UnsupportedExpression": "parzen.exceptions",
    "fmin": "parzen.fmin", "MongoTrials": "parzen.mongoexp",
    "ParallelTrials": "parzen.parallel", "space_eval": "parzen.space",
    "SparkTrials": "parzen.spark",
    "TrialHandle": "parzen.reporting", "TrialPruned": "parzen.reporting",
    "report": "parzen.reporting",
    "STATUS_FAIL": "parzen.trial", "STATUS_NEW": "parzen.trial", "STATUS_OK": "parzen.trial",
    "STATUS_RUNNING": "parzen.trial", "STATUS_STRINGS": "parzen.trial",
    "JOB_STATE_CANCEL": "parzen.trials", "JOB_STATE_DONE": "parzen.trials",
    "JOB_STATE_ERROR": "parzen.trials", "JOB_STATE_NEW": "parzen.trials",
    "JOB_STATE_RUNNING": "parzen.trials", "JOB_STATES": "parzen.trials",
    "Trials": "parzen.trials", "generate_trials_to_calculate": "parzen.trials",
    "trials_from_docs": "parzen.trials",
}
# Imported with the API for its side effect, as hyperopt does: it binds parzen.pyll.stochastic.
_ALSO = ("parzen.pyll.stochastic",)


def _load() -> None:
    package = sys.modules[__name__]
    for module in _ALSO:
        importlib.import_module(module)
    for name, module in _MODULES.items():
        setattr(package, name, importlib.import_module(module))
    for name, module in _NAMES.items():
        setattr(package, name, getattr(importlib.import_module(module), name))


def __getattr__(name: str) -> typing.Any:
    if name not in _MODULES and name not in _NAMES:
        raise AttributeError(f"module 'parzen' has no attribute {name!r}")
    _load()
    return globals()[name]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULES) | set(_NAMES))


class _Package(types.ModuleType):
    """parzen's module object. The import system binds a submodule on its package as it
    loads it (``parzen.fmin`` = the module ``parzen.fmin``), which would hide the function
    ``fmin`` that shares the module's name; this keeps the function there, as in hyperopt,
    whose package imports it eagerly."""

    def __setattr__(self, name: str, value: typing.Any) -> None:
        if name in _NAMES and isinstance(value, types.ModuleType):
            value = getattr(value, name)
        super().__setattr__(name, value)

    def __reduce__(self) -> tuple[typing.Any, tuple[str]]:
        # An objective defined in a script or notebook is pickled by value, with the globals
        # it uses; ``parzen`` (for ``parzen.report``) is one. cloudpickle sends a module by
        # name only when its type is exactly ModuleType, so without this the subclass made
        # every such objective unpicklable for ParallelTrials, MongoTrials and SparkTrials.
        return importlib.import_module, (self.__name__,)


sys.modules[__name__].__class__ = _Package

__all__ = [
    "JOB_STATES",
    "JOB_STATE_CANCEL",
    "JOB_STATE_DONE",
    "JOB_STATE_ERROR",
    "JOB_STATE_NEW",
    "JOB_STATE_RUNNING",
    "STATUS_FAIL",
    "STATUS_NEW",
    "STATUS_OK",
    "STATUS_RUNNING",
    "STATUS_STRINGS",
    "AllTrialsFailed",
    "BadSearchSpace",
    "ConfigError",
    "Domain",
    "DuplicateLabel",
    "ExpressionError",
    "InvalidAnnotatedParameter",
    "InvalidDistribution",
    "InvalidLoss",
    "InvalidReport",
    "InvalidResult",
    "InvalidResultStatus",
    "InvalidTrial",
    "MongoTrials",
    "ParallelTrials",
    "ParzenError",
    "ReportOutsideTrial",
    "SpaceError",
    "SparkTrials",
    "TrialHandle",
    "TrialPruned",
    "Trials",
    "UnsupportedExpression",
    "__version__",
    "anneal",
    "base",
    "exceptions",
    "fmin",
    "generate_trials_to_calculate",
    "grid",
    "hp",
    "no_progress_loss",
    "progress",
    "pruners",
    "pyll",
    "rand",
    "report",
    "space_eval",
    "tpe",
    "trials_from_docs",
]
