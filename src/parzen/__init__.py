"""parzen: distributed hyperparameter optimisation with hyperopt's API.

Change ``hyperopt`` to ``parzen`` in the import lines (``from parzen import fmin, hp``,
``from parzen.pyll import scope``, ``import parzen.pyll.stochastic``,
``from parzen.base import Trials``); the code stays the same. ``Trials`` runs in-process;
``ParallelTrials`` uses local worker processes; ``MongoTrials`` distributes trials to Celery
workers through MongoDB.
"""

from __future__ import annotations

import parzen.pyll.stochastic  # noqa: F401 (binds parzen.pyll.stochastic, as hyperopt does)
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
from parzen.trial import STATUS_FAIL, STATUS_NEW, STATUS_OK, STATUS_RUNNING, STATUS_STRINGS
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
from parzen.version import __version__

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
