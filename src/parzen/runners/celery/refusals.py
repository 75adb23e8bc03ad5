"""Workers that cannot load the run's objective, as the coordinator sees them.

A worker that cannot load the objective (a key other than ours, a module missing on its
host, ...) records a refusal on the experiment document and passes the experiment's trials
on to the other workers (``parzen.worker.refusals``). The coordinator says so once per
worker, and stops the run only when no worker runs its trials: trials waited a whole
``dispatch_timeout`` with none running while workers refused them. The error then names
every worker that refused, with its cause.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from parzen.exceptions import ObjectiveUnloadable
from parzen.store import Experiment, Refusal
from parzen.trial import TrialState
from parzen.trials import Trials
from parzen.worker.refusals import RENEW_S

log = logging.getLogger("parzen.runners.celery")


class RefusalWatch:
    """The refusals of one run's objective, and the decision to stop on them.

    Args:
        exp_key: the experiment.
        grace_s: how long trials may wait with none running, while workers refuse them,
            before the run stops (the run's ``dispatch_timeout``).
    """

    def __init__(self, exp_key: str, grace_s: float) -> None:
        self._exp_key = exp_key
        self._grace_s = grace_s
        self._objective = ""
        self._since: datetime | None = None
        self._named: set[str] = set()
        self._causes: dict[str, str] = {}  # a cause -> the first worker named with it
        self.refusals: tuple[Refusal, ...] = ()
        self._stalled_since: float | None = None

    def start(self, objective: str, now: datetime) -> None:
        """Watch refusals of the payload ``objective`` (its sha256) recorded from ``now``
        (the store's clock at the run's start) on. A refusing worker renews its record every
        ``RENEW_S`` while it receives our trials, so older records are of workers that
        refused another run and may be fixed or gone since."""
        self._objective = objective
        self._since = now - timedelta(seconds=RENEW_S)

    def update(self, exp: Experiment | None) -> None:
        """Read the refusals from the experiment document, saying once which worker
        refuses and why."""
        since = self._since
        if exp is None or since is None:
            return
        self.refusals = tuple(r for r in exp.refusals if r.objective == self._objective
                              and r.at is not None and r.at >= since)
        for r in self.refusals:
            if r.worker in self._named:
                continue
            self._named.add(r.worker)
            same = self._causes.get(r.reason)
            if same is not None:  # one line per worker, the cause in full once
                log.warning("worker %s cannot load the objective of %r either, for the same "
                            "cause as worker %s", _who(r), self._exp_key, same)
                continue
            self._causes[r.reason] = r.worker
            log.warning("worker %s cannot load the objective of %r and passes its trials to "
                        "the other workers: %s. The run stops if no other worker runs them "
                        "within %g s (dispatch_timeout)", _who(r), self._exp_key,
                        r.reason.rstrip("."), self._grace_s)

    def check(self, trials: Trials, now: float) -> None:
        """Stop the run when its trials waited ``grace_s`` with none running while workers
        refuse them (``now``: ``time.monotonic()``).

        Raises:
            ObjectiveUnloadable: no worker runs the trials and some cannot load the objective;
                the message names each of those, with its cause and the fix.
        """
        states = {trials.known(tid).state for tid in trials.in_flight}
        if TrialState.RUNNING in states or TrialState.NEW not in states:
            self._stalled_since = None
            return
        if self._stalled_since is None:
            self._stalled_since = now
        if self.refusals and now - self._stalled_since >= self._grace_s:
            raise ObjectiveUnloadable(self._message())

    def _message(self) -> str:
        n = len(self.refusals)
        by_cause: dict[str, list[Refusal]] = {}
        for r in self.refusals:
            by_cause.setdefault(r.reason, []).append(r)
        who = "; ".join(f"{', '.join(_who(r) for r in rs)}: {cause.rstrip('.')}"
                        for cause, rs in by_cause.items())
        return (f"no worker can load the objective of {self._exp_key!r}: its trials waited "
                f"{self._grace_s:g} s (dispatch_timeout) with none running, and "
                f"{n} worker{'s' if n != 1 else ''} cannot load it. {who}. Fix "
                f"{'that worker' if n == 1 else 'those workers'} as said and restart "
                f"{'it' if n == 1 else 'them'}, or start a worker that can load the "
                "objective; the trials they passed on used up no attempt")


def _who(r: Refusal) -> str:
    return f"{r.worker} (pid {r.pid} on {r.host})"
