"""Whether a process on this machine is still running: the test for a dead coordinator."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs on this machine.

    A killed process whose parent has not reaped it yet (a zombie) still answers
    ``kill(pid, 0)``, so on Linux its state is read as well: a coordinator killed a moment ago
    must already count as dead.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # "pid (comm) state ...": comm may hold spaces and parentheses, so split after
            # the last ")".
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):  # no /proc (macOS), or the process ended meanwhile
        return True
    return state not in (b"Z", b"X")
