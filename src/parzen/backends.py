"""How a ``Trials`` object wants its trials evaluated: a small, typed, frozen description.

``fmin`` asks the trials it was handed for ``trials.backend()`` and gives that to
``parzen.runners.build_runner``, which builds the matching runner. The trials classes (the
read side) thus say *what* they need without importing *how* it is done: nothing below the
runners layer knows a runner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from parzen.settings import TrialSettings


@dataclass(frozen=True)
class InlineBackend:
    """Evaluate each trial in the calling process, one after another (``Trials``)."""

    parallelism: int = 1


@dataclass(frozen=True)
class LocalBackend:
    """Evaluate trials in ``parallelism`` local sandbox processes (``ParallelTrials``).

    Attributes:
        parallelism: how many trials run at once.
        trial_timeout: hard time limit of one evaluation in seconds (None: no limit).
        max_attempts: how often a trial whose process crashed is run.
        max_payload_bytes: refuse objectives that pickle to more than this.
    """

    parallelism: int
    trial_timeout: float | None
    max_attempts: int
    max_payload_bytes: int


@dataclass(frozen=True)
class CeleryBackend:
    """Publish trials to Celery workers that share a MongoDB store (``MongoTrials``).

    Attributes:
        url: the MongoDB URL, for messages only (redacted when shown).
        broker: the Celery broker URL, or None when none was configured.
        queue: the Celery queue trials are published to.
        parallelism: how many trials are queued or running at once.
        secret: the signing key given to ``MongoTrials`` (None: from the environment). Never
            shown in a repr.
        objective: ``"package.module:function"`` for workers to import, or None to pickle.
        trial_settings: lease, heartbeat, trial timeout and attempts, for the workers.
        dispatch_timeout: seconds after which a NEW trial's message is republished.
        poll_interval: seconds between the coordinator's refreshes.
        allow_space_change: resume an experiment even if its space or objective changed.
        max_payload_bytes: refuse objectives that pickle to more than this.
    """

    url: str
    broker: str | None
    queue: str
    parallelism: int
    secret: str | bytes | None = field(repr=False)
    objective: str | None
    trial_settings: TrialSettings
    dispatch_timeout: float
    poll_interval: float
    allow_space_change: bool
    max_payload_bytes: int


@dataclass(frozen=True)
class SparkBackend:
    """Evaluate trials as Spark tasks on the executors of a Spark session (``SparkTrials``).

    Attributes:
        parallelism: how many trials run at once (one long-lived Spark task each).
        session: the ``pyspark.sql.SparkSession`` whose executors run the trials.
        timeout: the run's time limit in seconds given to ``SparkTrials`` (None: none).
        loss_threshold: stop once a loss <= this is found, when fmin names none.
        trial_timeout: hard time limit of one evaluation in seconds (None: no limit).
        max_attempts: how often a trial whose task or process was lost is run.
        max_payload_bytes: refuse objectives that pickle to more than this.
    """

    parallelism: int
    session: Any = field(repr=False, compare=False)
    timeout: float | None
    loss_threshold: float | None
    trial_timeout: float | None
    max_attempts: int
    max_payload_bytes: int


Backend = InlineBackend | LocalBackend | CeleryBackend | SparkBackend
