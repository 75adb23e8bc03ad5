"""The judge: where a running trial's reports land, get written, and get their answer.

One ``Judge`` per claimed attempt, made by ``run_trial``. A report reaches it directly (an
objective in this process) or carried by a runner (the sandbox's supervisor, from its child's
``Report`` message): a runner finds the judge of the trial it evaluates with
``current_judge()``, passes each report to ``Judge.report`` and sends the answer back. That
is all a runner has to do for pruning.

**Where the decision is made.** The pruner is a pure rule over reported values, so the judge
applies it right here, where the report lands, against the peers' curves read from the
store: on a worker for ``MongoTrials`` (the pruner's settings travel in the experiment
document), in the coordinator's process for ``Trials`` and ``ParallelTrials``. The report
waits for the answer, so the decision reaches the objective in one local round trip plus, at a
decision point only (a rung), one read of the experiment's curves: milliseconds, where a
coordinator writing a prune flag for the worker to find at its next heartbeat would cost a
write, a poll and a heartbeat interval. The coordinator learns of the pruned trial like of
any finished one.

**Batches.** Values are written with the lease renewal, as one fenced write (``report`` of
the store): at once at a decision point (the peers then see this trial's value at the rung),
else at most every ``batch_s`` (and at each heartbeat), so a loop reporting every few
milliseconds costs about one write a second. A worker that dies keeps what it had written;
what it reported in its last ``batch_s`` is lost with it.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from parzen.exceptions import StoreError
from parzen.pruners import Curve, Pruner
from parzen.reporting import reporting_to
from parzen.store import TrialStore
from parzen.trial import STATUS_FAIL, Intermediate, Trial

log = logging.getLogger("parzen.execution.judge")

# Longest a worker holds reported values before writing them (with the lease renewal).
REPORT_BATCH_S = 1.0
# How long the peers' curves read for one decision serve the next ones of this attempt.
PEERS_MAX_AGE_S = 0.5

_judge: contextvars.ContextVar[Judge | None] = contextvars.ContextVar(
    "parzen_judge", default=None)


def current_judge() -> Judge | None:
    """The judge of the trial this thread is running, for a runner carrying reports."""
    return _judge.get()


def pruned_result(step: int | None, loss: float | None) -> dict[str, Any]:
    """The result stored on a PRUNED trial: status fail (so no hyperopt reader takes it for
    a finished evaluation), and where it stopped."""
    return {"status": STATUS_FAIL, "pruned": {"step": step, "loss": loss}}


class Judge:
    """Collects one attempt's reports, writes them in batches and applies the pruner.

    Args:
        store: the trial store.
        trial: the claimed trial (its claim token fences every write).
        pruner: the rule, or None to record without ever stopping.
        lease_s: the lease each write renews.
        batch_s: the longest values wait before being written; 0 writes every report.
    """

    def __init__(self, store: TrialStore, trial: Trial, pruner: Pruner | None,
                 lease_s: float, batch_s: float) -> None:
        assert trial.claim_token is not None
        self._store = store
        self._trial = trial
        self._token = trial.claim_token
        self._pruner = pruner
        self._lease_s = lease_s
        self._batch_s = batch_s
        self._lock = threading.Lock()  # the heartbeat thread flushes too
        # The curve's number: the attempt, but never one an earlier curve used. ``parzen
        # requeue`` restarts a trial's attempts at 0 and keeps its reports, so its next run
        # would otherwise extend the old curve with steps from 1 again.
        self._attempt = max(trial.attempts,
                            1 + max((r.attempt for r in trial.intermediate), default=0))
        self._steps: list[int] = []
        self._losses: list[float] = []
        self._pending: list[Intermediate] = []
        self._last_write = time.monotonic()
        self._peers: tuple[float, list[Curve]] | None = None
        self.pruned = False

    @property
    def last(self) -> tuple[int | None, float | None]:
        """The last reported step and loss (None, None before any)."""
        return (self._steps[-1], self._losses[-1]) if self._steps else (None, None)

    def report(self, step: int, loss: float) -> bool:
        """Record ``loss`` at ``step`` (checked by the caller's ``Session``); True when the
        trial should stop."""
        t = self._trial
        with self._lock:
            previous = self._steps[-1] if self._steps else None
            self._steps.append(step)
            self._losses.append(loss)
            self._pending.append(Intermediate(step, loss, self._attempt))
        deciding = self._pruner is not None and not self.pruned \
            and self._pruner.decides_at(t.tid, previous, step)
        if deciding:
            assert self._pruner is not None
            own = Curve(t.tid, tuple(self._steps), tuple(self._losses))
            if self._pruner.should_prune(own, self._peer_curves()):
                self.pruned = True
                log.info("trial %s of %r pruned at step %s (loss %g)", t.tid, t.exp_key, step,
                         loss)
        if deciding or self.pruned or time.monotonic() - self._last_write >= self._batch_s:
            self.flush()
        return self.pruned

    def _peer_curves(self) -> list[Curve]:
        now = time.monotonic()
        if self._peers is not None and now - self._peers[0] < PEERS_MAX_AGE_S:
            return self._peers[1]
        t = self._trial
        try:
            peers = [Curve.of(p) for p in self._store.reported(t.exp_key) if p.tid != t.tid]
        except StoreError as exc:
            # Undecided is safe: the trial goes on, and the next rung asks again.
            log.warning("trial %s of %r: cannot read the other trials' reports (%s); not "
                        "pruning at this step", t.tid, t.exp_key, exc)
            return []
        self._peers = (now, peers)
        return peers

    def flush(self) -> bool:
        """Write the values not yet written, renewing the lease; False if the lease is lost.
        A store error keeps them for the next try."""
        with self._lock:
            pending, self._pending = self._pending, []
            self._last_write = time.monotonic()
        if not pending:
            return True
        t = self._trial
        try:
            ok = self._store.report(t.exp_key, t.tid, self._token, pending, self._lease_s)
        except StoreError as exc:
            with self._lock:
                self._pending[:0] = pending
            log.warning("trial %s of %r: writing %d reported values failed (%s); retrying "
                        "with the next batch", t.tid, t.exp_key, len(pending), exc)
            return True
        return ok

    def beat(self) -> bool:
        """The heartbeat: written values ride it; False if the lease is lost."""
        with self._lock:
            waiting = bool(self._pending)
        if waiting:
            return self.flush()
        t = self._trial
        return self._store.heartbeat(t.exp_key, t.tid, self._token, self._lease_s)


@contextlib.contextmanager
def judging(judge: Judge) -> Iterator[None]:
    """While the block runs, ``parzen.report`` in this thread goes to ``judge``, and a
    runner evaluating elsewhere finds it with ``current_judge()``."""
    token = _judge.set(judge)
    try:
        with reporting_to(judge, judge._trial.tid):
            yield
    finally:
        _judge.reset(token)
