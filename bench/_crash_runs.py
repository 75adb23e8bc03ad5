"""Drivers for ``failures.py``: one run of a library on a crash problem, K trials pending.

Loaded in both venvs (``_crash_worker.py``); each library is imported inside its driver. A
run returns what every evaluation gave, in the order the results came back: the loss, or
None and the exception's type for a trial that crashed.

How each library is driven:

- **parzen** (``tpe.suggest``) and **random** (parzen's ``rand.suggest``) go through parzen's
  own loop, so a crash reaches the sampler exactly as in ``fmin``: the objective raises, and
  ``run_trial`` records an ERROR trial with the exception. K = 1 is ``parzen.fmin`` itself
  with ``Trials()``. K = 4 is the coordinator's loop (``coordinator.run``, with fmin's
  ``Proposer``) over ``SimulatedWorkers``, a runner whose K workers each hold one claimed
  (RUNNING) trial and finish in the simulated order of ``Completions``.
- **optuna**: the default ``TPESampler(seed=s)`` through ask/tell; a crash is told as
  ``TrialState.FAIL``. At K = 4 the sampler is ``TPESampler(seed=s, constant_liar=True)``
  with four trials asked and not yet told, finishing in the same simulated order.
- **hyperopt**: ``hyperopt.fmin`` with ``tpe.suggest``, ``Trials()`` and
  ``catch_eval_exceptions=True`` (an ERROR trial per crash); K = 1 only.

Every run checks that each crash the objective raised is an ERROR (or FAIL) trial in the
library's own records, and that no other trial failed.
"""

from __future__ import annotations

import heapq
import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from _crash_problems import Crash, CrashProblem, get_crash_problem
from problems import build_hp_space, native_point, point_distance, suggest_optuna

ALGOS = ("parzen", "random", "optuna", "hyperopt")
# Which interpreter runs each: parzen's from the checkout under test, or the anchor venv.
PARZEN_SIDE = ("parzen", "random")
# A crash ends this early, as a share of a trial that runs: an out-of-memory error comes at
# the first batch, a divergence within the first steps.
CRASH_DURATION = 0.25
# Two failed points closer than this (``problems.point_distance``) count as the same point
# proposed again.
REPEAT_DISTANCE = 0.01


class BenchCheckFailed(RuntimeError):
    """A run's records disagree with what the objective did: the benchmark is wrong."""


class Completions:
    """The simulated clock of K workers: which pending trial finishes next.

    Each trial started gets a duration drawn from the seed's own generator, in start order,
    uniform on [0.5, 1.5), times ``crash_duration`` when it crashes; it finishes at start time
    plus duration. The same seed gives every library the same durations for its i-th trial.
    """

    def __init__(self, seed: int, crash_duration: float) -> None:
        self._rng = np.random.default_rng([seed, 4099])
        self._crash_duration = crash_duration
        self._heap: list[tuple[float, int, Any]] = []
        self._started = 0
        self.now = 0.0

    def start(self, item: Any, crashes: bool) -> None:
        duration = float(self._rng.uniform(0.5, 1.5)) * (self._crash_duration if crashes else 1.0)
        heapq.heappush(self._heap, (self.now + duration, self._started, item))
        self._started += 1

    def next(self) -> Any:
        """The pending item that finishes first; the clock moves to its end."""
        self.now, _, item = heapq.heappop(self._heap)
        return item

    def __len__(self) -> int:
        return len(self._heap)


class Evaluations:
    """The objective as each library calls it, counting the crashes it raises."""

    def __init__(self, prob: CrashProblem) -> None:
        self.prob = prob
        self.raised: Counter[str] = Counter()

    def __call__(self, point: Mapping[str, Any]) -> float:
        pt = native_point(self.prob.params, point)
        try:
            return self.prob.objective(pt)
        except Crash as exc:
            self.raised[type(exc).__name__] += 1
            raise


