"""An objective that starts a child process of its own, and checks that no such process
outlives its trial (scenario 28).

Workers import this module by name (``tests.support.descendants``), so the objective is
pickled by reference. The directory it records in comes from the space (``dir``), not from
the environment, which the sandbox scrubs.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

# A duration no other process on the machine sleeps for, so ``/proc/<pid>/cmdline`` tells
# our grandchild from a process that reused its pid.
SLEEP_ARG = "612.2828"
HANG_FLAG = "hang"


def spawns(p: dict[str, Any]) -> float:
    """Start ``sleep`` (as a training job starts a data loader or a GPU process), record its
    pid in ``<dir>/grandchild-<pid>``, then do what ``p["then"]`` says: ``"hang"`` (while
    ``<dir>/hang`` exists; otherwise return at once without starting anything, so a rerun of
    the trial finishes), ``"return"`` (leaving the process behind) or ``"exit"`` (the
    objective's process dies with code 3)."""
    where = Path(p["dir"])
    then = p.get("then", "hang")
    if then == "hang" and not (where / HANG_FLAG).exists():
        return float(p["x"] ** 2)
    proc = subprocess.Popen(["sleep", SLEEP_ARG], stdin=subprocess.DEVNULL)
    # Its /proc entry shows the new command line a moment after Popen returns; record the
    # pid once it does, so that ``alive`` never mistakes it for another process.
    deadline = time.monotonic() + 30
    while not alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    (where / f"grandchild-{proc.pid}").write_text(str(os.getpid()))
    if then == "exit":
        os._exit(3)
    if then == "hang":
        time.sleep(3600)
    return float(p["x"] ** 2)


def grandchildren(where: Path) -> list[int]:
    """The pids the objective recorded in ``where``."""
    return sorted(int(f.name.split("-", 1)[1]) for f in where.glob("grandchild-*"))


def alive(pid: int) -> bool:
    """Whether ``pid`` is still our ``sleep`` and not a zombie (a dead process whose parent,
    PID 1 in a container without an init, has not reaped it yet)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return SLEEP_ARG.encode() in cmdline and state not in ("Z", "X")


def survivors(where: Path) -> list[int]:
    """Recorded pids still running."""
    return [pid for pid in grandchildren(where) if alive(pid)]
