"""Worker process for ``tests/store/test_claim_race.py``: claim every trial it can, report
what it won.

A module of its own so that spawned processes import only this, not the test module.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from parzen.store._mongo import MongoTrialStore
from parzen.trial import Owner


def claim_all(url: str, exp_key: str, n_trials: int, worker: int, ready: Any, start: Any,
              results: Any) -> None:
    """Try to claim tids 0..n-1 (odd workers go backwards) and put ``(worker, won)``."""
    store = MongoTrialStore.from_url(url)
    owner = Owner(f"w{worker}", socket.gethostname(), os.getpid())
    order = range(n_trials) if worker % 2 == 0 else range(n_trials - 1, -1, -1)
    store.now()  # connect and read the server clock before the start signal
    ready.put(worker)
    start.wait()
    won = [tid for tid in order if store.claim(exp_key, tid, owner, 300) is not None]
    results.put((worker, won))
    store.close()
