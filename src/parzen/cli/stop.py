"""``parzen stop EXP``: ask the coordinator of a live run to end it, as Ctrl-C would.

The request travels through the store: ``stop`` on the experiment document, addressed to the
driver lease holder, that is to the one fmin call running now (``TrialStore.request_stop``).
The coordinator reads it within about a second, cancels its queued and running trials,
releases the experiment and returns the best trial to its caller. A later run of the
experiment holds another lease, so it ignores the request; the coordinator also drops the
request when it releases the lease.

``parzen stop`` then waits (``--wait``) until the coordinator has let the experiment go, and
says how the run ended.
"""

from __future__ import annotations

import argparse
import getpass
import os
import socket
import sys
import time

from parzen.cli._format import out
from parzen.cli._registry import command
from parzen.cli._source import add_source_arguments, driver_state, experiment, opened
from parzen.exceptions import ConfigError
from parzen.store import TrialStore
from parzen.trial import TrialState

DEFAULT_WAIT_S = 60.0


@command("stop")
def _configure_stop(p: argparse.ArgumentParser) -> None:
    add_source_arguments(p)
    p.add_argument("--wait", metavar="S", type=float, default=DEFAULT_WAIT_S,
                   help="seconds to wait for the coordinator to end the run (default "
                        f"{DEFAULT_WAIT_S:g}; 0: ask and return at once)")
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = ("examples:\n  parzen stop mnist\n  parzen stop mnist --wait 0\n\n"
                "The coordinator cancels the queued and running trials and its fmin returns "
                "the best trial so far,\nas after Ctrl-C. Resume the run with a new fmin on "
                "the same exp_key.")
    p.set_defaults(run=run_stop)


def requester() -> str:
    """Who asks, for the coordinator's log: ``user@host (pid N)``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (a bare container)
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()} (pid {os.getpid()})"


def run_stop(args: argparse.Namespace) -> int:
    if args.file:
        raise ConfigError("a local run has no coordinator to ask: stop its fmin with Ctrl-C "
                          "(it saves the file as it goes)")
    with opened(args) as src:
        store = src.store
        exp = experiment(src, args.exp)
        alive, detail = driver_state(exp, store.now())
        driver = exp.driver
        if not alive or driver is None \
                or not store.request_stop(exp.exp_key, driver.holder, requester()):
            print(f"parzen stop: no coordinator is running {exp.exp_key!r} (its driver: "
                  f"{detail}): nothing to stop. Queued trials wait for the next run; "
                  f"parzen cancel {exp.exp_key} cancels them", file=sys.stderr)
            return 1
        out(f"asked the coordinator of {exp.exp_key!r} (pid {driver.pid} on {driver.host}) "
            "to end its run")
        if args.wait <= 0:
            return 0
        if not _wait_released(store, exp.exp_key, driver.holder, args.wait):
            print(f"parzen stop: the coordinator has not ended the run within {args.wait:g} s "
                  "(it reads the request about once a second: is it stalled?). Interrupt it "
                  f"(pid {driver.pid} on {driver.host}), or wait for its driver lease to run "
                  "out", file=sys.stderr)
            return 1
        out(_summary(store, exp.exp_key))
    return 0


def _wait_released(store: TrialStore, exp_key: str, holder: str, wait_s: float) -> bool:
    """Whether the run of ``holder`` let the experiment go within ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while True:
        exp = store.get_experiment(exp_key)
        if exp is None or exp.driver is None or exp.driver.holder != holder:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


def _summary(store: TrialStore, exp_key: str) -> str:
    n = store.count_by_state(exp_key)
    best = store.find(exp_key, [TrialState.DONE], limit=1, sort="loss")
    loss = best[0].loss if best else None
    return (f"stopped: {exp_key!r} has {n[TrialState.DONE]} done, {n[TrialState.ERROR]} "
            f"error and {n[TrialState.CANCEL]} cancelled trials"
            + (f"; the best loss is {loss:.6g} (trial {best[0].tid})" if loss is not None
               else "") + f". A new fmin with exp_key={exp_key!r} resumes it")
