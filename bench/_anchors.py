"""Create (idempotently) the anchor venv holding hyperopt 0.3.0 and optuna 5.0.0.

The anchors are comparison baselines only, never parzen dependencies, so they
live in ``bench/.anchors-venv`` and are driven through ``_worker.py`` in a
subprocess.  Run ``python bench/_anchors.py`` to build or check it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
VENV_DIR = BENCH_DIR / ".anchors-venv"
PINS = ("hyperopt==0.3.0", "optuna==5.0.0")
# hyperopt 0.3.0 imports fine without its optional extras (py4j is only for
# SparkTrials, pymongo only for MongoTrials); numpy, scipy, networkx,
# cloudpickle and tqdm come in as its declared dependencies.
_STAMP = VENV_DIR / "anchors-stamp.json"


def _python() -> Path:
    return VENV_DIR / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _installed_versions(py: Path) -> dict[str, str] | None:
    probe = (
        "import json, importlib.metadata as m;"
        "print(json.dumps({k: m.version(k) for k in "
        "('hyperopt', 'optuna', 'numpy', 'scipy')}))"
    )
    try:
        out = subprocess.run(
            [str(py), "-c", probe], capture_output=True, text=True, check=True, timeout=120
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def _pins_ok(versions: dict[str, str] | None) -> bool:
    if not versions:
        return False
    return all(versions.get(p.split("==")[0]) == p.split("==")[1] for p in PINS)


def ensure_anchor_venv(quiet: bool = False) -> Path:
    """Return the anchor venv's python, creating/repairing the venv if needed."""
    py = _python()
    if py.exists() and _STAMP.exists() and _pins_ok(json.loads(_STAMP.read_text())):
        # Fast path: the stamp is written only after a verified install.
        return py
    if not py.exists():
        if not quiet:
            print(f"[anchors] creating {VENV_DIR}", file=sys.stderr)
        # A venv made from the dev venv's interpreter resolves to the same base
        # Python, which keeps anchor and parzen numbers on one interpreter build.
        venv.EnvBuilder(with_pip=True, clear=False).create(VENV_DIR)
    versions = _installed_versions(py)
    if not _pins_ok(versions):
        if not quiet:
            print(f"[anchors] installing {' '.join(PINS)}", file=sys.stderr)
        subprocess.run(
            [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *PINS],
            check=True,
        )
        versions = _installed_versions(py)
        if not _pins_ok(versions):
            raise SystemExit(f"[anchors] pins not satisfied after install: {versions}")
    _STAMP.write_text(json.dumps(versions, indent=1))
    return py


def anchor_versions() -> dict[str, str]:
    ensure_anchor_venv(quiet=True)
    return json.loads(_STAMP.read_text())


if __name__ == "__main__":
    path = ensure_anchor_venv()
    print(path)
    print(json.dumps(anchor_versions(), indent=1))
