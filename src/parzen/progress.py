"""Progress reporting: parzen's tqdm bar (done / running / failed counts and the best loss),
and hyperopt's progress callbacks.

hyperopt's protocol: ``fmin(show_progressbar=callback)`` where ``callback(initial=...,
total=...)`` is a context manager yielding an object with ``update(n)`` and a settable
``postfix``; ``tqdm_progress_callback`` and ``no_progress_callback`` are the two it ships.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from tqdm import tqdm

ProgressCallback = Callable[..., Any]  # (initial=, total=) -> a context manager


class Progress:
    """A bar over completed trials; a no-op when disabled.

    Args:
        total: max_evals, or None when only timeout/early stopping bounds the run.
        initial: trials already finished (a resumed run).
        enabled: ``show_progressbar``: True for parzen's bar, False for none, or a hyperopt
            progress callback (a context-manager factory taking ``initial`` and ``total``).
    """

    def __init__(self, total: int | None, initial: int,
                 enabled: bool | ProgressCallback) -> None:
        self._bar: Any = None
        self._ctx: Any = None
        self._callback: contextlib.AbstractContextManager[Any] | None = None
        self._n = initial
        if callable(enabled):
            self._callback = enabled(initial=initial, total=total)
            self._ctx = self._callback.__enter__()
        elif enabled:
            self._bar = tqdm(total=total, initial=initial, unit="trial", dynamic_ncols=True,
                             desc="parzen", leave=True)

    def update(self, finished: int, running: int, failed: int, best: float | None,
               pruned: int = 0) -> None:
        if self._ctx is not None:
            if finished > self._n:
                if best is not None:
                    self._ctx.postfix = f"best loss: {best}"
                self._ctx.update(finished - self._n)
                self._n = finished
            return
        if self._bar is None:
            return
        if finished > self._n:
            self._bar.update(finished - self._n)
            self._n = finished
        best_s = f"{best:.6g}" if best is not None and math.isfinite(best) else "-"
        post = f"best loss: {best_s}"
        if running:
            post += f", running: {running}"
        if failed:
            post += f", failed: {failed}"
        if pruned:
            post += f", pruned: {pruned}"
        self._bar.set_postfix_str(post, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._callback is not None:
            callback, self._callback, self._ctx = self._callback, None, None
            callback.__exit__(None, None, None)
        if self._bar is not None:
            self._bar.close()


class _ThroughTqdm:
    """A stream that prints through ``tqdm.write``, so output does not break the bar."""

    def __init__(self, target: TextIO) -> None:
        self._target = target

    def write(self, text: str) -> int:
        if text:
            tqdm.write(text, file=self._target, end="")
        return len(text)

    def flush(self) -> None:
        self._target.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


@contextlib.contextmanager
def tqdm_progress_callback(initial: int, total: int | None) -> Iterator[Any]:
    """hyperopt's default progress: a tqdm bar on the real stdout, with ``sys.stdout`` and
    ``sys.stderr`` printing through it while it is open (restored on exit)."""
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _ThroughTqdm(out), _ThroughTqdm(err)
    try:
        with tqdm(total=total, initial=initial, file=out, postfix={"best loss": "?"},
                  dynamic_ncols=True, unit="trial") as bar:
            yield bar
    finally:
        sys.stdout, sys.stderr = out, err


class _Silent:
    postfix: Any = None

    def update(self, n: int) -> None:
        return None


@contextlib.contextmanager
def no_progress_callback(initial: int, total: int | None) -> Iterator[Any]:
    """hyperopt's silent progress: ``update`` does nothing."""
    yield _Silent()


default_callback = tqdm_progress_callback

__all__ = ["Progress", "default_callback", "no_progress_callback", "tqdm_progress_callback"]
