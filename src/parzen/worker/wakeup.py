"""A wake-up for the coordinator when a worker finishes a trial.

The coordinator learns results by reading its in-flight trials from the store. It used to
sleep out ``poll_interval`` between reads, so a trial's end waited up to that long before the
next trial was dispatched. That capped fast trials at parallelism / poll interval: 86
trials/s at parallelism 16 (``bench/throughput.py``). With a Redis broker, each worker now
pushes the tid of every trial it finishes onto a short-lived list of the experiment's. The
coordinator waits on that list (``BLPOP``) for at most the poll interval instead of sleeping.

The list only wakes the coordinator: what finished is still read from the store. A lost
push, a duplicate or Redis being down therefore changes timing, never results, and the
coordinator falls back to polling.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

import redis

from parzen.store.uri import redact

log = logging.getLogger("parzen.worker.wakeup")

# The list outlives a coordinator that stopped reading it by this long, then Redis drops it.
TTL_S = 3600
# A woken coordinator waits at least this fraction of the poll interval between reads, so a
# burst of short trials cannot turn its loop into a busy loop against the store.
MIN_SHARE = 0.1
# A BLPOP timeout of 0 blocks forever, and Redis ends timed-out blocks on its timer (10 times
# a second by default): a 10 us wait took 100 ms. Waits shorter than this are slept instead.
# A longer one is cut to MAX_BLOCK_S, under the client's socket timeout.
MIN_BLOCK_S = 0.002
MAX_BLOCK_S = 5.0


def finished_key(exp_key: str) -> str:
    """The Redis list that wakes ``exp_key``'s coordinator."""
    return f"parzen:finished:{exp_key}"


class FinishedSignal:
    """Push and wait on finished-trial wake-ups through Redis.

    Args:
        client: a Redis client, on the broker's server and database.
        url: the broker URL, for log lines (credentials are redacted).
    """

    def __init__(self, client: redis.Redis, url: str) -> None:
        self._client = client
        self._url = url
        self._warned = False

    @classmethod
    def from_url(cls, url: str) -> FinishedSignal | None:
        """The signal on a ``redis://`` or ``rediss://`` broker; None for other brokers, which
        leave the coordinator polling."""
        if urlsplit(url).scheme not in ("redis", "rediss"):
            return None
        # Timeouts well above any wait (the poll interval), so a hung server costs seconds,
        # not the run.
        client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        return cls(client, url)

    def push(self, exp_key: str, tid: int) -> None:
        """Tell ``exp_key``'s coordinator that trial ``tid`` finished. Never raises: the
        result is in the store already, and the coordinator reads it at its next poll."""
        key = finished_key(exp_key)
        try:
            with self._client.pipeline(transaction=False) as pipe:
                pipe.rpush(key, tid)
                pipe.expire(key, TTL_S)
                pipe.execute()
        except redis.RedisError as exc:
            self._warn(f"could not push the end of trial {tid} of {exp_key!r}", exc)

    def wait(self, exp_key: str, timeout_s: float) -> bool:
        """Block until a trial of ``exp_key`` finishes or ``timeout_s`` passes.

        Without a push this can last up to Redis's timer period (0.1 s by default) longer
        than ``timeout_s``: the server ends timed-out blocks on that timer.

        Returns:
            True when a push woke us; False on the timeout, or sooner when ``timeout_s`` is
            over ``MAX_BLOCK_S`` (the caller sleeps the rest). Redis errors sleep out the
            timeout, as polling did.
        """
        if timeout_s < MIN_BLOCK_S:
            time.sleep(max(0.0, timeout_s))
            return False
        key = finished_key(exp_key)
        start = time.monotonic()
        try:
            got = self._client.blpop([key], timeout=min(timeout_s, MAX_BLOCK_S))
            if got is not None:
                # One read of the store covers every trial that finished meanwhile.
                self._client.delete(key)
        except redis.RedisError as exc:
            self._warn(f"could not wait on {key!r}; polling instead", exc)
            time.sleep(max(0.0, timeout_s - (time.monotonic() - start)))
            return False
        return got is not None

    def _warn(self, what: str, exc: Exception) -> None:
        # Once per process: a Redis outage would otherwise log every trial and every poll.
        if not self._warned:
            self._warned = True
            log.warning("%s at %s: %s: %s (results still arrive by polling the store)",
                        what, redact(self._url), type(exc).__name__, exc)
