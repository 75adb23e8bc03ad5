"""Early-stopping helpers for ``fmin(early_stop_fn=...)``, with hyperopt's protocol:
``early_stop_fn(trials, *state) -> (stop, state)``."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from parzen import validation

EarlyStopFn = Callable[..., tuple[bool, list[Any]]]


def no_progress_loss(iteration_stop_count: int = 20,
                     percent_increase: float = 0.0) -> EarlyStopFn:
    """Stop when the best loss has not improved for ``iteration_stop_count`` trials (the
    first trial counts as one, as in hyperopt: if it stays the best, the run stops after
    ``iteration_stop_count`` trials).

    Args:
        iteration_stop_count: how many finished trials without improvement end the run.
        percent_increase: an improvement must beat the best loss by this percentage of its
            magnitude to count.

    Returns:
        A function for ``fmin(early_stop_fn=...)``.
    """
    validation.integer("iteration_stop_count", iteration_stop_count, 1,
                       who="no_progress_loss")

    def stop_fn(trials: Any, best_loss: float | None = None,
                iteration_no_progress: int = 0,
                counted: frozenset[int] = frozenset()) -> tuple[bool, list[Any]]:
        # Count each finished trial once, by tid: with parallel trials, results arrive out of
        # order and after their trials were first seen.
        # A NaN or infinite loss is a failed point, ignored as status fail is.
        fresh = [(d["tid"], d["result"]["loss"]) for d in trials.trials
                 if d["tid"] not in counted and d["result"].get("status") == "ok"
                 and d["result"].get("loss") is not None
                 and math.isfinite(d["result"]["loss"])]
        fresh.sort()
        for _, loss in fresh:
            if best_loss is None:
                # hyperopt counts the first trial as one without progress, so that
                # no_progress_loss(n) stops after n trials when the first stays the best.
                best_loss = loss
                iteration_no_progress = 1
                continue
            threshold = best_loss - abs(best_loss * percent_increase / 100.0)
            if loss < threshold:
                best_loss = loss
                iteration_no_progress = 0
            else:
                iteration_no_progress += 1
        counted = counted | {tid for tid, _ in fresh}
        return (iteration_no_progress >= iteration_stop_count,
                [best_loss, iteration_no_progress, counted])

    return stop_fn
