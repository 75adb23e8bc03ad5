"""The fmin loop: suggest, insert, dispatch, refresh, decide whether to stop.

Decisions (how many points to ask for, when to stop) are pure functions of the counts and the
settings; the loop does the I/O around them. Every exit logs its reason.
"""

from __future__ import annotations

import enum
import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from parzen.domain import Domain
from parzen.exceptions import (
    AllTrialsFailed,
    ExperimentLocked,
    InvalidTrial,
    NoTrialFinished,
    SpaceChanged,
)
from parzen.failure_watch import FailureWatch
from parzen.progress import Progress, ProgressCallback
from parzen.runners.base import Closing, Runner
from parzen.samplers import Sampler, origin_of
from parzen.store import MongoTrialStore
from parzen.store.retry import CLOSE_PATIENCE_S, patiently
from parzen.trial import TrialState
from parzen.trials import Trials, save_trials

log = logging.getLogger("parzen.fmin")

# Consecutive ERROR trials (objective raised) with no success at all after which the run
# stops instead of burning the rest of max_evals on a broken objective.
FAIL_FAST_AFTER = 10


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
    show_progressbar: bool | ProgressCallback = True


@dataclass(frozen=True)
class Counts:
    """What the loop knows of the experiment after a refresh."""

    new: int
    running: int
    done: int
    error: int
    best: float | None
    ok: int = 0  # finished with a loss
    pruned: int = 0  # stopped early by the pruner: finished, counted by max_evals, not failed

    @property
    def in_flight(self) -> int:
        return self.new + self.running

    @property
    def finished(self) -> int:
        return self.done + self.error + self.pruned

    @property
    def failed(self) -> int:
        """Finished without a loss: ERROR, status fail, or a NaN or infinite loss. A pruned
        trial is not a failure: the pruner stopped it, not the objective."""
        return self.done + self.error - self.ok

    @property
    def counted(self) -> int:
        """Trials that use up max_evals: everything but cancelled ones."""
        return self.in_flight + self.finished


def count(trials: Trials) -> Counts:
    """The loop's view of ``trials`` after a refresh; O(1), kept incrementally by Trials."""
    by = trials.state_counts()
    return Counts(by[TrialState.NEW], by[TrialState.RUNNING], by[TrialState.DONE],
                  by[TrialState.ERROR], trials.best_loss, trials.ok_count,
                  by[TrialState.PRUNED])


def algo_seed(rstate: np.random.Generator, first_tid: int) -> int:
    """The seed for one algorithm call.

    It mixes in the first new tid: a run resumed with the same ``rstate`` would otherwise
    replay the first run's seeds and propose the points it already tried. A fresh run with the
    same ``rstate`` still gets the same seeds, so it stays reproducible.
    """
    return (int(rstate.integers(2**31 - 1)) + 1_000_003 * first_tid) % (2**31 - 1)


class Stop(enum.Enum):
    """Why a run stops; every exit of ``run`` is one of these."""

    MAX_EVALS = "max_evals reached"
    LOSS_THRESHOLD = "loss_threshold reached"
    TIMEOUT = "timeout reached"
    ALL_FAILED = "all trials failed"
    EARLY_STOP = "early_stop_fn asked to stop"
    EXHAUSTED = "search space exhausted"
    REQUESTED = "stop requested (parzen stop)"


@dataclass(frozen=True)
class StopReason:
    """A stop and the figures that explain it, as logged."""

    stop: Stop
    detail: str = ""

    def __str__(self) -> str:
        return self.detail or self.stop.value


def stop_reason(c: Counts, s: RunSettings, elapsed: float) -> StopReason | None:
    """Why the run should stop now, or None to go on."""
    if c.finished >= s.max_evals and c.in_flight == 0:
        return StopReason(Stop.MAX_EVALS, f"max_evals={s.max_evals} reached")
    if s.loss_threshold is not None and c.best is not None and c.best <= s.loss_threshold:
        return StopReason(Stop.LOSS_THRESHOLD, f"loss_threshold={s.loss_threshold} reached "
                          f"(best loss {c.best:.6g})")
    if s.timeout is not None and elapsed >= s.timeout:
        return StopReason(Stop.TIMEOUT, f"timeout={s.timeout}s reached")
    if c.error >= FAIL_FAST_AFTER and c.done == 0:
        return StopReason(Stop.ALL_FAILED)
    return None


