"""A plain ``pip install parzen`` holds what the distributed mode imports.

kombu's Redis transport imports ``redis`` and ``packaging``, which only kombu's ``redis``
extra requires: with ``celery`` alone, a worker and a coordinator on a machine without the
test tools died with ``No module named 'packaging'``. The dev environment hides that
(pytest needs ``packaging``), so the closure of the declared runtime requirements is
checked instead.
"""

from __future__ import annotations

import importlib.metadata as md

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def runtime_closure(dist: str) -> set[str]:
    """Distributions a plain install of ``dist`` brings, extras of its requirements included
    (test, dev and other optional extras of ``dist`` itself excluded)."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(dist, frozenset[str]())]
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        for line in md.requires(name) or []:
            req = Requirement(line)
            wanted = [{"extra": e} for e in extras] or [{"extra": ""}]
            if req.marker is not None and not any(req.marker.evaluate(env) for env in wanted):
                continue
            todo.append((canonicalize_name(req.name), frozenset(req.extras)))
    return {name for name, _ in seen}


def test_a_plain_install_brings_the_redis_transport_and_its_imports() -> None:
    closure = runtime_closure("parzen")
    for needed in ("celery", "kombu", "redis", "packaging", "pymongo", "cloudpickle"):
        assert needed in closure, f"pip install parzen does not bring {needed}"
    assert "pytest" not in closure and "mongomock" not in closure


def test_the_transport_imports_with_them() -> None:
    import kombu.transport.redis as transport

    assert transport.Transport.driver_type == "redis"
