"""parzen: distributed hyperparameter optimisation with hyperopt's API.

Change ``from hyperopt import ...`` to ``from parzen import ...`` and
``from hyperopt.pyll import scope`` to ``from parzen.pyll import scope``; the code stays the
same. ``Trials`` runs in-process; ``ParallelTrials`` uses local worker processes;
``MongoTrials`` distributes trials to Celery workers through MongoDB.
"""

from __future__ import annotations

from parzen import hp
from parzen.domain import Domain
from parzen.early_stop import no_progress_loss
from parzen.exceptions import (
    AllTrialsFailed,
    ConfigError,
    DuplicateLabel,
    InvalidDistribution,
    InvalidLoss,
    InvalidResult,
    InvalidResultStatus,
    InvalidTrial,
    ParzenError,
    SpaceError,
    UnsupportedExpression,
)
from parzen.fmin import fmin
from parzen.mongoexp import MongoTrials
from parzen.parallel import ParallelTrials
from parzen.samplers import anneal, grid, rand, tpe
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
    "ConfigError",
    "Domain",
    "DuplicateLabel",
    "InvalidDistribution",
    "InvalidLoss",
    "InvalidResult",
    "InvalidResultStatus",
    "InvalidTrial",
    "MongoTrials",
    "ParallelTrials",
    "ParzenError",
    "SpaceError",
    "Trials",
    "UnsupportedExpression",
    "__version__",
    "anneal",
    "fmin",
    "generate_trials_to_calculate",
    "grid",
    "hp",
    "no_progress_loss",
    "rand",
    "space_eval",
    "tpe",
]
