"""``parzen health FILE``: is the worker that keeps FILE alive? For container probes.

Exit status 0 when the worker touched FILE within ``--max-age`` seconds, 1 otherwise, with
one line that says why. It imports nothing heavy (``parzen/health.py``), so an exec probe
every few seconds costs little.
"""

from __future__ import annotations

import argparse
import sys

from parzen import health
from parzen.cli._registry import command, setup


@command("health")
def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE",
                   help="the worker's health file (parzen worker --health-file FILE)")
    p.add_argument("--max-age", type=float, default=health.READY_MAX_AGE_S, metavar="S",
                   help="seconds since the worker last touched FILE, at most (default "
                        f"{health.READY_MAX_AGE_S:g}: three of its {health.INTERVAL_S:g} s "
                        "intervals)")
    setup(p, run, "  parzen health /tmp/parzen-health                  # readiness\n"
                  f"  parzen health /tmp/parzen-health --max-age {health.LIVE_MAX_AGE_S:g}"
                  "   # liveness\n")


def run(args: argparse.Namespace) -> int:
    found = health.check(args.file, args.max_age)
    print(found.message, file=sys.stdout if found.ok else sys.stderr)
    return 0 if found.ok else 1
