"""``run_trial``: claim a trial, evaluate it while a heartbeat holds the lease, record the
outcome. Knows nothing of Celery; workers and the in-process runner both call it.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from parzen.store import TrialStore
from parzen.trial import ErrorInfo, Owner, Trial, TrialState

log = logging.getLogger("parzen.execution")

Evaluate = Callable[[Mapping[str, Any], int], dict[str, Any]]


@dataclass(frozen=True)
class Outcome:
    """What happened to one delivery of a trial.

    Attributes:
        status: ``"done"``, ``"error"``, ``"not claimed"`` (another worker has it, or it was
            finished or cancelled) or ``"lease lost"`` (our result was discarded).
        trial: the trial as claimed (None when not claimed).
        exception: the objective's exception, for ``"error"``.
    """

    status: str
    trial: Trial | None = None
    exception: BaseException | None = None


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
                 interval_s: float) -> None:
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
                ok = self._store.heartbeat(t.exp_key, t.tid, t.claim_token, self._lease_s)
            except Exception as exc:  # a transient store outage must not kill the trial
                log.warning("heartbeat for trial %s of %r failed: %s; retrying in %.1fs",
                            t.tid, t.exp_key, exc, self._interval_s)
                continue
            if not ok:
                log.warning("lease lost on trial %s of %r: it was requeued or finished "
                            "elsewhere; this attempt's result will be discarded",
                            t.tid, t.exp_key)
                self.lost.set()
                return


def run_trial(store: TrialStore, exp_key: str, tid: int, owner: Owner, evaluate: Evaluate,
              *, lease_s: float = 3600.0, heartbeat_s: float | None = None) -> Outcome:
    """Claim trial ``tid``, evaluate it, and record DONE or ERROR.

    Safe to call twice for the same trial: the claim decides who runs it, so a second
    delivery returns ``Outcome("not claimed")`` without calling the objective.

    The one broad ``except Exception`` in parzen is here: it records the objective's
    failure on the trial. ``KeyboardInterrupt`` and ``SystemExit`` propagate.
    """
    trial = store.claim(exp_key, tid, owner, lease_s)
    if trial is None:
        return Outcome("not claimed")
    assert trial.claim_token is not None
    hb = Heartbeat(store, trial, lease_s, heartbeat_s) if heartbeat_s else None
    exc_seen: BaseException | None = None
    try:
        if hb is not None:
            with hb:
                result = evaluate(trial.params, tid)
        else:
            result = evaluate(trial.params, tid)
        state, error = TrialState.DONE, None
    except Exception as exc:
        exc_seen = exc
        state, error = TrialState.ERROR, error_info(exc)
        result = {"status": "fail"}
        log.info("trial %s of %r raised %s: %s", tid, exp_key, type(exc).__name__, exc)
    if not store.finish(exp_key, tid, trial.claim_token, state, result, error):
        log.warning("lease lost on trial %s of %r: result discarded (another attempt owns "
                    "the trial)", tid, exp_key)
        return Outcome("lease lost", trial)
    return Outcome("done" if state is TrialState.DONE else "error", trial, exc_seen)
