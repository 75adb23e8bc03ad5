"""Run metadata shared by quality.py and latency.py (when, where, which code)."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def git_revision() -> str:
    """Short HEAD of the repo, with '+dirty' when src/ has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    # parzen numbers depend on src/ only, so only src/ edits make a run "dirty".
    return head + ("+dirty" if dirty else "")


def base_meta() -> dict[str, Any]:
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        # Other work shares the cores; the load average helps judge timing noise.
        "loadavg": list(os.getloadavg()),
        "git": git_revision(),
        "argv": sys.argv[1:],
    }
