"""A coordinator process for the fault tests:
``python -m tests.support.coordinator_proc CONFIG.json``.

It runs ``fmin(fault_objectives.<objective>, space(sleep), tpe.suggest, max_evals,
trials=MongoTrials(...))`` and writes ``{"reason", "best", "counts", "error"}`` as JSON to
``config["out"]``. Keys of the config: ``mongo_url``, ``broker``, ``queue``, ``secret``,
``exp_key``, ``max_evals``, ``parallelism``, ``objective``, ``sleep``, ``seed``, ``lease``,
``heartbeat``, ``dispatch_timeout``, ``timeout``.

Test-only fault hooks, all explicit and confined to this script (none lives in ``src/``):

- ``crash_on_dispatch: K``: on the K-th ``CeleryRunner.dispatch`` call, after the trials were
  inserted and before any message is published, write their tids to ``<out>.orphans`` and
  ``os._exit(17)``: a coordinator dying between insert and publish.
- ``driver_lease_s``: shorten ``parzen.runners.celery.driver.DRIVER_LEASE_S`` (30 s) so a test can
  watch a takeover after the driver lease expires.

SIGINT (Ctrl-C) is left to Python's default handler: ``fmin`` sees KeyboardInterrupt, cancels
the queue and returns the best trial so far.
"""

from __future__ import annotations

import faulthandler
import json
import logging
import os
import signal
import sys
import traceback
from typing import Any

import numpy as np


def main(config_path: str) -> int:
    # SIGUSR1 dumps every thread's stack to the log: how a test shows where a coordinator
    # that will not end is stuck (faults.Coordinator.wait sends it before killing).
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    # A process started from a shell's background job inherits SIGINT *ignored* (POSIX:
    # without job control, background commands ignore SIGINT and SIGQUIT), and Python then
    # installs no KeyboardInterrupt handler: a test's Ctrl-C would do nothing. Ctrl-C at a
    # terminal is what the tests mean, so give the coordinator Python's own handler.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    cfg: dict[str, Any] = json.loads(open(config_path).read())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s", stream=sys.stdout)
    os.environ["PARZEN_TEST_SIDE_EFFECTS"] = cfg["side_effects"]
    import parzen.mongoexp as distributed
    import parzen.runners.celery as celery_runner
    import parzen.runners.celery.driver as driver
    from parzen import fmin, tpe
    from parzen.trial import TrialState
    from tests.support import fault_objectives

    if "driver_lease_s" in cfg:
        driver.DRIVER_LEASE_S = float(cfg["driver_lease_s"])
    crash_on = cfg.get("crash_on_dispatch")
    if crash_on:
        original = celery_runner.CeleryRunner.dispatch
        calls = [0]

        def dispatch(self: Any, tids: Any) -> None:
            calls[0] += 1
            if calls[0] == crash_on:
                with open(cfg["out"] + ".orphans", "w") as f:
                    json.dump(list(tids), f)
                os._exit(17)  # the trials are in MongoDB; no message was published
            original(self, tids)

        celery_runner.CeleryRunner.dispatch = dispatch  # type: ignore[method-assign]

    trials = distributed.MongoTrials(
        cfg["mongo_url"], exp_key=cfg["exp_key"], broker=cfg["broker"], queue=cfg["queue"],
        secret=cfg["secret"], parallelism=int(cfg.get("parallelism", 2)),
        lease=float(cfg["lease"]), heartbeat=float(cfg["heartbeat"]), poll_interval=0.05,
        dispatch_timeout=float(cfg.get("dispatch_timeout", 60.0)))
    out: dict[str, Any] = {"pid": os.getpid()}
    fn = getattr(fault_objectives, cfg.get("objective", "sleepy"))
    try:
        best = fmin(fn, fault_objectives.space(float(cfg.get("sleep", 0.2))),
                    algo=tpe.suggest, max_evals=int(cfg["max_evals"]),
                    timeout=cfg.get("timeout"), trials=trials, show_progressbar=False,
                    rstate=np.random.default_rng(int(cfg.get("seed", 0))))
        out["best"] = best
    except KeyboardInterrupt:
        out["error"] = "KeyboardInterrupt"
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    trials.refresh()
    try:
        out["best_so_far"] = trials.argmin
    except Exception:  # no trial succeeded
        out["best_so_far"] = None
    out["counts"] = {s.name: n for s, n in trials.store.count_by_state(trials.exp_key).items()}
    out["new_or_running"] = sum(n for s, n in trials.store.count_by_state(
        trials.exp_key).items() if s in (TrialState.NEW, TrialState.RUNNING))
    trials.close()
    with open(cfg["out"], "w") as f:
        json.dump(out, f)
    print("coordinator done:", json.dumps(out), flush=True)
    return 0 if "error" not in out else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
