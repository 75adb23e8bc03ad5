"""``pid_alive``: a killed process counts as dead before its parent reaps it; ``gone``: a
process is judged ended only where its pid is certain to mean it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from parzen import processes
from parzen.processes import pid_alive


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux /proc")
def test_a_zombie_is_dead_and_a_running_child_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert pid_alive(child.pid)
        os.kill(child.pid, signal.SIGKILL)
        # Not reaped yet: kill(pid, 0) still succeeds on the zombie.
        deadline = time.monotonic() + 10
        while pid_alive(child.pid):
            assert time.monotonic() < deadline, "a killed child still counts as alive"
            time.sleep(0.01)
        os.kill(child.pid, 0)  # the zombie is still there
    finally:
        child.kill()
        child.wait()
    assert not pid_alive(child.pid)
    assert pid_alive(os.getpid())


@pytest.mark.skipif(not os.path.exists("/proc/self/ns/pid"), reason="needs Linux /proc")
def test_gone_is_certain_only_in_this_pid_namespace() -> None:
    here = processes.pid_namespace()
    assert here and here.count("/") == 1
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = processes.start_ticks(child.pid)
        assert started > 0
        assert not processes.gone(here, child.pid, started)
        # The pid now names a process started at another time: the owner's pid was reused.
        assert processes.gone(here, child.pid, started + 1)
        child.kill()
        child.wait()
        assert processes.gone(here, child.pid, started)
        # Recorded in another namespace (another container on this host, another host), or
        # without what tells a pid apart: nothing is certain, so nothing is gone.
        assert not processes.gone("another-boot/4026531836", child.pid, started)
        assert not processes.gone("", child.pid, started)
        assert not processes.gone(here, child.pid, 0)
    finally:
        child.kill()
        child.wait()
    assert not processes.gone(here, os.getpid(), processes.start_ticks(os.getpid()))


def test_on_macos_the_host_is_one_pid_space_and_a_gone_pid_is_dead(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # macOS has no pid namespaces and no /proc start times: the host name scopes a pid,
    # and a coordinator or worker killed on this Mac is taken for dead at once, as before
    # leases recorded a namespace.
    import socket

    from parzen.store import DriverLease

    monkeypatch.setattr(sys, "platform", "darwin")
    processes.pid_namespace.cache_clear()
    try:
        here = processes.pid_namespace()
        assert here == f"darwin:{socket.gethostname()}"
        gone_pid = 2**22 + 12345  # above the default pid_max: no such process
        assert processes.gone(here, gone_pid, 0)
        assert not processes.gone(here, os.getpid(), 0)  # alive
        assert not processes.gone("darwin:another-mac", gone_pid, 0)
        lease = DriverLease("c", socket.gethostname(), gone_pid, "t", pid_ns=here)
        assert lease.dead_here()
    finally:
        monkeypatch.undo()
        processes.pid_namespace.cache_clear()
    assert not processes.pid_namespace().startswith("darwin:")
