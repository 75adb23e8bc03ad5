"""parzen's progress report: a bar on a terminal that nothing else writes onto, and plain
periodic lines anywhere else (issue 18 item 5), with the failure count (issue 17 item 3)."""

from __future__ import annotations

import contextlib
import io
import logging
import math
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from parzen import STATUS_FAIL, Trials, fmin, hp, rand
from parzen.progress import LINE_EVERY_S, Progress, tqdm_progress_callback


class _Terminal(io.StringIO):
    """A stream that says it is a terminal, so the bar is drawn as on one."""

    def isatty(self) -> bool:
        return True


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _visible_lines(written: str) -> list[str]:
    """What a terminal shows of each line: the text after its last carriage return."""
    return [line.rsplit("\r", 1)[-1] for line in written.split("\n")]


@contextlib.contextmanager
def _logging_to(stream: io.StringIO) -> Iterator[logging.Logger]:
    """A logger with a handler that holds ``stream``, as ``logging.basicConfig`` would."""
    log = logging.getLogger("parzen.test_progress")
    handler = logging.StreamHandler(stream)
    log.addHandler(handler)
    log.propagate = False
    try:
        yield log
    finally:
        log.removeHandler(handler)
        log.propagate = True


def test_not_on_a_terminal_a_line_per_tenth_of_the_run_and_no_redraws() -> None:
    out, clock = io.StringIO(), _Clock()
    progress = Progress(60, 0, True, stream=out, clock=clock)
    for done in range(1, 61):
        clock.now += 0.5
        progress.update(done, 2, done // 20, 0.5 / done)
    progress.close()
    written = out.getvalue()
    assert "\r" not in written
    lines = written.splitlines()
    assert len(lines) == 10, lines
    assert lines[0] == "parzen: 6/60 trials finished (10%), best loss: 0.0833333, " \
        "running: 2, failed: 0, 3s elapsed"
    assert lines[-1].startswith("parzen: 60/60 trials finished (100%), best loss: 0.00833333")
    assert "failed: 3" in lines[-1]


def test_not_on_a_terminal_a_slow_run_still_writes_a_line_every_interval() -> None:
    out, clock = io.StringIO(), _Clock()
    progress = Progress(None, 5, True, stream=out, clock=clock)
    progress.update(5, 1, 0, None)
    assert out.getvalue() == ""
    clock.now = LINE_EVERY_S
    progress.update(5, 1, 0, None)
    clock.now = LINE_EVERY_S + 1
    progress.update(6, 0, 1, None)  # no total: only time earns a line
    progress.close()
    assert out.getvalue().splitlines() == [
        "parzen: 5 trials finished, best loss: -, running: 1, failed: 0, 60s elapsed",
        "parzen: 6 trials finished, best loss: -, failed: 1, 61s elapsed"]


def test_on_a_terminal_the_bar_shows_the_failure_count() -> None:
    term = _Terminal()
    progress = Progress(10, 0, True, stream=term)
    progress.update(4, 1, 2, 0.25)
    progress.close()
    shown = _visible_lines(term.getvalue())
    assert any("4/10" in line and "best loss: 0.25, running: 1, failed: 2" in line
               for line in shown), shown


def test_on_a_terminal_log_records_and_prints_never_share_the_bar_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    monkeypatch.setattr(sys, "stdout", term)
    with _logging_to(term) as log:
        progress = Progress(10, 0, True)
        progress.update(3, 1, 0, 0.5)
        log.warning("the coordinator says something")
        print("partial ", end="")
        print("line")
        progress.update(4, 0, 0, 0.5)
        progress.close()
        assert sys.stdout is term and sys.stderr is term
        assert log.handlers[0].stream is term  # type: ignore[attr-defined]
    shown = _visible_lines(term.getvalue())
    assert "the coordinator says something" in shown
    assert "partial line" in shown
    assert shown[-2].startswith("parzen:") and "4/10" in shown[-2]


def test_on_a_terminal_the_last_resort_handler_writes_above_the_bar(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # No handler configured at all: Python's last resort prints warnings to sys.stderr.
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    log = logging.getLogger("parzen.test_progress.bare")
    monkeypatch.setattr(log, "propagate", False)
    progress = Progress(10, 0, True)
    progress.update(1, 1, 0, None)
    log.warning("no handler anywhere")
    progress.close()
    assert "no handler anywhere" in _visible_lines(term.getvalue())


def test_a_hyperopt_callback_gets_initial_total_and_finished_trials() -> None:
    calls: list[Any] = []

    class _Sink:
        postfix: Any = None

        def update(self, n: int) -> None:
            calls.append(("update", n, self.postfix))

    @contextlib.contextmanager
    def callback(initial: int, total: int | None) -> Iterator[_Sink]:
        calls.append(("open", initial, total))
        yield _Sink()
        calls.append(("close",))

    progress = Progress(10, 2, callback)
    progress.update(2, 1, 0, None)
    progress.update(5, 0, 1, 0.5)
    progress.close()
    assert calls == [("open", 2, 10), ("update", 3, "best loss: 0.5"), ("close",)]


def test_hyperopts_tqdm_callback_puts_log_records_above_its_bar(
        monkeypatch: pytest.MonkeyPatch) -> None:
    term = _Terminal()
    monkeypatch.setattr(sys, "stdout", term)
    with _logging_to(term) as log, tqdm_progress_callback(0, 4) as bar:
        bar.update(1)
        log.warning("from inside the callback's bar")
    assert "from inside the callback's bar" in _visible_lines(term.getvalue())


def test_fmin_writes_plain_lines_to_a_log_file(capsys: pytest.CaptureFixture[str]) -> None:
    fmin(lambda x: (x - 0.5) ** 2, hp.uniform("x", -1, 1), algo=rand.suggest, max_evals=20,
         rstate=np.random.default_rng(0))
    err = capsys.readouterr().err
    assert "\r" not in err
    assert "parzen: 20/20 trials finished (100%)" in err
    assert len(err.splitlines()) <= 11


def test_the_failure_count_is_every_trial_without_a_loss(
        capsys: pytest.CaptureFixture[str]) -> None:
    # Issue 17: raised (error), status fail, and a NaN or infinite loss all count as failed.
    results = iter([1.0, math.nan, {"status": STATUS_FAIL}, 0.5, ValueError("diverged"),
                    math.inf, 0.25])

    def objective(x: float) -> Any:
        r = next(results)
        if isinstance(r, Exception):
            raise r
        return r

    trials = Trials()
    fmin(objective, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=7, trials=trials,
         rstate=np.random.default_rng(0), catch_eval_exceptions=True)
    assert trials.ok_count == 3
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("parzen: 7/7 trials finished (100%), best loss: 0.25, failed: 4")
