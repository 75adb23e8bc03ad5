"""An objective's traceback shows the user's file, line and source, without parzen's frames
(issue 18 item 10), in every mode, also on a worker that does not have the file."""

from __future__ import annotations

import linecache
import runpy
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from parzen import Trials, fmin, hp, rand
from parzen.domain import Domain
from parzen.execution import payload
from parzen.execution.tracebacks import objective_traceback
from parzen.parallel import ParallelTrials

KEY = b"k" * 32
SCRIPT = textwrap.dedent('''\
    def helper(x):
        # the line below divides by zero
        return 1 / (x - x)


    def train(p):
        if p["x"] > 0:
            helper(p["x"])
        return p["x"]
    ''')


def _script(tmp_path: Path) -> tuple[Any, str]:
    """``train`` from a script file, as a function of ``__main__`` would be: not importable,
    so cloudpickle pickles it by value."""
    path = tmp_path / "user_script.py"
    path.write_text(SCRIPT)
    return runpy.run_path(str(path))["train"], str(path)


def _user_frames_only(text: str, path: str) -> None:
    lines = text.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[1] == f'  File "{path}", line 8, in train', text
    assert lines[2] == '    helper(p["x"])'
    assert f'  File "{path}", line 3, in helper' in lines
    assert "    return 1 / (x - x)" in lines
    assert lines[-1] == "ZeroDivisionError: float division by zero"
    assert "<dynamic-code>" not in text and "parzen" not in text.replace(path, "")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("make", [Trials, lambda: ParallelTrials(parallelism=1)],
                         ids=["Trials", "ParallelTrials"])
def test_the_stored_traceback_starts_at_the_objective(make: Any, tmp_path: Path) -> None:
    train, path = _script(tmp_path)
    trials = make()
    fmin(train, {"x": hp.uniform("x", -1, 1)}, algo=rand.suggest, max_evals=8, trials=trials,
         rstate=np.random.default_rng(0), show_progressbar=False, catch_eval_exceptions=True)
    errors = trials.errors()
    assert errors and len(errors) < 8
    for _, info in errors:
        _user_frames_only(info.traceback, path)


def test_a_worker_without_the_file_shows_its_lines(tmp_path: Path) -> None:
    train, path = _script(tmp_path)
    built = payload.build((train, {"x": hp.uniform("x", -1, 1)}), KEY)
    Path(path).unlink()
    linecache.clearcache()
    _, body = payload.verify(built.data, KEY)
    pickled = tmp_path / "payload.pickle"
    pickled.write_bytes(body)
    # A fresh interpreter, as a worker on another machine: only the payload has the source.
    probe = textwrap.dedent(f'''\
        import cloudpickle
        from parzen.domain import Domain
        from parzen.execution.tracebacks import objective_traceback
        fn, space = cloudpickle.loads(open({str(pickled)!r}, "rb").read())
        try:
            Domain(fn, space).evaluate({{"x": 0.5}}, 0)
        except ZeroDivisionError as exc:
            print(objective_traceback(exc), end="")
        ''')
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    # The probe's own frame comes first here (the worker's are left out, as above).
    lines = out.splitlines()
    at = lines.index(f'  File "{path}", line 8, in train')
    assert lines[at + 1] == '    helper(p["x"])'
    assert lines[at + 2:at + 4] == [f'  File "{path}", line 3, in helper',
                                    "    return 1 / (x - x)"]
    assert "<dynamic-code>" not in out


def test_parzen_frames_below_the_objective_and_parzens_own_errors_stay() -> None:
    def returns_a_string(p: Any) -> Any:
        return "not a loss"

    with pytest.raises(Exception) as err:
        Domain(returns_a_string, {"x": hp.uniform("x", -1, 1)}).evaluate({"x": 0.5}, 0)
    text = objective_traceback(err.value)
    # Every frame is parzen's (the result is checked after the objective returned): kept.
    assert 'parzen/domain.py", line' in text and text.count('  File "') >= 2
    assert text.rstrip().endswith("for trial 0; return a float loss or a dict like "
                                  "{'loss': 0.12, 'status': STATUS_OK}")
