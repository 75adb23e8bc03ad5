"""Worker slots: each thread of a worker gets a stable, readable slot number for trial owners."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from parzen.store import InMemoryTrialStore
from parzen.worker.runtime import WorkerRuntime


def test_each_thread_keeps_one_slot_and_slots_are_numbered_from_one() -> None:
    runtime = WorkerRuntime(InMemoryTrialStore(), b"k" * 32, "gpu-1")
    barrier = threading.Barrier(3)

    def twice() -> tuple[int, int]:
        first = runtime._slot()
        barrier.wait()  # all three threads hold a slot before any asks again
        return first, runtime._slot()

    with ThreadPoolExecutor(3) as pool:
        pairs = list(pool.map(lambda _: twice(), range(3)))
    assert all(a == b for a, b in pairs)
    assert sorted(a for a, _ in pairs) == [1, 2, 3]
    runtime.close()
