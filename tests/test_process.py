"""``pid_alive``: a killed process counts as dead before its parent reaps it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

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
