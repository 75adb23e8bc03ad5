"""``run_trial``: claim a trial, evaluate it while a heartbeat holds the lease, record the
outcome. Knows nothing of Celery; workers and the in-process runner both call it.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from parzen.exceptions import InvalidResult, ObjectiveUnloadable, StoreError, StoreUnavailable
from parzen.execution.judge import REPORT_BATCH_S, Judge, judging, pruned_result
from parzen.execution.sandbox import (
    AbortCheck,
    AbortReason,
    EvaluationAborted,
    EvaluationCrashed,
    EvaluationTimeout,
    ObjectiveFailed,
)
from parzen.execution.tracebacks import objective_error
from parzen.pruners import Pruner
from parzen.reporting import TrialPruned
from parzen.store import LEASE_EXPIRED, TrialStore
from parzen.store.retry import retry_unavailable
from parzen.store.uri import redact_text
from parzen.trial import ErrorInfo, ErrorOrigin, Owner, Trial, TrialState

log = logging.getLogger("parzen.execution")

# evaluate(params, tid, abort) -> result; ``abort()`` returns a reason to stop early, or None.
Evaluate = Callable[[Mapping[str, Any], int, AbortCheck], dict[str, Any]]

# The history outcome prefix that tells the coordinator a worker could not load the objective.
UNLOADABLE = "objective unloadable"

# How long run_trial keeps trying to record an outcome while the store is unreachable (a
# MongoDB restart or failover). Giving up early would throw a finished evaluation away: the
# trial would sit RUNNING until its lease expired and then run again. The writes are fenced
# on the claim token, so a retry that lands after the trial was requeued is refused.
RECORD_PATIENCE_S = 60.0

class OutcomeStatus(enum.Enum):
    """What became of one delivery of a trial, for the runner that made it."""

    DONE = "done"  # the result is recorded: the trial is DONE
    PRUNED = "pruned"  # stopped early (TrialPruned) and recorded as PRUNED: the slot is free
    ERROR = "error"  # the objective failed (raised, timed out, crashed too often): ERROR
    NOT_CLAIMED = "not claimed"  # another worker has it, or it was finished or cancelled
    LEASE_LOST = "lease lost"  # another attempt owns the trial now; our result was discarded
    RELEASED = "released"  # given back to NEW uncounted (shutdown, store trouble)
    UNLOADABLE = "unloadable"  # this worker cannot load the objective; released uncounted
    CRASHED = "crashed"  # the evaluation's process died; released with the attempt counted


@dataclass(frozen=True)
class Outcome:
    """What happened to one delivery of a trial.

    Attributes:
        status: see ``OutcomeStatus``.
        trial: the trial as claimed (None when not claimed).
        exception: the objective's exception for ``ERROR``, the cause for ``UNLOADABLE`` and
            ``CRASHED``.
        result: the result recorded for ``DONE``, ``PRUNED`` and ``ERROR``.
        error: the error recorded for ``ERROR``.
        seconds: from the claim to the recorded outcome (``DONE``, ``PRUNED``, ``ERROR``),
            on this process's clock.
    """

    status: OutcomeStatus
    trial: Trial | None = None
    exception: BaseException | None = None
    result: Mapping[str, Any] | None = None
    error: ErrorInfo | None = None
    seconds: float | None = None


_STATUS_OF = {TrialState.DONE: OutcomeStatus.DONE, TrialState.ERROR: OutcomeStatus.ERROR,
              TrialState.PRUNED: OutcomeStatus.PRUNED}


def error_info(exc: BaseException) -> ErrorInfo:
    """The type, message and traceback of ``exc`` as stored on an ERROR trial."""
    return ErrorInfo(type(exc).__name__, str(exc),
                     "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))


class Heartbeat:
    """Extends a lease from a background thread while the objective runs.

    ``lost`` is set when the store says the lease is gone: the trial was requeued because we
    were presumed dead, and our result will be discarded.
    """

    def __init__(self, store: TrialStore, trial: Trial, lease_s: float,
                 interval_s: float, judge: Judge | None = None) -> None:
        self._judge = judge  # reported values ride the heartbeat
        self._store = store
        self._trial = trial
        self._lease_s = lease_s
        self._interval_s = interval_s
        self._stop = threading.Event()
        self.lost = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{trial.tid}",
                                        daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self._interval_s + 5)

    def _run(self) -> None:
        t = self._trial
        assert t.claim_token is not None
        while not self._stop.wait(self._interval_s):
            try:
                ok = self._judge.beat() if self._judge is not None else \
                    self._store.heartbeat(t.exp_key, t.tid, t.claim_token, self._lease_s)
            except Exception as exc:  # a transient store outage must not kill the trial
                log.warning("heartbeat for trial %s of %r failed: %s; retrying in %.1fs",
                            t.tid, t.exp_key, exc, self._interval_s)
                continue
            if not ok:
                self.lost.set()  # first: the evaluation must stop whatever the log line does
                log.warning("lease lost on trial %s of %r: %s; this attempt's result will be "
                            "discarded", t.tid, t.exp_key,
                            lost_because(stored(self._store, t), t))
                return


def stored(store: TrialStore, trial: Trial) -> Trial | None:
    """``trial`` as the store holds it now; None when the store cannot say (unreachable
    again, or the trial was deleted)."""
    try:
        return store.get(trial.exp_key, trial.tid)
    except StoreError:
        return None


def lost_because(now: Trial | None, trial: Trial) -> str:
    """Why this worker no longer owns ``trial``, given the stored trial ``now``, for its log:
    at 2 a.m. a stopped run must not read like a trial that ran twice."""
    if now is None:
        return "it was cancelled, requeued or finished elsewhere"
    if now.state is TrialState.CANCEL:
        return "the coordinator cancelled it (fmin stopped: timeout, Ctrl-C or another stop)"
    if now.state in (TrialState.DONE, TrialState.ERROR):
        if now.claim_token == trial.claim_token:
            return "this attempt's own result is recorded (the store's reply to it was lost)"
        if now.error is not None and now.error.type == LEASE_EXPIRED:
            return "the coordinator gave up on it: its lease expired on every attempt"
        return "another attempt finished it"
    return "its lease expired and it was requeued (this worker stalled or lost the store)"


def run_trial(store: TrialStore, exp_key: str, tid: int, owner: Owner, evaluate: Evaluate,
              *, lease_s: float = 3600.0, heartbeat_s: float | None = None,
              max_attempts: int = 3, shutdown: threading.Event | None = None,
              pruner: Pruner | None = None) -> Outcome:
    """Claim trial ``tid``, evaluate it, and record its outcome.

    Safe to call twice for the same trial: the claim decides who runs it, so a second
    delivery returns a ``NOT_CLAIMED`` outcome without calling the objective.

    Outcomes by what the evaluation does:

    - returns a result: DONE.
    - raises ``TrialPruned`` (``parzen.report`` does, when ``pruner`` says so): PRUNED, with
      the last reported step and loss in its result; the values reported are kept.
    - the objective raises (or returns an invalid result): ERROR with its traceback.
    - hits the hard time limit: ERROR("timeout after N s").
    - its process dies (signal, exit, OOM): released to NEW with the attempt counted, or ERROR
      naming the signal once ``max_attempts`` is used up.
    - the worker shuts down: released to NEW, attempt not counted; never ERROR.
    - the objective cannot be loaded here: released, attempt not counted, and the reason is
      kept in the trial's history so the coordinator can fail fast with it.
    - the lease is lost: nothing is written; the attempt that owns the trial now decides.
    - the store fails while the objective is loaded: released, attempt not counted.

    Outcomes are written with retries while the store is unavailable (``RECORD_PATIENCE_S``);
    the writes are fenced on the claim token, so a retry can never record a result twice.

    An objective's failure of any kind is caught here (``except Exception``) and recorded on
    the trial; ``KeyboardInterrupt`` and ``SystemExit`` propagate. The other broad catches in
    parzen each sit at a boundary whose errors are not ours to enumerate (the user's code in
    the sandbox child, kombu's transport errors, a store outage during a heartbeat), and each
    says why in a comment.
    """
    trial = store.claim(exp_key, tid, owner, lease_s)
    if trial is None:
        return Outcome(OutcomeStatus.NOT_CLAIMED)
    claimed_at = time.monotonic()
    token = trial.claim_token
    assert token is not None
    # Batched in memory too: each write copies the trial, and a loop reporting every
    # microsecond would spend its time copying. Decision points are written at once.
    judge = Judge(store, trial, pruner, lease_s,
                  min(REPORT_BATCH_S, heartbeat_s) if heartbeat_s else REPORT_BATCH_S)
    hb = Heartbeat(store, trial, lease_s, heartbeat_s, judge) if heartbeat_s else None

    def abort() -> AbortReason | None:
        if hb is not None and hb.lost.is_set():
            return AbortReason.LEASE_LOST
        if shutdown is not None and shutdown.is_set():
            return AbortReason.SHUTDOWN
        return None

    def write(state: TrialState, result: Mapping[str, Any], error: ErrorInfo | None,
              exc: BaseException | None) -> Outcome:
        if not retry_unavailable(
                lambda: store.finish(exp_key, tid, token, state, result, error),
                f"recording trial {tid} of {exp_key!r}", RECORD_PATIENCE_S):
            now = stored(store, trial)
            # Written although the reply was lost: the retry found no RUNNING trial, but the
            # stored one ended under this attempt's claim.
            if now is None or now.state is not state or now.claim_token != token:
                log.warning("lease lost on trial %s of %r: %s; result discarded", tid,
                            exp_key, lost_because(now, trial))
                return Outcome(OutcomeStatus.LEASE_LOST, trial)
        return Outcome(_STATUS_OF[state], trial, exc, result, error,
                       time.monotonic() - claimed_at)

    def finish(state: TrialState, result: Mapping[str, Any], error: ErrorInfo | None,
               exc: BaseException | None) -> Outcome:
        """Record the outcome. Nothing the store raises may leave the trial RUNNING: the
        heartbeat has stopped, so it would wait out its lease, run again, and end as
        LeaseExpired max_attempts later with the cause only in this worker's log."""
        judge.flush()  # the values reported since the last write, before the trial closes
        try:
            return write(state, result, error, exc)
        except StoreUnavailable:
            # Unreachable for RECORD_PATIENCE_S: nothing can be written, not even a release.
            # The lease expires and the trial runs again, as after any outage.
            raise
        except InvalidResult as refused:
            if state is not TrialState.DONE:
                give_back(refused)
            # The store cannot hold the result (an object MongoDB cannot encode, a result
            # that contains itself or is over 16 MB; the message names the part).
            log.info("trial %s of %r: %s", tid, exp_key, refused)
            info = error_info(refused)
            failed: BaseException = refused
        except Exception as refused:  # a driver or encoding error: not ours to enumerate
            if state is not TrialState.DONE:
                give_back(refused)
            why = f"{type(refused).__name__}: {redact_text(str(refused))}"
            log.error("trial %s of %r: the store refused to record the result (%s); "
                      "recording the trial as ERROR instead", tid, exp_key, why)
            info = ErrorInfo(type(refused).__name__,
                             f"the store refused to record the result: {why}",
                             redact_text(error_info(refused).traceback),
                             origin=ErrorOrigin.SYSTEM)
            failed = refused
        try:
            return write(TrialState.ERROR, {"status": "fail"}, info, failed)
        except StoreUnavailable:
            raise
        except Exception as again:  # as above
            give_back(again)

    def give_back(refused: Exception) -> NoReturn:
        """The store refused even an ERROR: release the trial, the attempt counted, rather
        than leave it RUNNING for the lease to expire; then raise, as the store is broken."""
        why = f"{type(refused).__name__}: {redact_text(str(refused))}"
        log.error("trial %s of %r: the store refused to record the outcome (%s); releasing "
                  "it for another attempt", tid, exp_key, why)
        try:
            release(f"released: the store refused to record the outcome: {why}",
                    count_attempt=True)
        except Exception as exc:  # the store is broken: the lease is the last resort
            log.error("trial %s of %r: releasing it failed too (%s: %s); it stays RUNNING "
                      "until its lease expires", tid, exp_key, type(exc).__name__,
                      redact_text(str(exc)))
        raise refused

    def release(reason: str, count_attempt: bool) -> bool:
        return retry_unavailable(
            lambda: store.release(exp_key, tid, token, reason, count_attempt),
            f"releasing trial {tid} of {exp_key!r}", RECORD_PATIENCE_S)

    try:
        with judging(judge):
            if hb is not None:
                with hb:
                    result = evaluate(trial.params, tid, abort)
            else:
                result = evaluate(trial.params, tid, abort)
    except TrialPruned as exc:
        step, loss = judge.last
        log.info("trial %s of %r stopped early: %s", tid, exp_key, exc)
        return finish(TrialState.PRUNED, pruned_result(step, loss), None, None)
    except EvaluationAborted as exc:
        if exc.reason is AbortReason.LEASE_LOST:
            return Outcome(OutcomeStatus.LEASE_LOST, trial)
        release(f"released: {exc}", count_attempt=False)
        log.info("released trial %s of %r: %s", tid, exp_key, exc)
        return Outcome(OutcomeStatus.RELEASED, trial)
    except ObjectiveUnloadable as exc:
        release(f"{UNLOADABLE}: {exc}", count_attempt=False)
        log.error("trial %s of %r released: %s", tid, exp_key, exc)
        return Outcome(OutcomeStatus.UNLOADABLE, trial, exc)
    except EvaluationCrashed as exc:
        if trial.attempts >= max_attempts:
            info = ErrorInfo("WorkerCrashed", f"{exc} on attempt {trial.attempts} of "
                             f"{max_attempts}; giving up")
            log.error("trial %s of %r: %s", tid, exp_key, info.message)
            return finish(TrialState.ERROR, {"status": "fail"}, info, exc)
        release(f"crashed: {exc}", count_attempt=True)
        log.warning("trial %s of %r: %s (attempt %d of %d); it will be retried", tid, exp_key,
                    exc, trial.attempts, max_attempts)
        return Outcome(OutcomeStatus.CRASHED, trial, exc)
    except EvaluationTimeout as exc:
        log.warning("trial %s of %r: %s", tid, exp_key, exc)
        return finish(TrialState.ERROR, {"status": "fail"}, ErrorInfo("TrialTimeout", str(exc)),
                      exc)
    except StoreUnavailable as exc:
        # The store failed while the objective was being loaded (a GridFS payload read):
        # not the objective's fault, so not an ERROR. Give the trial back uncounted.
        release(f"released: {exc}", count_attempt=False)
        log.warning("released trial %s of %r: %s", tid, exp_key, exc)
        return Outcome(OutcomeStatus.RELEASED, trial)
    except ObjectiveFailed as exc:
        # At most 2,000 characters: an objective may raise with a message of megabytes.
        log.info("trial %s of %r raised %.2000s", tid, exp_key, exc)
        return finish(TrialState.ERROR, {"status": "fail"}, exc.info, exc)
    except Exception as exc:  # the in-process objective's failure: see the docstring
        log.info("trial %s of %r raised %s: %.2000s", tid, exp_key, type(exc).__name__, exc)
        return finish(TrialState.ERROR, {"status": "fail"}, objective_error(exc), exc)
    except BaseException as exc:
        # KeyboardInterrupt / SystemExit: give the trial back instead of leaving it RUNNING
        # with no one to finish it (a resumed run would wait for it forever), then propagate.
        store.release(exp_key, tid, token, f"released: {type(exc).__name__}",
                      count_attempt=False)
        raise
    return finish(TrialState.DONE, result, None, None)
