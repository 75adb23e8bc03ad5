"""JSON-lines worker for ``failures.py``: ``_worker.py``'s loop serving ``run_failure_job``.

Started with the anchor venv's python (optuna, hyperopt) or with the interpreter running
``failures.py`` (parzen and random search, from whatever ``parzen`` that interpreter
imports: ``PYTHONPATH=<checkout>/src`` selects a checkout).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _crash_runs import run_failure_job  # noqa: E402  (needs the sys.path entry above)
from _worker import main  # noqa: E402

if __name__ == "__main__":
    main(run_failure_job)
