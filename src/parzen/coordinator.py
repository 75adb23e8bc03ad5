"""The fmin loop: suggest, insert, dispatch, refresh, decide whether to stop.

Decisions (how many points to ask for, when to stop) are pure functions of the counts and the
settings; the loop does the I/O around them. Every exit logs its reason.
"""

from __future__ import annotations

import functools
import logging
import os
import pickle
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from parzen.domain import Domain
from parzen.exceptions import AllTrialsFailed, ExperimentLocked, InvalidTrial, SpaceChanged
from parzen.execution.run import retry_unavailable
from parzen.progress import Progress
from parzen.runners import Runner
from parzen.trial import TrialState
from parzen.trials import Trials

log = logging.getLogger("parzen.fmin")

# Consecutive ERROR trials (objective raised) with no success at all after which the run
# stops instead of burning the rest of max_evals on a broken objective.
FAIL_FAST_AFTER = 10

# How long the loop rides out an unreachable store (a MongoDB restart or failover) before
# fmin gives up with StoreUnavailable. The workers keep running trials meanwhile.
STORE_PATIENCE_S = 300.0
# While shutting down the run is over: give up on the store sooner.
CLOSE_PATIENCE_S = 10.0

T = TypeVar("T")


def patiently(op: Callable[[], T], what: str, patience_s: float = STORE_PATIENCE_S) -> T:
    """``op()``, retried for up to ``patience_s`` while the store is unavailable.

    Used for reads, tid allocation (a lost reply burns tids, which are never reused), inserts
    of the same trials (idempotent by tid: a retry after an insert whose reply was lost
    neither duplicates nor orphans a trial), cancels and the driver lease release.

    Raises:
        StoreUnavailable: the store stayed unreachable for ``patience_s`` seconds.
    """
    return retry_unavailable(op, what, patience_s)


@dataclass(frozen=True)
class RunSettings:
    """The validated stopping and queueing settings of one fmin call."""

    max_evals: int
    timeout: float | None
    loss_threshold: float | None
    max_queue_len: int  # the in-flight target: max(fmin's max_queue_len, parallelism)
    early_stop_fn: Callable[..., Any] | None
    poll_interval_s: float = 0.05
    save_file: str = ""
    show_progressbar: bool = True


@dataclass(frozen=True)
class Counts:
    """What the loop knows of the experiment after a refresh."""

    new: int
    running: int
    done: int
    error: int
    failed_ok: int  # DONE with status fail
    best: float | None

    @property
    def in_flight(self) -> int:
        return self.new + self.running

    @property
    def finished(self) -> int:
        return self.done + self.error

    @property
    def counted(self) -> int:
        """Trials that use up max_evals: everything but cancelled ones."""
        return self.in_flight + self.finished


def count(trials: Trials) -> Counts:
    """The loop's view of ``trials`` after a refresh; O(1), kept incrementally by Trials."""
    by = trials.state_counts()
    return Counts(by[TrialState.NEW], by[TrialState.RUNNING], by[TrialState.DONE],
                  by[TrialState.ERROR], trials._n_fail_status, trials.best_loss)


def algo_seed(rstate: np.random.Generator, first_tid: int) -> int:
    """The seed for one algorithm call.

    It mixes in the first new tid: a run resumed with the same ``rstate`` would otherwise
    replay the first run's seeds and propose the points it already tried. A fresh run with the
    same ``rstate`` still gets the same seeds, so it stays reproducible.
    """
    return (int(rstate.integers(2**31 - 1)) + 1_000_003 * first_tid) % (2**31 - 1)


def stop_reason(c: Counts, s: RunSettings, elapsed: float) -> str | None:
    """Why the run should stop now, or None to go on."""
    if c.finished >= s.max_evals and c.in_flight == 0:
        return f"max_evals={s.max_evals} reached"
    if s.loss_threshold is not None and c.best is not None and c.best <= s.loss_threshold:
        return f"loss_threshold={s.loss_threshold} reached (best loss {c.best:.6g})"
    if s.timeout is not None and elapsed >= s.timeout:
        return f"timeout={s.timeout}s reached"
    if c.error >= FAIL_FAST_AFTER and c.done == 0:
        return "all trials failed"
    return None


def n_to_suggest(c: Counts, s: RunSettings) -> int:
    """How many new points to ask the algorithm for."""
    return max(0, min(s.max_queue_len - c.in_flight, s.max_evals - c.counted))


def check_points(domain: Domain, points: Sequence[Mapping[str, Any]]
                 ) -> list[dict[str, Any]]:
    """User-given points, validated against the space.

    Raises:
        InvalidTrial: a point is outside the space; the message names its index.
    """
    checked = []
    for i, p in enumerate(points):
        try:
            checked.append(domain.space.check_assignment(p))
        except InvalidTrial as exc:
            raise InvalidTrial(f"points_to_evaluate[{i}]: {exc}") from None
    return checked


