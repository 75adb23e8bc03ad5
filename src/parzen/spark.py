"""``SparkTrials``: the fmin loop with its trials evaluated on a Spark cluster's executors.

hyperopt's class, with its arguments and their meaning: ``from parzen import SparkTrials``
and ``SparkTrials(parallelism=24)``. The coordinator is the same as for every other mode;
trials live in the in-memory store of this object, in the driver, and each of
``parallelism`` long-lived Spark tasks evaluates them one after another on its executor
(``parzen.runners.spark``). Nothing but the Spark session is needed: no database, no
broker.

pyspark is an optional extra (``pip install 'parzen[spark]'``); it is imported only when a
``SparkTrials`` is made.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from parzen import validation
from parzen.backends import SparkBackend
from parzen.exceptions import ConfigError
from parzen.settings import DEFAULT_MAX_PAYLOAD_BYTES
from parzen.trial import TrialState
from parzen.trials import Trials

log = logging.getLogger("parzen.spark")


def active_session(given: Any = None) -> Any:
    """``given``, or the active Spark session, or a new one (``getOrCreate``).

    Raises:
        ConfigError: pyspark is not installed, or the session has no SparkContext (Spark
            Connect).
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise ConfigError(
            f"SparkTrials needs pyspark, which {sys.executable} cannot import ({exc}): "
            "pip install 'parzen[spark]' (a local Spark also needs Java 17 or later)"
        ) from exc
    session = given if given is not None else SparkSession.builder.getOrCreate()
    try:
        session.sparkContext  # noqa: B018 (a Spark Connect session raises here)
    except Exception as exc:  # pyspark's error for Spark Connect varies by version
        raise ConfigError(
            "SparkTrials needs a classic Spark session with a SparkContext; this one has "
            f"none ({type(exc).__name__}: {exc}). Spark Connect sessions (Databricks "
            "serverless or shared access mode) cannot run SparkTrials' tasks: use a cluster "
            "in single-user (dedicated) access mode"
        ) from exc
    return session


def task_slots(session: Any) -> int:
    """How many tasks the session's executors run at once now (at least 1)."""
    sc = session.sparkContext
    try:
        # The scheduler's own count (executor cores over spark.task.cpus), through py4j;
        # it is not public API, so any failure falls back to the default parallelism.
        jsc = sc._jsc.sc()
        slots = int(jsc.maxNumConcurrentTasks(jsc.resourceProfileManager()
                                              .defaultResourceProfile()))
    except Exception:  # py4j's errors when the method differs in this Spark version
        slots = 0
    return max(1, slots or int(sc.defaultParallelism))


class SparkTrials(Trials):
    """Trials evaluated as Spark tasks on the executors of a Spark session.

    Args:
        parallelism: how many trials run at once (default: the session's task slots).
            Capped at the task slots the cluster has when this object is made, with a
            warning that gives both numbers.
        timeout: stop the run after this many seconds; running trials are cancelled and
            the best result so far is returned. Wins over fmin's ``timeout``, as in
            hyperopt.
        loss_threshold: stop once a loss <= this is found, when fmin is given none.
        spark_session: the ``SparkSession`` to run on (default: the active one, or a new
            one).
        exp_key: the experiment's name.
        trial_timeout: hard time limit per trial in seconds; the evaluation is killed and
            the trial becomes ERROR("timeout after N s").
        max_attempts: how often a trial is run whose process or Spark task was lost.
        max_payload_bytes: refuse objectives that pickle to more than this.

    Raises:
        ConfigError: pyspark is not installed, or an argument is invalid.
    """

    asynchronous = True

    def __init__(self, parallelism: int | None = None, timeout: float | None = None,
                 loss_threshold: float | None = None, spark_session: Any = None, *,
                 exp_key: str | None = None, trial_timeout: float | None = None,
                 max_attempts: int = 3,
                 max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES) -> None:
        super().__init__(exp_key=exp_key)
        validation.run_timeout(timeout)
        validation.run_loss_threshold(loss_threshold)
        if parallelism is not None:
            validation.integer("parallelism", parallelism, -sys.maxsize, who="SparkTrials")
        self.timeout = float(timeout) if timeout is not None else None
        self.loss_threshold = float(loss_threshold) if loss_threshold is not None else None
        self.trial_timeout = validation.seconds("trial_timeout", trial_timeout,
                                                allow_none=True, who="SparkTrials")
        self.max_attempts = validation.integer("max_attempts", max_attempts, 1,
                                               who="SparkTrials")
        self.max_payload_bytes = validation.integer("max_payload_bytes", max_payload_bytes,
                                                    1, who="SparkTrials")
        self.user_specified_parallelism = parallelism
        self._session: Any = active_session(spark_session)
        self.parallelism = self._decide_parallelism()

    def _decide_parallelism(self) -> int:
        requested = self.user_specified_parallelism
        slots = task_slots(self._session)
        if requested is None or requested <= 0:
            # hyperopt's rule: None or a non-positive value means the cluster's size.
            log.info("SparkTrials: parallelism=%s, so %d (the Spark session's task slots)",
                     requested, slots)
            return slots
        if requested > slots:
            log.warning("SparkTrials(parallelism=%d) is more than the %d task slots of this "
                        "Spark cluster: parallelism is capped at %d. Add executors (or cores) "
                        "for more trials at once", requested, slots, slots)
            return slots
        return int(requested)

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        # The session cannot be pickled (trials_save_file); a resumed run takes the active
        # one, or makes one.
        state["spark"] = (self.user_specified_parallelism, self.parallelism, self.timeout,
                          self.loss_threshold, self.trial_timeout, self.max_attempts,
                          self.max_payload_bytes)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        (self.user_specified_parallelism, self.parallelism, self.timeout,
         self.loss_threshold, self.trial_timeout, self.max_attempts,
         self.max_payload_bytes) = state["spark"]
        self._session = None

    @property
    def spark_session(self) -> Any:
        """The Spark session the trials run on."""
        if self._session is None:
            self._session = active_session()
            self.parallelism = self._decide_parallelism()
        return self._session

    def backend(self) -> SparkBackend:
        """Spark tasks on this object's session, with its settings."""
        session = self.spark_session
        return SparkBackend(self.parallelism, session, self.timeout, self.loss_threshold,
                            self.trial_timeout, self.max_attempts, self.max_payload_bytes)

    def count_successful_trials(self) -> int:
        """How many trials finished with a result (DONE)."""
        return self.count_by_state_unsynced(int(TrialState.DONE))

    def count_failed_trials(self) -> int:
        """How many trials failed (ERROR)."""
        return self.count_by_state_unsynced(int(TrialState.ERROR))

    def count_cancelled_trials(self) -> int:
        """How many trials were cancelled (by a timeout, an early stop or Ctrl-C)."""
        return self.count_by_state_unsynced(int(TrialState.CANCEL))

    def count_total_trials(self) -> int:
        """How many trials ended: succeeded, failed or cancelled."""
        return self.count_by_state_unsynced(
            [int(TrialState.DONE), int(TrialState.ERROR), int(TrialState.CANCEL)])


__all__ = ["SparkTrials"]
