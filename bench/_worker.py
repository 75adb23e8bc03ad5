"""JSON-lines worker: one job per stdin line, one result per stdout line.

Started by quality.py / latency.py either with the anchor venv's python (for
hyperopt 0.3.0 and optuna 5.0.0) or with the current interpreter (parzen).
Library output is diverted to stderr so stdout carries only the protocol.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
import warnings
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _runners import run_job  # noqa: E402  (needs the sys.path entry above)


def _to_builtin(obj: object) -> object:
    """json.dumps fallback for numpy scalars that may leak into results."""
    if hasattr(obj, "item"):
        return obj.item()  # type: ignore[attr-defined]
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def main(run: Callable[[Any], dict] = run_job) -> None:
    """Serve jobs with ``run`` (``_runners.run_job``; ``_crash_worker.py`` passes its own)."""
    # Keep protocol writes on the real stdout; anything a library prints
    # (progress bars, warnings) goes to stderr instead.
    proto = sys.stdout
    sys.stdout = sys.stderr
    # The anchors emit FutureWarnings etc.; they are not the subject here.
    warnings.simplefilter("ignore")
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            result = {"ok": True, "result": run(json.loads(line))}
        except BaseException as exc:  # report every failure to the parent, loudly
            result = {
                "ok": False,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }
        proto.write(json.dumps(result, default=_to_builtin) + "\n")
        proto.flush()


if __name__ == "__main__":
    main()