def insert_points(trials: Trials, checked: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert points checked by ``check_points`` as NEW trials."""
    tids = patiently(lambda: trials.new_trial_ids(len(checked)), "allocating tids")
    docs = trials.docs_for_points(tids, checked, origin="points_to_evaluate")
    return patiently(lambda: trials.insert_trial_docs(docs), "inserting trials")


def save_trials(trials: Trials, path: str) -> None:
    """Pickle ``trials`` to ``path`` atomically (write a temp file, then rename)."""
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".parzen-", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(trials, f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def run(domain: Domain, trials: Trials, algo: Callable[..., Any], runner: Runner,
        rstate: np.random.Generator, settings: RunSettings,
        points_to_evaluate: Sequence[Mapping[str, Any]] | None = None) -> str:
    """Run the optimisation loop until a stopping condition holds.

    Returns:
        The reason the loop stopped.
    Raises:
        AllTrialsFailed: the first trials all raised; the message carries the first traceback.
    """
    start = time.monotonic()
    patiently(trials.refresh, "reading the experiment")
    # NEW trials already in `trials` (generate_trials_to_calculate, a resumed experiment)
    # belong to this run too; without a dispatch the inline runner would never see them.
    queued = sorted(t for t in trials.in_flight if trials.known(t).state is TrialState.NEW)
    c = count(trials)
    progress = Progress(settings.max_evals if settings.max_evals < 2**62 else None,
                        c.finished, settings.show_progressbar)
    early_state: list[Any] = []
    exhausted = False
    last_save = 0.0
    reason: str | None = None
    cancelled = True
    owner = False  # whether this run may cancel the experiment's queued trials at the end
    try:
        # Checked before the runner's first call: runners write nothing until then (see
        # CeleryRunner), so a bad point leaves no trace.
        points = check_points(domain, points_to_evaluate) \
            if points_to_evaluate and len(trials) == 0 else []
        runner.maintain()  # a MongoTrials runner takes the driver lease here
        owner = True
        if queued:
            runner.dispatch(queued)
        if points:
            runner.dispatch(insert_points(trials, points))
        while True:
            runner.maintain()
            patiently(trials.refresh, "refreshing trials")
            c = count(trials)
            progress.update(c.finished, c.running, c.error, c.best)
            reason = stop_reason(c, settings, time.monotonic() - start)
            if reason is None and settings.early_stop_fn is not None and c.finished:
                stop, early_state = settings.early_stop_fn(trials, *early_state)
                if stop:
                    reason = "early_stop_fn asked to stop"
            if reason is not None:
                break
            n = 0 if exhausted else n_to_suggest(c, settings)
            if n > 0:
                new_ids = patiently(functools.partial(trials.new_trial_ids, n),
                                    "allocating tids")
                docs = algo(new_ids, domain, trials, algo_seed(rstate, new_ids[0]))
                if len(docs) < n:
                    exhausted = True
                    log.info("the algorithm returned %d of %d requested points: the search "
                             "space is exhausted", len(docs), n)
                if docs:
                    # Check the driver lease again just before writing: if this process was
                    # paused (SIGSTOP, a VM freeze) since the top of the loop, another
                    # coordinator may own the experiment now, and trials inserted here would
                    # be run but counted by nobody.
                    runner.maintain()
                    runner.dispatch(patiently(functools.partial(trials.insert_trial_docs, docs),
                                              "inserting trials"))
            if exhausted and c.in_flight == 0 and n == 0:
                reason = "search space exhausted"
                break
            if settings.save_file and time.monotonic() - last_save > 1.0:
                save_trials(trials, settings.save_file)
                last_save = time.monotonic()
            runner.wait(settings.poll_interval_s)
        cancelled = c.in_flight > 0
    except (ExperimentLocked, SpaceChanged):
        # Another coordinator drives the experiment (it took over while this one stalled
        # past its driver lease, or won the race to start it): the queued and running
        # trials are its own, not ours to cancel.
        owner = False
        raise
    finally:
        runner.close(cancelled and owner)
        # Local runners release running trials to NEW while closing; cancel those too. A
        # distributed runner cancels its queue itself, before giving up its driver lease.
        if owner and not getattr(runner, "cancels_on_close", False):
            n_cancelled = patiently(
                functools.partial(trials.store.cancel, trials.exp_key, (TrialState.NEW,)),
                "cancelling queued trials", CLOSE_PATIENCE_S)
            if n_cancelled:
                log.info("cancelled %d queued or running trials", n_cancelled)
        patiently(trials.refresh, "refreshing trials", CLOSE_PATIENCE_S)
        c = count(trials)
        progress.update(c.finished, c.running, c.error, c.best)
        progress.close()
        if settings.save_file:
            save_trials(trials, settings.save_file)
    log.info("fmin stopped: %s (%d done, %d failed)", reason, c.done, c.error)
    if reason == "all trials failed":
        errs = trials.errors()
        first = errs[0][1] if errs else None
        detail = (f"; the first (trial {errs[0][0]}) raised {first.type}: {first.message}\n"
                  f"{first.traceback}") if first is not None else ""
        raise AllTrialsFailed(f"{c.error} of {c.finished} trials failed and none succeeded; "
                              f"stopping{detail}")
    return reason or "stopped"