def _record(prob: CrashProblem, rows: Sequence[tuple[Mapping[str, Any], float | None, str | None]],
            raised: Counter[str], seconds: float, stopped: str | None,
            warnings: Sequence[str] = (), max_pending: int | None = None) -> dict[str, Any]:
    """The result of one run from ``(native point, loss or None, error type or None)`` rows
    in completion order, after checking them against the crashes the objective raised."""
    stored = Counter(err for _, _, err in rows if err is not None)
    if stored != raised:
        raise BenchCheckFailed(
            f"{prob.name}: the objective raised {dict(raised)} but the library recorded "
            f"{dict(stored)} failed trials")
    failed_points = [pt for pt, _, err in rows if err is not None]
    repeats = sum(
        1 for i, p in enumerate(failed_points)
        if any(point_distance(prob.params, p, q) < REPEAT_DISTANCE for q in failed_points[:i]))
    return {
        "losses": [loss for _, loss, _ in rows],
        "errors": dict(stored),
        "n": len(rows),
        "failed": sum(stored.values()),
        # Failed points that repeat an earlier failed point (within REPEAT_DISTANCE).
        "failed_repeats": repeats,
        "seconds": seconds,
        "stopped": stopped,
        "warnings": list(warnings),
        # Most trials pending at once (K > 1 runs; None for fmin's own K = 1 loop).
        "max_pending": max_pending,
    }


# --------------------------------------------------------------------------
# parzen and random search: parzen's own loop
# --------------------------------------------------------------------------


