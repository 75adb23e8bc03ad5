"""The store contract's ``request_stop`` on every backend: a request reaches the live holder
of the driver lease only, survives ``put_experiment``, and goes with the lease."""

from __future__ import annotations

from collections.abc import Callable

from parzen.store import DriverLease, Experiment, TrialStore

EXP = "stoppable"
RUN = DriverLease(holder="run-1", host="h", pid=1, started="t0")


def test_a_request_reaches_the_live_holder_only(store: TrialStore,
                                                advance: Callable[[float], None]) -> None:
    assert not store.request_stop(EXP, "run-1", "alice"), "no experiment, no coordinator"
    store.put_experiment(Experiment(EXP))
    assert not store.request_stop(EXP, "run-1", "alice"), "no coordinator"
    assert store.acquire_driver(EXP, RUN, 0.2)
    assert not store.request_stop(EXP, "run-0", "alice"), "not the holder"
    before = store.now()
    assert store.request_stop(EXP, "run-1", "alice@laptop (pid 7)")
    exp = store.get_experiment(EXP)
    assert exp is not None and exp.stop_request is not None
    assert (exp.stop_request.holder, exp.stop_request.by) == ("run-1", "alice@laptop (pid 7)")
    at = exp.stop_request.at
    assert at is not None and before <= at <= store.now()
    store.put_experiment(Experiment(EXP, space_fingerprint="f"))
    exp = store.get_experiment(EXP)
    assert exp is not None and exp.stop_request is not None, "kept by put_experiment"

    store.release_driver(EXP, "run-0")  # not the holder: nothing changes
    exp = store.get_experiment(EXP)
    assert exp is not None and exp.stop_request is not None
    store.release_driver(EXP, "run-1")
    exp = store.get_experiment(EXP)
    assert exp is not None and exp.driver is None and exp.stop_request is None

    assert store.acquire_driver(EXP, RUN, 0.2)
    advance(0.5)  # the lease ran out: that coordinator is presumed gone
    assert not store.request_stop(EXP, "run-1", "alice")
