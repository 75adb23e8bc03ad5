"""The evaluation child's main loop: ``python -m parzen._sandbox_child FD``.

It receives verified objective bytes (or an import path) and points over the socket ``FD``,
and answers with results or the objective's exception. It trusts its supervisor, which
checked every payload's signature before sending it.
"""

from __future__ import annotations

import multiprocessing.connection
import sys
import traceback

from parzen.sandbox import ObjectiveRef


def _child_main(conn: multiprocessing.connection.Connection) -> None:
    import cloudpickle

    from parzen.domain import Domain
    from parzen.payload import import_objective

    cache: dict[str, Domain] = {}
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        kind = msg[0]
        if kind == "load":
            ref: ObjectiveRef = msg[1]
            try:
                if ref.pickle is not None:
                    fn, space = cloudpickle.loads(ref.pickle)
                else:
                    assert ref.import_path is not None and ref.space_pickle is not None
                    fn = import_objective(ref.import_path)
                    space = cloudpickle.loads(ref.space_pickle)
                cache.clear()  # one objective at a time keeps memory bounded
                cache[ref.key] = Domain(fn, space)
                conn.send(("loaded",))
            except Exception as exc:
                conn.send(("unloadable", type(exc).__name__, str(exc),
                           getattr(exc, "name", None)))
        elif kind == "eval":
            _, key, tid, params = msg
            try:
                result = cache[key].evaluate(params, tid)
                conn.send(("ok", result))
            except Exception as exc:
                conn.send(("error", type(exc).__name__, str(exc),
                           "".join(traceback.format_exception(type(exc), exc,
                                                              exc.__traceback__))))


if __name__ == "__main__":
    _child_main(multiprocessing.connection.Connection(int(sys.argv[1])))
