"""``fmin``: hyperopt's entry point, with its arguments validated before anything runs."""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import pickle
import sys
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from parzen import validation
from parzen.backends import CeleryBackend
from parzen.coordinator import Proposer, RunSettings, run
from parzen.domain import Domain
from parzen.exceptions import ConfigError, InvalidAnnotatedParameter, UnsupportedExpression
from parzen.progress import ProgressCallback
from parzen.pruners import check_pruner
from parzen.runners import build_runner, prepare_settings
from parzen.samplers import sampler_for, tpe
from parzen.space import Node, describe, space_eval
from parzen.trial import TrialState
from parzen.trials import Trials, generate_trials_to_calculate

__all__ = ["fmin", "generate_trials_to_calculate", "space_eval"]

log = logging.getLogger("parzen.fmin")


def _check_rstate(rstate: Any) -> np.random.Generator:
    if rstate is None:
        seed = os.environ.get("HYPEROPT_FMIN_SEED", "")
        return np.random.default_rng(int(seed) if seed.strip() else None)
    if isinstance(rstate, np.random.Generator):
        return rstate
    if isinstance(rstate, np.random.RandomState):
        raise ConfigError(
            "rstate is a legacy numpy RandomState; pass a Generator instead: "
            "rstate=np.random.default_rng(42)"
        )
    if isinstance(rstate, (int, np.integer)) and not isinstance(rstate, bool):
        raise ConfigError(
            f"rstate={rstate!r} is an int; pass a Generator instead: "
            f"rstate=np.random.default_rng({int(rstate)})"
        )
    raise ConfigError(
        f"rstate must be a numpy Generator (np.random.default_rng(seed)), got {rstate!r}"
    )


def _check_algo(algo: Any) -> Callable[..., Any]:
    if algo is None:
        return tpe.suggest
    if isinstance(algo, types.ModuleType):
        short = algo.__name__.rsplit(".", 1)[-1]
        raise ConfigError(
            f"algo is the module {algo.__name__!r}; pass its suggest function: "
            f"algo={short}.suggest"
        )
    if not callable(algo):
        raise ConfigError(f"algo must be callable like tpe.suggest, got {algo!r}")
    return algo  # type: ignore[no-any-return]