class _Captured(logging.Handler):
    """Keeps parzen's warnings of one run (the failure-share warning among them) for the
    result, instead of printing one per run."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage()[:300])


def run_parzen(algo: str, prob: CrashProblem, seed: int, evals: int, k: int,
               crash_duration: float) -> dict[str, Any]:
    import parzen
    from parzen.exceptions import AllTrialsFailed
    from parzen.trial import TrialState

    suggest = parzen.tpe.suggest if algo == "parzen" else parzen.rand.suggest
    space = build_hp_space(parzen.hp, prob.params)
    objective = Evaluations(prob)
    trials = parzen.Trials()
    captured = _Captured()
    logger = logging.getLogger("parzen")
    logger.addHandler(captured)
    propagate, logger.propagate = logger.propagate, False
    stopped = None
    order: list[int] | None = None
    max_pending = None
    t0 = time.perf_counter()
    try:
        if k == 1:
            parzen.fmin(objective, space, algo=suggest, max_evals=evals, trials=trials,
                        rstate=np.random.default_rng(seed), catch_eval_exceptions=True,
                        show_progressbar=False)
        else:
            order, max_pending = _run_parzen_async(objective, space, suggest, trials, seed,
                                                   evals, k, crash_duration)
    except AllTrialsFailed as exc:
        stopped = str(exc).splitlines()[0]
    finally:
        logger.removeHandler(captured)
        logger.propagate = propagate
    seconds = time.perf_counter() - t0
    trials.refresh()
    finished = [t for t in trials.all_trials()
                if t.state in (TrialState.DONE, TrialState.ERROR)]
    if order is not None:
        by_tid = {t.tid: t for t in finished}
        finished = [by_tid[tid] for tid in order if tid in by_tid]
    rows = []
    for t in finished:
        pt = native_point(prob.params, parzen.space_eval(space, t.params))
        if t.state is TrialState.ERROR:
            assert t.error is not None
            rows.append((pt, None, t.error.type))
        else:
            rows.append((pt, float(t.result["loss"]), None))
    return _record(prob, rows, objective.raised, seconds, stopped, captured.messages,
                   max_pending)


def _run_parzen_async(objective: Callable[[Any], float], space: Any, suggest: Any,
                      trials: Any, seed: int, evals: int, k: int,
                      crash_duration: float) -> tuple[list[int], int]:
    """fmin's loop with K trials pending, over ``SimulatedWorkers``; returns the tids in the
    order they finished and the most trials pending at once. Built as ``fmin`` builds it: a
    ``Domain``, the ``Proposer`` of ``suggest``, ``RunSettings`` with ``max_queue_len=K`` and
    ``rstate=default_rng(seed)``."""
    from parzen.coordinator import Proposer, RunSettings, run
    from parzen.domain import Domain
    from parzen.samplers import sampler_for

    domain = Domain(objective, space)
    workers = _simulated_workers(domain, trials, Completions(seed, crash_duration))
    settings = RunSettings(max_evals=evals, timeout=None, loss_threshold=None, max_queue_len=k,
                           early_stop_fn=None, show_progressbar=False)
    run(domain, trials, Proposer(suggest, sampler_for(suggest)), workers,
        np.random.default_rng(seed), settings)
    return workers.finished, workers.max_pending


def _simulated_workers(domain: Any, trials: Any, clock: Completions) -> Any:
    """A ``SimulatedWorkers`` runner (the class is built here: it derives from parzen's
    ``InlineRunner``, which only the parzen venv has)."""
    from parzen.execution.run import run_trial
    from parzen.execution.sandbox import AbortReason, EvaluationAborted
    from parzen.runners.base import Closing
    from parzen.runners.inline import InlineRunner
    from parzen.trial import Owner

    class Held:
        """One worker's trial: claimed and evaluated at once, its result held back until the
        clock says it finished."""

        def __init__(self) -> None:
            self.evaluated = threading.Event()
            self.release = threading.Event()
            self.crashed = False
            self.abandon = False

        def evaluate(self, params: Mapping[str, Any], tid: int, _abort: Any) -> dict[str, Any]:
            try:
                result, exc = domain.evaluate(params, tid), None
            except Exception as raised:  # the objective's crash, raised again below
                result, exc = None, raised
            self.crashed = exc is not None
            self.evaluated.set()
            self.release.wait()
            if self.abandon:
                raise EvaluationAborted(AbortReason.SHUTDOWN)
            if exc is not None:
                raise exc
            assert result is not None
            return result

    class SimulatedWorkers(InlineRunner):
        """K workers, each holding one RUNNING trial; ``wait`` lets the one that finishes
        first (by ``Completions``) record its outcome through ``run_trial``, as a worker's
        slot does. Derives from ``InlineRunner`` for the rest of the runner protocol."""

        def __init__(self) -> None:
            super().__init__(domain, trials, catch_eval_exceptions=True)
            self.finished: list[int] = []
            self.max_pending = 0
            self._owner_sim = Owner(worker="bench-simulated", host=socket.gethostname(),
                                    pid=os.getpid())
            self._held: dict[int, tuple[Held, threading.Thread]] = {}

        def dispatch(self, tids: Sequence[int]) -> None:
            for tid in tids:
                held = Held()
                thread = threading.Thread(target=self._work, args=(tid, held), daemon=True)
                thread.start()
                held.evaluated.wait()  # claimed (RUNNING) and evaluated: deterministic
                self._held[tid] = (held, thread)
                clock.start(tid, held.crashed)
            self.max_pending = max(self.max_pending, len(self._held))

        def _work(self, tid: int, held: Held) -> None:
            run_trial(trials.store, trials.exp_key, tid, self._owner_sim, held.evaluate)
            held.evaluated.set()  # when not claimed, evaluate never ran

        def wait(self, timeout_s: float) -> None:
            if not len(clock):
                return
            tid = clock.next()
            held, thread = self._held.pop(tid)
            held.release.set()
            thread.join()
            self.finished.append(tid)

        def close(self, closing: Closing) -> None:
            # Stopped early (all trials failed): the held trials go back to the queue
            # uncounted, and the inline runner's close cancels them.
            for held, thread in self._held.values():
                held.abandon = True
                held.release.set()
                thread.join()
            self._held.clear()
            super().close(closing)

    return SimulatedWorkers()


# --------------------------------------------------------------------------
# optuna: ask/tell, FAIL told to the study
# --------------------------------------------------------------------------


def run_optuna(prob: CrashProblem, seed: int, evals: int, k: int,
               crash_duration: float) -> dict[str, Any]:
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=k > 1)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    objective = Evaluations(prob)
    clock = Completions(seed, crash_duration)
    outcomes: dict[int, tuple[Any, dict[str, Any], float | None, str | None]] = {}
    rows: list[tuple[Mapping[str, Any], float | None, str | None]] = []
    t0 = time.perf_counter()
    asked = max_pending = 0

    def ask() -> None:
        nonlocal asked, max_pending
        trial = study.ask()
        params = suggest_optuna(trial, prob.params)
        try:
            loss, err = objective(params), None
        except Crash as exc:
            loss, err = None, type(exc).__name__
        outcomes[trial.number] = (trial, params, loss, err)
        clock.start(trial.number, err is not None)
        asked += 1
        max_pending = max(max_pending, len(clock))

    while asked < min(k, evals):
        ask()
    while len(clock):
        trial, params, loss, err = outcomes.pop(clock.next())
        if err is None:
            study.tell(trial, loss)
        else:
            study.tell(trial, state=TrialState.FAIL)
        rows.append((native_point(prob.params, params), loss, err))
        if asked < evals:
            ask()
    seconds = time.perf_counter() - t0
    failed = sum(1 for t in study.get_trials(deepcopy=False) if t.state == TrialState.FAIL)
    if failed != sum(objective.raised.values()):
        raise BenchCheckFailed(f"optuna recorded {failed} FAIL trials for "
                               f"{sum(objective.raised.values())} crashes")
    return _record(prob, rows, objective.raised, seconds, None, max_pending=max_pending)


# --------------------------------------------------------------------------
# hyperopt: its fmin, K = 1
# --------------------------------------------------------------------------


def run_hyperopt(prob: CrashProblem, seed: int, evals: int, k: int) -> dict[str, Any]:
    if k != 1:
        raise ValueError("hyperopt runs at K = 1 only: its fmin has no pending-trials mode")
    import hyperopt

    space = build_hp_space(hyperopt.hp, prob.params)
    objective = Evaluations(prob)
    trials = hyperopt.Trials()
    t0 = time.perf_counter()
    hyperopt.fmin(objective, space, algo=hyperopt.tpe.suggest, max_evals=evals, trials=trials,
                  rstate=np.random.default_rng(seed), catch_eval_exceptions=True,
                  show_progressbar=False)
    seconds = time.perf_counter() - t0
    rows = []
    for doc in sorted(trials._dynamic_trials, key=lambda d: d["tid"]):
        vals = {name: v[0] for name, v in doc["misc"]["vals"].items() if v}
        pt = native_point(prob.params, hyperopt.space_eval(space, vals))
        if doc["state"] == hyperopt.JOB_STATE_ERROR:
            # hyperopt keeps the exception as (str(type(exc)), str(exc)): "<class 'm.Crash'>".
            kind = str(doc["misc"]["error"][0]).rsplit(".", 1)[-1].rstrip("'>")
            rows.append((pt, None, kind))
        else:
            rows.append((pt, float(doc["result"]["loss"]), None))
    return _record(prob, rows, objective.raised, seconds, None)


def run_failure_job(job: Mapping[str, Any]) -> dict[str, Any]:
    """One run: ``{"algo", "problem", "seed", "evals", "k", "crash_duration"}``."""
    algo = job["algo"]
    prob = get_crash_problem(job["problem"])
    seed, evals, k = int(job["seed"]), int(job["evals"]), int(job["k"])
    crash_duration = float(job.get("crash_duration", CRASH_DURATION))
    if algo in PARZEN_SIDE:
        return run_parzen(algo, prob, seed, evals, k, crash_duration)
    if algo == "optuna":
        return run_optuna(prob, seed, evals, k, crash_duration)
    if algo == "hyperopt":
        return run_hyperopt(prob, seed, evals, k)
    raise ValueError(f"unknown algo {algo!r}; choose from {', '.join(ALGOS)}")
