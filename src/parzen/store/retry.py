"""Riding out an unreachable store: one retry policy for the coordinator, runners and workers.

A MongoDB restart or failover must not throw away finished work or stop a run that would
recover. Only operations that are safe to repeat go through here: reads, and writes that are
idempotent or fenced (a retry after a write whose reply was lost must not apply it twice).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from parzen.exceptions import StoreUnavailable

log = logging.getLogger("parzen.store")

# How long the coordinator rides out an unreachable store before fmin gives up with
# StoreUnavailable. The workers keep running trials meanwhile.
STORE_PATIENCE_S = 300.0
# While shutting down the run is over: give up on the store sooner.
CLOSE_PATIENCE_S = 10.0

T = TypeVar("T")


def retry_unavailable(op: Callable[[], T], what: str, patience_s: float) -> T:
    """``op()``, retried with backoff (0.1 s doubling to 5 s) while the store is unavailable.

    Raises:
        StoreUnavailable: the store stayed unreachable for ``patience_s`` seconds.
    """
    deadline = time.monotonic() + patience_s
    delay = 0.1
    while True:
        try:
            return op()
        except StoreUnavailable as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("%s: %s; retrying in %.1fs", what, exc, delay)
            time.sleep(delay)
            delay = min(2 * delay, 5.0)


def patiently(op: Callable[[], T], what: str, patience_s: float = STORE_PATIENCE_S) -> T:
    """``op()``, retried for up to ``patience_s`` (default ``STORE_PATIENCE_S``) while the
    store is unavailable.

    The coordinator uses it for reads, tid allocation (a lost reply burns tids, which are
    never reused), inserts of the same trials (idempotent by tid: a retry after an insert
    whose reply was lost neither duplicates nor orphans a trial), cancels and the driver
    lease release.

    Raises:
        StoreUnavailable: the store stayed unreachable for ``patience_s`` seconds.
    """
    return retry_unavailable(op, what, patience_s)
