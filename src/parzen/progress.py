"""Progress reporting: parzen's own (a tqdm bar on a terminal, plain periodic lines
anywhere else) and hyperopt's progress callbacks.

hyperopt's protocol: ``fmin(show_progressbar=callback)`` where ``callback(initial=...,
total=...)`` is a context manager yielding an object with ``update(n)`` and a settable
``postfix``; ``tqdm_progress_callback`` and ``no_progress_callback`` are the two it ships.

While a bar is drawn on a terminal, whatever else is written there (log records, ``print``
in an in-process objective) goes through ``_BarSafeStream``, which takes the bar off its
line, writes whole lines and draws the bar again below them: a log record never shares a line
with the bar.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

from tqdm import tqdm

ProgressCallback = Callable[..., Any]  # (initial=, total=) -> a context manager

# Not on a terminal (a log file, a CI job, a pipe) a line is written each time another tenth
# of max_evals has finished, and at least this often while anything is in flight, so a log
# shows the run is alive without one redraw per trial.
LINE_EVERY_S = 60.0
LINE_EVERY_FRACTION = 0.1


@dataclass(frozen=True)
class Tally:
    """What a progress report shows.

    Attributes:
        finished: trials that ended (ok, failed or pruned), resumed ones included.
        running: trials a worker is evaluating now.
        failed: finished trials that failed.
        best: the lowest finite loss so far, or None.
        pruned: finished trials the pruner stopped early (shown when there are any).
    """

    finished: int
    running: int
    failed: int
    best: float | None
    pruned: int = 0

    def figures(self) -> str:
        """``best loss: 0.0123, running: 4, failed: 2, pruned: 7``; the failure count is
        always shown, so a log that says ``failed: 0`` answers the question too."""
        best = f"{self.best:.6g}" if self.best is not None and math.isfinite(self.best) \
            else "-"
        counts = [("running", self.running), ("failed", self.failed),
                  ("pruned", self.pruned)]
        return ", ".join([f"best loss: {best}"]
                         + [f"{name}: {n}" for name, n in counts
                            if n or name == "failed"])


def is_terminal(stream: TextIO) -> bool:
    """True when ``stream`` is an interactive terminal (where ``\\r`` redraws a line)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class _View(Protocol):
    def show(self, tally: Tally) -> None: ...

    def close(self, tally: Tally) -> None: ...


class _Bar:
    """A tqdm bar on a terminal; meanwhile other output goes through ``_BarSafeStream``."""

    def __init__(self, total: int | None, initial: int, stream: TextIO) -> None:
        self._bar = tqdm(total=total, initial=initial, unit="trial", dynamic_ncols=True,
                         desc="parzen", leave=True, file=stream)
        self._n = initial
        self._routing = contextlib.ExitStack()
        self._routing.enter_context(output_around(self._bar))

    def show(self, tally: Tally) -> None:
        if tally.finished > self._n:
            self._bar.update(tally.finished - self._n)
            self._n = tally.finished
        self._bar.set_postfix_str(tally.figures(), refresh=False)
        self._bar.refresh()

    def close(self, tally: Tally) -> None:
        self.show(tally)
        try:
            self._routing.close()
        finally:
            self._bar.close()


