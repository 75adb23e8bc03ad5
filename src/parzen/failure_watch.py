"""The coordinator's watch on failed trials: one warning when most recent trials fail.

A crash region can take most of a run before anyone looks: the progress bar only counts.
After each refresh the coordinator hands the watch the last trials to finish; when more than
half of the last ``WINDOW`` failed, it logs one warning with the count, the most common error
and where to read the tracebacks, then at most one every ``REPEAT_S`` seconds.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from parzen.trial import Trial, TrialState

log = logging.getLogger("parzen.fmin")

WINDOW = 20  # finished trials looked at
SHARE = 0.5  # warn when more than this share of them failed
REPEAT_S = 600.0  # at most one warning in this many seconds


def failed(t: Trial) -> bool:
    """The trial failed, whoever's failure it was: ERROR, or status other than ok."""
    return t.state is TrialState.ERROR or t.failed_here


def _what(t: Trial) -> str:
    if t.error is not None:
        return f"{t.error.type}: {t.error.message}"[:300]
    status = t.result.get("status")
    if status != "ok":
        return f"status {status!r} returned by the objective"
    return f"loss {t.result.get('loss')!r} (not a finite number)"


@dataclass
class FailureWatch:
    """Warns once when more than ``SHARE`` of the last ``WINDOW`` finished trials failed.

    Attributes:
        where: how the user reads the failed trials' errors (a command or an attribute).
        clock: seconds, monotonic; a parameter for tests.
    """

    where: str
    clock: Callable[[], float] = time.monotonic
    _last_warning: float | None = None

    def check(self, recent: Sequence[Trial]) -> str | None:
        """Look at ``recent`` (the last trials to finish, oldest first); log and return the
        warning when one is due."""
        window = list(recent)[-WINDOW:]
        if len(window) < WINDOW:
            return None
        bad = [t for t in window if failed(t)]
        if len(bad) <= SHARE * len(window):
            return None
        now = self.clock()
        if self._last_warning is not None and now - self._last_warning < REPEAT_S:
            return None
        self._last_warning = now
        common, n_common = collections.Counter(_what(t) for t in bad).most_common(1)[0]
        message = (f"{len(bad)} of the last {len(window)} finished trials failed; the most "
                   f"common error ({n_common} of them): {common}. The search learns to avoid "
                   f"where trials fail, but a bug in the objective fails everywhere: read the "
                   f"tracebacks with {self.where}")
        log.warning("%s", message)
        return message
