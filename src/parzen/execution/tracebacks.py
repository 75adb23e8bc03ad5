"""The traceback stored on a trial whose objective raised: the user's frames, from the
objective down, without the frames of parzen that called it.

Every evaluation reaches the objective through parzen (the child's loop or ``run_trial``,
then ``Domain.evaluate``); those frames are the same for every trial and push the user's
file and line down the page. Frames of parzen *below* the objective (a ``space_eval`` the
objective called, parzen raising on a bad result) stay: they say what happened.
"""

from __future__ import annotations

import os
import traceback

from parzen.trial import ErrorInfo

# The package's directory: this file is parzen/execution/tracebacks.py.
PARZEN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _is_parzen(filename: str) -> bool:
    return os.path.abspath(filename).startswith(PARZEN_DIR + os.sep)


def objective_traceback(exc: BaseException) -> str:
    """``exc``'s traceback as text, its leading frames of parzen left out; all of it when
    every frame is parzen's (the error is parzen's, not the objective's)."""
    te = traceback.TracebackException(type(exc), exc, exc.__traceback__)
    first_user = next((i for i, frame in enumerate(te.stack) if not _is_parzen(frame.filename)),
                      None)
    if first_user:
        te.stack = traceback.StackSummary.from_list(te.stack[first_user:])
    return "".join(te.format())


def objective_error(exc: BaseException) -> ErrorInfo:
    """The type, message and traceback (``objective_traceback``) of an objective's error."""
    return ErrorInfo(type(exc).__name__, str(exc), objective_traceback(exc))
