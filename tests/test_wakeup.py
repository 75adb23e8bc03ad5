"""The finished-trial wake-up: pushes from workers end the coordinator's wait early."""

from __future__ import annotations

import logging
import threading
import time
import uuid

import pytest
import redis

from parzen.worker.wakeup import TTL_S, FinishedSignal, finished_key


@pytest.fixture
def signal(redis_url: str) -> FinishedSignal:
    got = FinishedSignal.from_url(redis_url)
    assert got is not None
    return got


def test_a_push_ends_the_wait_and_clears_the_list(signal: FinishedSignal,
                                                  redis_url: str) -> None:
    exp = f"wake-{uuid.uuid4().hex}"
    client = redis.Redis.from_url(redis_url)
    signal.push(exp, 3)
    signal.push(exp, 4)
    assert 0 < client.ttl(finished_key(exp)) <= TTL_S  # an abandoned list expires
    assert signal.wait(exp, 5.0) is True
    assert client.exists(finished_key(exp)) == 0  # one read of the store covers both


def test_a_push_from_another_thread_wakes_a_waiting_coordinator(signal: FinishedSignal) -> None:
    exp = f"wake-{uuid.uuid4().hex}"
    timer = threading.Timer(0.2, signal.push, args=(exp, 7))
    timer.start()
    try:
        assert signal.wait(exp, 30.0) is True  # returns at the push, not after 30 s
    finally:
        timer.cancel()


@pytest.mark.timeout(30)
def test_without_a_push_the_wait_times_out(signal: FinishedSignal) -> None:
    exp = f"wake-{uuid.uuid4().hex}"
    assert signal.wait(exp, 0.05) is False
    # Under a millisecond, BLPOP's timeout would round to 0, which blocks forever: these
    # must return (the test's timeout fails them otherwise).
    for t in (0.0, 1e-5, 0.0009, 0.0019):
        assert signal.wait(exp, t) is False


def test_other_brokers_keep_polling() -> None:
    assert FinishedSignal.from_url("amqp://guest:guest@localhost:5672//") is None
    assert FinishedSignal.from_url("memory://") is None


def test_an_unreachable_redis_never_fails_a_trial_and_says_so_once(
        caplog: pytest.LogCaptureFixture) -> None:
    # Port 1 refuses connections: the push is dropped with one warning (credentials
    # redacted), and waiting falls back to sleeping out the poll interval.
    signal = FinishedSignal.from_url("redis://user:hunter2@127.0.0.1:1/0")
    assert signal is not None
    with caplog.at_level(logging.WARNING, logger="parzen.worker.wakeup"):
        signal.push("exp", 1)
        signal.push("exp", 2)
        start = time.monotonic()
        assert signal.wait("exp", 0.1) is False
        assert time.monotonic() - start >= 0.09
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "hunter2" not in warnings[0] and "127.0.0.1:1" in warnings[0]
    assert "polling the store" in warnings[0]
