"""``parzen worker`` with test-only fault hooks:
``python -m tests.support.hooked_worker worker --mongo ...``.

The worker code under test is unchanged; each hook, chosen by an environment variable,
changes only the environment the worker runs in:

- ``FAULT_FAST_RESTORE=1``: kombu scans for unacknowledged messages past their
  visibility timeout every second instead of every ~100 s (``unacked_restore_interval`` x
  ``unacked_restore_throttle``), so a short ``PARZEN_VISIBILITY_TIMEOUT`` redelivers a
  running trial's message within the test (scenario 4).
- ``FAULT_HEARTBEAT_STALL="tid:seconds,..."``: the first heartbeat of each listed trial
  blocks for that long before it reaches the store, as in a long GC pause or a starved
  heartbeat thread (scenario 19). Once per trial across all workers (a marker file in
  ``$PARZEN_TEST_SIDE_EFFECTS`` says it happened), so the rerun is not stalled again.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any


def _first_time(name: str) -> bool:
    try:
        fd = os.open(os.path.join(os.environ["PARZEN_TEST_SIDE_EFFECTS"], name),
                     os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def install_hooks() -> None:
    if os.environ.get("FAULT_FAST_RESTORE"):
        from kombu.transport import redis

        redis.Channel.unacked_restore_interval = 1
        redis.Channel.unacked_restore_throttle = 1
    stall = os.environ.get("FAULT_HEARTBEAT_STALL")
    if stall:
        from parzen.store._mongo import MongoTrialStore

        stalls = {int(t): float(s) for t, s in
                  (item.split(":") for item in stall.split(","))}
        original = MongoTrialStore.heartbeat

        def heartbeat(self: Any, exp_key: str, tid: int, claim_token: str,
                      lease_s: float) -> bool:
            if tid in stalls and _first_time(f"stalled-{exp_key}-{tid}"):
                print(f"FAULT: stalling the heartbeat of trial {tid} for {stalls[tid]}s",
                      flush=True)
                time.sleep(stalls[tid])
            return original(self, exp_key, tid, claim_token, lease_s)

        MongoTrialStore.heartbeat = heartbeat  # type: ignore[method-assign]


if __name__ == "__main__":
    install_hooks()
    from parzen.cli import main

    sys.exit(main(sys.argv[1:]))