def unfinished(trials: Trials) -> tuple[int, int]:
    """Of the queued (NEW) trials in flight: how many no evaluator ever claimed, and how many
    were claimed and given back (a worker that could not load the objective, or stopped)."""
    queued = [t for t in map(trials.known, trials.in_flight) if t.state is TrialState.NEW]
    never = sum(1 for t in queued if not t.history)
    return never, len(queued) - never


def nothing_finished(why: str, running: int, never: int, returned: int, hint: str,
                     timeout: float | None = None) -> NoTrialFinished:
    """The error of a run stopped (its ``timeout``, ``parzen stop``) before any trial
    finished, saying what the trials in flight were doing when it stopped, and the fix.

    Args:
        why: what stopped it: "timeout after 70 s", "asked by parzen stop (...)".
        running: trials that were running (cancelled with the run).
        never: queued trials no evaluator ever claimed.
        returned: queued trials claimed and given back.
        hint: the runner's ``queue_hint()``: where unclaimed trials wait and how to add an
            evaluator there, said when none was running.
        timeout: the run's timeout in seconds, when that stopped it.
    """
    def n(k: int, what: str) -> str:
        return f"{k} {what}{'s' if k != 1 else ''} {'was' if k == 1 else 'were'}"

    parts = []
    if running:
        parts.append(f"{n(running, 'trial')} still running and cancelled" + (
            f": raise the timeout if a trial takes longer than {timeout:g} s"
            if timeout is not None else ""))
    if never and running:  # evaluators there were, all busy: no hint to start one
        parts.append(f"{n(never, 'queued trial')} waiting for a free one")
    elif never:
        parts.append(f"{n(never, 'queued trial')} never picked up{' ' + hint if hint else ''}")
    if returned:
        parts.append(f"{n(returned, 'queued trial')} picked up and given back by workers "
                     "that could not run them (their history says why: parzen trials EXP)")
    return NoTrialFinished(f"{why}: no trial finished" + "".join(f"; {p}" for p in parts))


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
    return patiently(lambda: trials.insert_points(tids, checked, "points_to_evaluate"),
                     "inserting trials")


@dataclass(frozen=True)
class Proposer:
    """How the run gets new points: a parzen sampler built once for the run, whose points
    become trials directly, or a user-supplied hyperopt-style ``algo``, whose trial documents
    are read at this edge.

    Attributes:
        algo: ``suggest(new_ids, domain, trials, seed) -> documents`` (hyperopt's shape).
        sampler: the parzen sampler behind ``algo``, when it is one (``tpe.suggest``, a
            ``functools.partial`` of it, ...), else None.
    """

    algo: Callable[..., Any]
    sampler: Sampler | None

    def propose(self, new_ids: Sequence[int], domain: Domain, trials: Trials, seed: int,
                before_insert: Callable[[], None]) -> list[int]:
        """Insert up to ``len(new_ids)`` NEW trials; fewer means the space is exhausted.
        ``before_insert()`` runs once there is something to insert (the runner's lease
        check).

        Returns:
            The tids inserted.
        """
        if self.sampler is None:
            docs = self.algo(list(new_ids), domain, trials, seed)
            if not docs:
                return []
            before_insert()
            return patiently(functools.partial(trials.insert_documents, docs, True, True),
                             "inserting trials")
        space = domain.space
        if not space.params:
            # A space of constants only (``{"a": 1}``): every trial evaluates it, as in
            # hyperopt; there is nothing to sample.
            points: list[dict[str, Any]] = [{} for _ in new_ids]
        else:
            points = self.sampler.suggest(space, trials.history(space), len(new_ids),
                                          np.random.default_rng(seed))
        if not points:
            return []
        before_insert()
        tids = list(new_ids)[:len(points)]
        origin = origin_of(self.sampler)
        return patiently(functools.partial(trials.insert_points, tids, points, origin),
                         "inserting trials")


def errors_hint(trials: Trials) -> str:
    """Where the user of ``trials`` reads the failed trials' tracebacks."""
    if isinstance(trials.store, MongoTrialStore):
        return f"`parzen errors {trials.exp_key}`"
    return "`trials.errors()` (tid and error of each; hyperopt's `trials._dynamic_trials[i]" \
        "[\"error\"]` holds one trial's)"


