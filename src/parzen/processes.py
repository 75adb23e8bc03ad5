"""Whether a process on this machine is still running: the test for a dead coordinator, and
for a dead worker whose trials need not wait out their lease.

A pid names a process only within one pid namespace of one running kernel: two containers
on one host (often with the same host name) have separate pids, and a pid is reused once its
process is gone. ``pid_namespace`` and ``start_ticks`` record what makes a pid unambiguous,
and ``gone`` judges only a process recorded in this very namespace.
"""

from __future__ import annotations

import functools
import os
import socket
import sys


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
    stat = _stat(pid)
    if stat is None:  # no /proc (macOS), or the process ended meanwhile
        return True
    return stat[0] not in (b"Z", b"X")


def _stat(pid: int) -> list[bytes] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (the state first), or None
    when there is no such file."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            # "pid (comm) state ...": comm may hold spaces and parentheses, so split after
            # the last ")".
            return f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None


@functools.cache
def pid_namespace() -> str:
    """Where this process's pids mean something: ``"<boot id>/<pid namespace inode>"``, or
    ``""`` where that cannot be told (no Linux ``/proc``, or a ``/proc`` mounted from
    another pid namespace, as in a container that shares the host's ``/proc``).

    Two processes with the same value see the same pids: the same kernel boot and the same
    pid namespace. The host name cannot tell that: containers on one host may share it, each
    with pids of its own.

    On macOS, which has no pid namespaces, every process of the host shares one pid space:
    ``"darwin:<host name>"`` (no start time can be read there, so ``gone`` trusts the pid
    alone; a pid reused meanwhile reads as alive, which only means waiting for a lease).
    """
    if sys.platform == "darwin":
        return f"darwin:{socket.gethostname()}"
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
        # /proc shows the pids of the namespace it was mounted in; ours only if it names us.
        if int(os.readlink("/proc/self")) != os.getpid():
            return ""
    except (OSError, ValueError):
        return ""
    return f"{boot}/{namespace}" if boot else ""


def start_ticks(pid: int) -> int:
    """When ``pid`` started, in clock ticks after boot (``/proc/<pid>/stat``'s starttime);
    0 when unknown. With ``pid_namespace`` it names one process even after its pid is
    reused."""
    stat = _stat(pid)
    try:
        return int(stat[19]) if stat is not None else 0
    except (IndexError, ValueError):
        return 0


def gone(namespace: str, pid: int, started: int) -> bool:
    """True only when it is certain that process ``pid``, which started at ``started``
    (``start_ticks``) in pid namespace ``namespace`` (``pid_namespace``), has ended: the
    namespace is this process's own, and no process has that pid, or only a zombie, or
    another process started since (the pid was reused). Anything unknown is False: a
    process recorded elsewhere, or without a namespace or start time, may well live."""
    if not namespace or pid <= 0 or namespace != pid_namespace():
        return False
    if namespace.startswith("darwin:"):
        return not pid_alive(pid)
    if started <= 0:
        return False
    if not pid_alive(pid):
        return True
    now = start_ticks(pid)
    return now != 0 and now != started