class KeywordObjective:
    """``fmin(fn, space="annotated")``: calls ``fn(**point)``; picklable when ``fn`` is."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.__name__ = getattr(fn, "__name__", "objective")

    def __call__(self, point: Mapping[str, Any]) -> Any:
        return self.fn(**point)


def annotated_space(fn: Callable[..., Any]) -> dict[str, Any]:
    """The space written in ``fn``'s annotations: ``def f(x: hp.uniform('x', 0, 1))``.

    Raises:
        InvalidAnnotatedParameter: a parameter is not annotated with a space node.
    """
    try:
        sig = inspect.signature(fn, eval_str=True)
    except (NameError, SyntaxError, TypeError, ValueError):
        sig = inspect.signature(fn)
    space: dict[str, Any] = {}
    for name, param in sig.parameters.items():
        if not isinstance(param.annotation, Node):
            raise InvalidAnnotatedParameter(
                f"fmin(space='annotated'): parameter {name!r} of {getattr(fn, '__name__', fn)} "
                f"is annotated with {param.annotation!r}, not a search-space node; annotate "
                f"every parameter, e.g. {name}: hp.uniform({name!r}, 0, 1)"
            )
        space[name] = param.annotation
    return space


def fmin(
    fn: Callable[[Any], Any],
    space: Any,
    algo: Callable[..., Any] | None = None,
    max_evals: int | None = None,
    timeout: float | None = None,
    loss_threshold: float | None = None,
    trials: Trials | None = None,
    rstate: np.random.Generator | None = None,
    allow_trials_fmin: bool = True,
    pass_expr_memo_ctrl: bool | None = None,
    catch_eval_exceptions: bool = False,
    verbose: bool = True,
    return_argmin: bool = True,
    points_to_evaluate: Sequence[Mapping[str, Any]] | None = None,
    max_queue_len: int = 1,
    show_progressbar: bool | ProgressCallback = True,
    early_stop_fn: Callable[..., Any] | None = None,
    trials_save_file: str = "",
    *,
    pruner: Any = None,
) -> Any:
    """Minimise ``fn`` over ``space``; hyperopt's ``fmin`` with the same semantics.

    Args:
        fn: the objective. Called with a point of ``space``; returns a float loss or a dict
            with ``loss`` and ``status`` (``STATUS_OK``/``STATUS_FAIL``) and any extra keys.
        space: the search space, built with ``parzen.hp`` (and ``parzen.pyll.scope``
            expressions); or ``"annotated"``: the space is ``fn``'s parameter annotations
            and ``fn`` is called with keyword arguments (hyperopt >= 0.2.6).
        algo: ``tpe.suggest`` (default), ``rand.suggest``, ``anneal.suggest`` or
            ``grid.suggest``, or a ``functools.partial`` of one with settings.
        max_evals: stop once this many trials (including earlier ones in ``trials``) finish.
        timeout: stop after this many seconds.
        loss_threshold: stop once a loss <= this is found.
        trials: where trials are kept: ``Trials()`` (default), ``ParallelTrials`` or
            ``MongoTrials``.
        rstate: a ``numpy.random.Generator``; the same one gives the same trials.
        catch_eval_exceptions: record objective exceptions as ERROR trials and go on,
            instead of raising.
        return_argmin: return the best point (choice indices); else, as hyperopt does,
            its value ``space_eval(space, argmin)`` (None when no trial ran).
        points_to_evaluate: points (``{label: value}``, choice indices) to try first.
        max_queue_len: how many points are suggested before their results are known.
        verbose: False hides the progress bar even with ``show_progressbar=True``, as in
            hyperopt.
        show_progressbar: show a tqdm bar with the best loss; or, as in hyperopt, a
            progress callback (``parzen.progress.tqdm_progress_callback``, or any context
            manager factory taking ``initial`` and ``total``).
        early_stop_fn: ``early_stop_fn(trials, *state) -> (stop, state)``.
        trials_save_file: pickle ``trials`` here as the run goes, and resume from it.
        pruner: stop trials whose reported losses (``parzen.report``) say they are
            hopeless: ``parzen.pruners.MedianPruner``, ``AshaPruner`` or
            ``HyperbandPruner``; None (the default) stops none.

    Returns:
        The best trial's parameters (``space_eval(space, best)`` gives values), or, when
        ``return_argmin`` is False, that value itself (None if no trial ran).

    Raises:
        ConfigError: an argument is of the wrong type or range.
        SpaceError: the space is malformed.
        AllTrialsFailed: no trial succeeded.
    """
    if pass_expr_memo_ctrl:
        raise UnsupportedExpression(
            "pass_expr_memo_ctrl is not supported: parzen calls the objective with the "
            "point's value only"
        )
    if isinstance(space, str) and space == "annotated":
        space = annotated_space(fn)
        fn = KeywordObjective(fn)
    validation.run_timeout(timeout)  # hyperopt's messages, which its own tests compare
    validation.run_loss_threshold(loss_threshold)
    algo_fn = _check_algo(algo)
    rng = _check_rstate(rstate)
    if max_evals is None:
        if timeout is None and loss_threshold is None and early_stop_fn is None:
            raise ConfigError(
                "fmin needs a stopping condition: pass max_evals=<int> (or timeout, "
                "loss_threshold or early_stop_fn)"
            )
        evals = sys.maxsize
    else:
        evals = validation.integer("max_evals", max_evals, 0)
    settings = RunSettings(
        max_evals=evals,
        timeout=validation.optional_number("timeout", timeout, low=0, low_open=True),
        loss_threshold=validation.optional_number("loss_threshold", loss_threshold),
        max_queue_len=validation.integer("max_queue_len", max_queue_len, 1),  # raised below
        early_stop_fn=early_stop_fn,
        save_file=str(trials_save_file or ""),
        # hyperopt's rule: verbose=False hides the bar whatever show_progressbar says.
        show_progressbar=(show_progressbar if callable(show_progressbar)
                          else bool(show_progressbar)) if verbose else False,
    )
    if early_stop_fn is not None and not callable(early_stop_fn):
        raise ConfigError(f"early_stop_fn must be callable, got {early_stop_fn!r}")
    if points_to_evaluate is not None and (
            isinstance(points_to_evaluate, (Mapping, str, bytes))
            or not isinstance(points_to_evaluate, Sequence)
            or not all(isinstance(p, Mapping) for p in points_to_evaluate)):
        raise ConfigError(
            "points_to_evaluate must be a list of dicts like [{'x': 0.5, 'kind': 1}], got "
            f"{points_to_evaluate!r:.100}"
        )
    domain = Domain(fn, space)
    if trials is None:
        if settings.save_file and os.path.exists(settings.save_file):
            with open(settings.save_file, "rb") as f:
                trials = pickle.load(f)  # the user's own file, written by a previous run
            log.info("resuming from %s (%d trials)", settings.save_file, len(trials))
        else:
            trials = Trials()
    elif not isinstance(trials, Trials):
        raise ConfigError(
            f"trials must be a parzen Trials, ParallelTrials or MongoTrials, got {trials!r}"
        )
    backend = trials.backend()
    settings = prepare_settings(backend, settings)
    if settings.save_file and isinstance(backend, CeleryBackend):
        # Refused here, before a runner exists: failing at the first save came after the
        # experiment was written and trials were inserted, published and cancelled.
        raise ConfigError(
            f"trials_save_file={settings.save_file!r} does not apply to MongoTrials: its "
            "trials live in MongoDB, and a rerun with MongoTrials(..., "
            f"exp_key={trials.exp_key!r}) resumes them; leave trials_save_file out"
        )
    trials.attachments["space_description"] = describe(space)  # for the parzen tools
    if backend.parallelism > settings.max_queue_len:
        settings = dataclasses.replace(settings, max_queue_len=backend.parallelism)
    checked_pruner = check_pruner(pruner, shipped=isinstance(backend, CeleryBackend))
    runner = build_runner(backend, trials, domain, catch_eval_exceptions=catch_eval_exceptions,
                          max_evals=settings.max_evals if settings.max_evals < 2**62 else None,
                          pruner=checked_pruner)
    proposer = Proposer(algo_fn, sampler_for(algo_fn))
    try:
        run(domain, trials, proposer, runner, rng, settings, points_to_evaluate)
    except KeyboardInterrupt:
        # Ctrl-C ends the search like a timeout would: the loop has already cancelled the
        # queued trials, so hand back the best result so far. With nothing to return, the
        # interrupt goes on to the caller.
        if trials.best_loss is None:
            raise
        log.warning("fmin interrupted (Ctrl-C): queued and running trials cancelled; "
                    "returning the best of %s", finished_counts(trials))
    if not return_argmin:
        # hyperopt returns the best point's value (space_eval of the argmin), or None when
        # no trial succeeded.
        return space_eval(space, trials.argmin) if trials.best_loss is not None else None
    return trials.argmin


def finished_counts(trials: Trials) -> str:
    """``36 ok trials (38 finished, 2 failed)``: the trials with a finite loss, out of those
    that finished; the failed ones are the rest, so the figures always add up."""
    counts = trials.state_counts()
    finished = counts[TrialState.DONE] + counts[TrialState.ERROR]
    ok = trials.ok_count
    return f"{ok} ok trials ({finished} finished, {finished - ok} failed)"


# hyperopt's Trials.fmin calls this module's fmin; Trials sits below it, so it is handed down.
Trials._fmin_entry = fmin