def run(domain: Domain, trials: Trials, proposer: Proposer, runner: Runner,
        rstate: np.random.Generator, settings: RunSettings,
        points_to_evaluate: Sequence[Mapping[str, Any]] | None = None) -> StopReason:
    """Run the optimisation loop until a stopping condition holds.

    Returns:
        The reason the loop stopped.
    Raises:
        AllTrialsFailed: the first trials all raised; the message carries the first traceback.
        NoTrialFinished: the timeout, or ``parzen stop``, came before any trial finished;
            the message says what the trials were doing.
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
    watch = FailureWatch(where=errors_hint(trials))
    exhausted = False
    last_save = 0.0
    reason: StopReason | None = None
    closing = Closing.HANDS_OFF  # until the runner has taken the experiment for this run
    try:
        # Checked before the runner starts: runners write nothing until then, so a bad
        # point leaves no trace.
        points = check_points(domain, points_to_evaluate) \
            if points_to_evaluate and len(trials) == 0 else []
        runner.start()
        closing = Closing.STOPPED  # whatever ends the run from here cancels what it left
        if queued:
            runner.dispatch(queued)
        if points:
            runner.dispatch(insert_points(trials, points))
        while True:
            runner.maintain()
            patiently(trials.refresh, "refreshing trials")
            c = count(trials)
            progress.update(c.finished, c.running, c.failed, c.best, pruned=c.pruned)
            watch.check(trials.recent_finished())
            reason = stop_reason(c, settings, time.monotonic() - start)
            if reason is None and settings.early_stop_fn is not None and c.finished:
                stop, early_state = settings.early_stop_fn(trials, *early_state)
                if stop:
                    reason = StopReason(Stop.EARLY_STOP)
            asked = runner.stop_requested() if reason is None else None
            if asked:
                reason = StopReason(Stop.REQUESTED, asked)
            if reason is not None:
                break
            n = 0 if exhausted else n_to_suggest(c, settings)
            if n > 0:
                new_ids = patiently(functools.partial(trials.new_trial_ids, n),
                                    "allocating tids")
                # Check the driver lease again just before writing: if this process was
                # paused (SIGSTOP, a VM freeze) since the top of the loop, another
                # coordinator may own the experiment now, and trials inserted here would be
                # run but counted by nobody.
                inserted = proposer.propose(new_ids, domain, trials,
                                            algo_seed(rstate, new_ids[0]),
                                            before_insert=runner.maintain)
                if len(inserted) < n:
                    exhausted = True
                    log.info("the algorithm returned %d of %d requested points: the search "
                             "space is exhausted", len(inserted), n)
                if inserted:
                    runner.dispatch(inserted)
            if exhausted and c.in_flight == 0 and n == 0:
                reason = StopReason(Stop.EXHAUSTED)
                break
            if settings.save_file and time.monotonic() - last_save > 1.0:
                save_trials(trials, settings.save_file)
                last_save = time.monotonic()
            runner.wait(settings.poll_interval_s)
        closing = Closing.STOPPED if c.in_flight > 0 else Closing.FINISHED
    except (ExperimentLocked, SpaceChanged):
        # Another coordinator drives the experiment (it took over while this one stalled
        # past its driver lease, or won the race to start it): the queued and running
        # trials are its own, not ours to cancel.
        closing = Closing.HANDS_OFF
        raise
    finally:
        running, (never, returned) = c.running, unfinished(trials)  # before close cancels
        runner.close(closing)
        patiently(trials.refresh, "refreshing trials", CLOSE_PATIENCE_S)
        c = count(trials)
        progress.update(c.finished, c.running, c.failed, c.best, pruned=c.pruned)
        progress.close()
        if settings.save_file:
            save_trials(trials, settings.save_file)
    log.info("fmin stopped: %s (%d done, %d failed)", reason, c.done, c.error)
    if reason is not None and reason.stop is Stop.ALL_FAILED:
        errs = trials.errors()
        first = errs[0][1] if errs else None
        detail = (f"; the first (trial {errs[0][0]}) raised {first.type}: {first.message}\n"
                  f"{first.traceback}") if first is not None else ""
        raise AllTrialsFailed(f"{c.error} of {c.finished} trials failed and none succeeded; "
                              f"stopping{detail}")
    assert reason is not None
    if reason.stop is Stop.TIMEOUT and c.finished == 0 and settings.timeout is not None:
        raise nothing_finished(f"timeout after {settings.timeout:g} s", running, never,
                               returned, runner.queue_hint(), settings.timeout)
    if reason.stop is Stop.REQUESTED and c.finished == 0:
        raise nothing_finished(str(reason), running, never, returned, runner.queue_hint())
    return reason
