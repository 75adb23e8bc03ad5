"""The scripts of ``bench/``, for the tests of the benchmarks.

``bench/`` is a folder of scripts, not a package: each is run as ``python bench/NAME.py``,
and they import one another by bare name (``from problems import ...``), which works because
Python puts a script's folder first on ``sys.path``. ``bench_module`` gives a test the same
view, so that the scripts stay runnable unchanged: it adds ``bench/`` to the end of
``sys.path`` (once; the one ``sys.path`` entry the suite makes) and imports the module by
its bare name. The bench scripts' names are not used by anything else the tests import.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[2] / "bench"


def bench_module(name: str) -> ModuleType:
    """Import ``bench/<name>.py`` as the bench scripts import each other."""
    if str(BENCH) not in sys.path:
        sys.path.append(str(BENCH))
    return importlib.import_module(name)
