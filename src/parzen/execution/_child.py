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
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from typing import Any

import cloudpickle

from parzen.domain import Domain
from parzen.execution.messages import (
    Evaluate,
    Load,
    Loaded,
    Raised,
    Returned,
    ToChild,
    Unloadable,
)
from parzen.execution.payload import import_objective
from parzen.trial import ErrorInfo


def _unpicklable_path(value: Any, path: str) -> tuple[str, Any] | None:
    """The key path and value of the first part of ``value`` that cannot be pickled."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            key = json.dumps(k, ensure_ascii=False) if isinstance(k, str) else repr(k)
            found = _unpicklable_path(v, f"{path}[{key}]")
            if found is not None:
                return found
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            found = _unpicklable_path(v, f"{path}[{i}]")
            if found is not None:
                return found
    else:
        try:
            pickle.dumps(value)
        except Exception:  # pickling raises whatever the value's __reduce__ raises
            return path, value
    return None


def _send_result(conn: multiprocessing.connection.Connection, result: Any) -> None:
    """Send the result, or, when part of it cannot be pickled, an InvalidResult naming that
    part's key path (``result["handles"][0]``) instead of a bare pickling error."""
    try:
        conn.send(Returned(result))  # pickles first: a failure writes nothing to the socket
        return
    except OSError:
        raise  # the supervisor is gone
    except Exception as exc:  # pickling raises TypeError, PicklingError, ValueError, ...
        where, what = _unpicklable_path(result, "result") or ("result", result)
        message = (f"{where}: cannot store a {type(what).__module__}."
                   f"{type(what).__qualname__}: it cannot be sent back from the objective's "
                   f"process ({type(exc).__name__}: {exc}); results may hold numbers, "
                   "strings, bytes, datetimes, lists, dicts and numpy values")
    conn.send(Raised(ErrorInfo("InvalidResult", message)))


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
                _send_result(conn, cache[msg.key].evaluate(msg.params, msg.tid))
            except Exception as exc:  # the objective's failure is the trial's ERROR
                conn.send(Raised(ErrorInfo(type(exc).__name__, str(exc), "".join(
                    traceback.format_exception(type(exc), exc, exc.__traceback__)))))


def _exit_with_supervisor(poll_s: float = 0.5) -> None:
    """Exit as soon as the supervisor (the worker) dies.

    The child runs in a session of its own, so a ``kill -9`` of the worker does not reach
    it: without this watch it would go on evaluating, for as long as the objective takes
    (hours, for a hung one), although nobody will ever read its result. When the supervisor
    dies the child is re-parented, which ``getppid()`` shows; a thread is used rather than
    ``PR_SET_PDEATHSIG`` because that fires when the *thread* that started the child exits,
    and worker slots are threads.
    """
    supervisor = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != supervisor:
                os._exit(70)

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()


if __name__ == "__main__":
    _exit_with_supervisor()
    _child_main(multiprocessing.connection.Connection(int(sys.argv[1])))