class _Lines:
    """Plain lines for a stream that is not a terminal: one each time another tenth of the
    total has finished, one at least every ``LINE_EVERY_S`` seconds, and one at the end."""

    def __init__(self, total: int | None, initial: int, stream: TextIO,
                 clock: Callable[[], float]) -> None:
        self._total = total
        self._stream = stream
        self._clock = clock
        self._start = clock()
        self._last_line = self._start
        self._last_written: Tally | None = None
        self._step = max(1, math.ceil(total * LINE_EVERY_FRACTION)) if total else 0
        self._next_at = self._following_step(initial)

    def _following_step(self, finished: int) -> int:
        """The next finished count that earns a line (never, without a total)."""
        if not self._step:
            return sys.maxsize
        return (finished // self._step + 1) * self._step

    def show(self, tally: Tally) -> None:
        now = self._clock()
        if tally.finished >= self._next_at or now - self._last_line >= LINE_EVERY_S:
            self._write(tally, now)

    def close(self, tally: Tally) -> None:
        if tally != self._last_written:
            self._write(tally, self._clock())

    def _write(self, tally: Tally, now: float) -> None:
        if self._total:
            done = (f"{tally.finished}/{self._total} trials finished "
                    f"({100 * tally.finished // self._total}%)")
        else:
            done = f"{tally.finished} trials finished"
        self._stream.write(f"parzen: {done}, {tally.figures()}, "
                           f"{now - self._start:.0f}s elapsed\n")
        self._stream.flush()
        self._last_line = now
        self._last_written = tally
        self._next_at = self._following_step(tally.finished)


class _Callback:
    """A hyperopt progress callback: told of finished trials and the best loss only."""

    def __init__(self, factory: ProgressCallback, total: int | None, initial: int) -> None:
        self._manager: contextlib.AbstractContextManager[Any] = factory(
            initial=initial, total=total)
        self._ctx = self._manager.__enter__()
        self._n = initial

    def show(self, tally: Tally) -> None:
        if tally.finished > self._n:
            if tally.best is not None:
                self._ctx.postfix = f"best loss: {tally.best}"
            self._ctx.update(tally.finished - self._n)
            self._n = tally.finished

    def close(self, tally: Tally) -> None:
        self._manager.__exit__(None, None, None)


class Progress:
    """Progress of one run; a no-op when disabled.

    Args:
        total: max_evals, or None when only timeout/early stopping bounds the run.
        initial: trials already finished (a resumed run).
        enabled: ``show_progressbar``: True for parzen's report (a bar on a terminal, plain
            lines elsewhere), False for none, or a hyperopt progress callback (a
            context-manager factory taking ``initial`` and ``total``).
        stream: where parzen's report goes; ``sys.stderr`` by default.
        clock: seconds, for the interval between plain lines.
    """

    def __init__(self, total: int | None, initial: int, enabled: bool | ProgressCallback,
                 stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._view: _View | None = None
        self._last = Tally(initial, 0, 0, None)
        if callable(enabled):
            self._view = _Callback(enabled, total, initial)
        elif enabled:
            out = stream if stream is not None else sys.stderr
            self._view = _Bar(total, initial, out) if is_terminal(out) \
                else _Lines(total, initial, out, clock)

    def update(self, finished: int, running: int, failed: int, best: float | None,
               pruned: int = 0) -> None:
        """Show the counts after a refresh."""
        self._last = Tally(finished, running, failed, best, pruned)
        if self._view is not None:
            self._view.show(self._last)

    def close(self) -> None:
        """Show the last counts as final and stop reporting."""
        view, self._view = self._view, None
        if view is not None:
            view.close(self._last)


class _BarSafeStream:
    """A stream that writes whole lines above a tqdm bar: it takes the bar off its line,
    writes, and draws the bar again. A partial line waits for its newline, since a redraw
    after it would overwrite it."""

    def __init__(self, target: TextIO, bar: Any) -> None:
        self._target = target
        self._bar = bar
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        head, newline, self._pending = self._pending.rpartition("\n")
        if newline:
            self._emit(head + newline)
        return len(text)

    def _emit(self, text: str) -> None:
        with self._bar.get_lock():
            self._bar.clear(nolock=True)
            self._target.write(text)
            self._target.flush()
            self._bar.refresh(nolock=True)

    def drain(self) -> None:
        """Write a partial line still waiting (the bar is about to go)."""
        if self._pending:
            text, self._pending = self._pending, ""
            self._emit(text + "\n")

    def flush(self) -> None:
        self._target.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


def _stream_handlers() -> list[logging.StreamHandler[Any]]:
    loggers = [logging.getLogger()] + [
        lg for lg in list(logging.Logger.manager.loggerDict.values())
        if isinstance(lg, logging.Logger)]
    return [h for lg in loggers for h in lg.handlers
            if isinstance(h, logging.StreamHandler)]


@contextlib.contextmanager
def output_around(bar: Any) -> Iterator[None]:
    """While open, ``sys.stdout``, ``sys.stderr`` and every logging handler that writes to
    them write whole lines above ``bar`` instead of onto its line; all restored on exit.

    Handlers keep a reference to the stream they were given (``logging.basicConfig`` takes
    ``sys.stderr`` once), so swapping ``sys.stderr`` alone would not move them.
    """
    out, err = sys.stdout, sys.stderr
    safe = {id(s): _BarSafeStream(s, bar) for s in (out, err) if s is not None}
    swapped: list[tuple[logging.StreamHandler[Any], Any]] = []
    for handler in _stream_handlers():
        route = safe.get(id(handler.stream))
        if route is not None:
            swapped.append((handler, handler.setStream(route)))
    if out is not None:
        sys.stdout = safe[id(out)]
    if err is not None:
        sys.stderr = safe[id(err)]
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out, err
        for handler, original in swapped:
            if isinstance(handler.stream, _BarSafeStream):
                handler.setStream(original)
        for route in safe.values():
            route.drain()


@contextlib.contextmanager
def tqdm_progress_callback(initial: int, total: int | None) -> Iterator[Any]:
    """hyperopt's default progress: a tqdm bar on the real stdout, with ``sys.stdout``,
    ``sys.stderr`` and logging printing above it while it is open (restored on exit)."""
    with tqdm(total=total, initial=initial, file=sys.stdout, postfix={"best loss": "?"},
              dynamic_ncols=True, unit="trial") as bar, output_around(bar):
        yield bar


class _Silent:
    postfix: Any = None

    def update(self, n: int) -> None:
        return None


@contextlib.contextmanager
def no_progress_callback(initial: int, total: int | None) -> Iterator[Any]:
    """hyperopt's silent progress: ``update`` does nothing."""
    yield _Silent()


default_callback = tqdm_progress_callback

__all__ = ["Progress", "Tally", "default_callback", "is_terminal", "no_progress_callback",
           "tqdm_progress_callback"]
