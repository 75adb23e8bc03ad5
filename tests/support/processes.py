"""Process checks shared by the tests that kill evaluations."""

from __future__ import annotations


def alive(pid: int) -> bool:
    """Whether ``pid`` runs. A zombie counts as gone: a killed process whose parent (PID 1 in
    a container without an init, or a Spark Python worker) has not reaped it yet."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return False
