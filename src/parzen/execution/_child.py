"""The evaluation child's main loop: ``python -m parzen.execution._child FD``.

It receives verified objective bytes (or an import path) and points over the socket ``FD``,
and answers with results or the objective's exception. It trusts its supervisor, which
checked every payload's signature before sending it.
"""

from __future__ import annotations

import json
import multiprocessing.connection
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

import cloudpickle

from parzen.domain import Domain
from parzen.execution.messages import (
    Evaluate,
    Load,
    Loaded,
    Pruned,
    Raised,
    Report,
    Returned,
    ToChild,
    Unloadable,
    Verdict,
)
from parzen.execution.payload import import_objective
from parzen.execution.tracebacks import objective_error
from parzen.reporting import TrialPruned, reporting_to
from parzen.trial import ErrorInfo

# How deep ``_deepest`` measures a result's parts: past Python's recursion limit (1000 by
# default), pickle gives up, so anything this deep is too deep to send.
_MEASURE_DEPTH = 10_000


def _parts(value: Mapping[Any, Any] | list[Any] | tuple[Any, ...],
           path: str) -> list[tuple[str, Any]]:
    """The key paths and values one level inside ``value``."""
    if isinstance(value, Mapping):
        return [(f"{path}[{_key(k)}]", v) for k, v in value.items()]
    return [(f"{path}[{i}]", v) for i, v in enumerate(value)]


def _key(key: Any) -> str:
    """A key as the key path shows it: ``"name"`` for a string, else its repr."""
    return json.dumps(key, ensure_ascii=False) if isinstance(key, str) else repr(key)


def _unpicklable_path(value: Any, path: str) -> tuple[str, Any] | None:
    """The key path and value of the first part of ``value`` that cannot be pickled.

    Searched depth-first with a stack of our own rather than by recursion, and each container
    once: a result may contain itself, or nest deeper than Python's recursion limit.
    """
    stack: list[tuple[str, Any]] = [(path, value)]
    searched: set[int] = set()  # the containers are alive in ``value``: their ids are stable
    while stack:
        where, part = stack.pop()
        if isinstance(part, (Mapping, list, tuple)):
            if id(part) not in searched:
                searched.add(id(part))
                stack.extend(reversed(_parts(part, where)))
            continue
        try:
            pickle.dumps(part)
        except Exception:  # pickling raises whatever the value's __reduce__ raises
            return where, part
    return None


def _deepest(value: Any, path: str) -> str:
    """The key path of the part of ``value`` (one level down) that nests deepest."""
    if not isinstance(value, (Mapping, list, tuple)):
        return path
    best, best_depth = path, 0
    for where, part in _parts(value, path):
        depth, level = 0, [part]
        seen: set[int] = set()  # level by level, each container once: a part may be cyclic
        while level and depth < _MEASURE_DEPTH:
            containers = [v for v in level
                          if isinstance(v, (Mapping, list, tuple)) and id(v) not in seen]
            seen.update(id(v) for v in containers)
            level = [child for v in containers
                     for child in (v.values() if isinstance(v, Mapping) else v)]
            depth += 1 if containers else 0
        if depth > best_depth:
            best, best_depth = where, depth
    return best


def _send_result(conn: multiprocessing.connection.Connection, result: Any) -> None:
    """Send the result, or, when part of it cannot be pickled, an InvalidResult naming that
    part's key path (``result["handles"][0]``) instead of a bare pickling error."""
    try:
        conn.send(Returned(result))  # pickles first: a failure writes nothing to the socket
        return
    except OSError:
        raise  # the supervisor is gone
    except RecursionError as exc:  # pickle recurses once per level of nesting
        message = (f"{_deepest(result, 'result')}: nested too deep to be sent back from the "
                   f"objective's process ({type(exc).__name__}: {exc}); flatten it, or write "
                   "it to a file and return the file's path")
    except Exception as exc:  # pickling raises TypeError, PicklingError, ValueError, ...
        where, what = _unpicklable_path(result, "result") or ("result", result)
        message = (f"{where}: cannot store a {type(what).__module__}."
                   f"{type(what).__qualname__}: it cannot be sent back from the objective's "
                   f"process ({type(exc).__name__}: {exc}); results may hold numbers, "
                   "strings, bytes, datetimes, lists, dicts and numpy values")
    conn.send(Raised(ErrorInfo("InvalidResult", message)))


class _SupervisorSink:
    """Carries the objective's reports to the supervisor and waits for its verdict."""

    def __init__(self, conn: multiprocessing.connection.Connection) -> None:
        self._conn = conn

    def report(self, step: int, loss: float) -> bool:
        self._conn.send(Report(step, loss))
        answer = self._conn.recv()
        if not isinstance(answer, Verdict):
            raise RuntimeError(f"the supervisor answered a report with {answer!r}")
        return answer.prune


def _child_main(conn: multiprocessing.connection.Connection) -> None:
    cache: dict[str, Domain] = {}
    while True:
        try:
            msg: ToChild = conn.recv()
        except EOFError:
            return
        if isinstance(msg, Load):
            ref = msg.ref
            try:
                if ref.pickle is not None:
                    fn, space = cloudpickle.loads(ref.pickle)
                else:
                    assert ref.import_path is not None and ref.space_pickle is not None
                    fn = import_objective(ref.import_path)
                    space = cloudpickle.loads(ref.space_pickle)
                cache.clear()  # one objective at a time keeps memory bounded
                cache[ref.key] = Domain(fn, space)
                conn.send(Loaded())
            except Exception as exc:  # the user's module or pickle: anything can fail
                conn.send(Unloadable(type(exc).__name__, str(exc), getattr(exc, "name", None)))
        elif isinstance(msg, Evaluate):
            try:
                with reporting_to(_SupervisorSink(conn), msg.tid):
                    result = cache[msg.key].evaluate(msg.params, msg.tid)
                _send_result(conn, result)
            except TrialPruned as exc:
                conn.send(Pruned(str(exc)))
            except Exception as exc:  # the objective's failure is the trial's ERROR
                conn.send(Raised(objective_error(exc)))


def _exit_with_supervisor(poll_s: float = 0.5) -> None:
    """Exit as soon as the supervisor (the worker) dies.

    The child runs in a session of its own, so a ``kill -9`` of the worker does not reach
    it: without this watch it would go on evaluating, for as long as the objective takes
    (hours, for a hung one), although nobody will ever read its result. When the supervisor
    dies the child is re-parented, which ``getppid()`` shows; a thread is used rather than
    ``PR_SET_PDEATHSIG`` because that fires when the *thread* that started the child exits,
    and worker slots are threads.

    The child leads its own process group (its supervisor starts it in a new session), and
    kills that group on the way out: the processes the objective started (a training job
    holding a GPU) die with it instead of running on under PID 1.
    """
    supervisor = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != supervisor:
                if os.getpgrp() == os.getpid():  # our own group, not a shell's job
                    os.killpg(0, signal.SIGKILL)  # this process included
                os._exit(70)

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()


if __name__ == "__main__":
    _exit_with_supervisor()
    _child_main(multiprocessing.connection.Connection(int(sys.argv[1])))
