"""What a worker's log says about trials: one line per trial it finished (tid, state, loss
or error, duration), under a Celery node name of its own, without Celery's two lines per
task ("received", then "succeeded in 1.2s: None"), which name a task id, not the trial.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from parzen.execution.run import Outcome, OutcomeStatus
from parzen.trial import STATUS_OK

# Celery's per-task lines at INFO; their errors (WARNING and up) still show.
CELERY_TASK_LOGGERS = ("celery.worker.strategy", "celery.app.trace")
_MESSAGE_CHARS = 300


def node_name(worker: str, host: str) -> str:
    """The worker's Celery node name, ``parzen-<worker>@<host>``: unique per worker name,
    where every worker was ``celery@<host>`` (Celery's DuplicateNodenameWarning, and
    ``celery inspect`` could not tell them apart)."""
    return f"parzen-{worker}@{host}"


def trial_line(exp_key: str, tid: int, outcome: Outcome) -> str | None:
    """``trial 12 of 'mnist': done, loss 0.0123 in 1.16 s (attempt 1)`` for a trial this
    worker finished (done, pruned or error); None for any other delivery, which run_trial logs
    itself when it matters (released, crashed, lease lost) or which is nobody's business (a
    duplicate message, a trial another worker has)."""
    if outcome.status not in (OutcomeStatus.DONE, OutcomeStatus.PRUNED, OutcomeStatus.ERROR):
        return None
    if outcome.status is OutcomeStatus.PRUNED:
        what = _pruned(outcome.result)
    elif outcome.status is OutcomeStatus.ERROR:
        err = outcome.error
        message = f"{err.type}: {err.message}" if err is not None else "no error recorded"
        if len(message) > _MESSAGE_CHARS:
            message = message[:_MESSAGE_CHARS] + "..."
        what = f"error, {message}"
    else:
        result = outcome.result or {}
        if result.get("status") != STATUS_OK:
            what = f"done, status {result.get('status')}"
        else:
            loss = result.get("loss")
            what = f"done, loss {loss:.6g}" if isinstance(loss, (int, float)) \
                else f"done, loss {loss!r}"
    took = f" in {outcome.seconds:.2f} s" if outcome.seconds is not None else ""
    attempt = f" (attempt {outcome.trial.attempts})" if outcome.trial is not None else ""
    return f"trial {tid} of {exp_key!r}: {what}{took}{attempt}"


def _pruned(result: Mapping[str, Any] | None) -> str:
    """``pruned at step 8, loss 0.42``: where the pruner stopped the trial (its last report;
    none when it was stopped before reporting anything)."""
    where = (result or {}).get("pruned")
    if not isinstance(where, Mapping) or where.get("step") is None:
        return "pruned before its first report"
    loss = where.get("loss")
    shown = f"{loss:.6g}" if isinstance(loss, (int, float)) else repr(loss)
    return f"pruned at step {where['step']}, loss {shown}"


def quiet_celery(loglevel: int | str) -> None:
    """Hide Celery's per-task lines unless the worker logs at DEBUG (``--loglevel``)."""
    level = loglevel if isinstance(loglevel, int) \
        else logging.getLevelName(str(loglevel).upper())
    if isinstance(level, int) and level > logging.DEBUG:
        for name in CELERY_TASK_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
