"""What ``import parzen`` and the ``parzen`` command load: the command starts without the
heavy dependencies a command does not use (start-up time: ``bench/cli_startup.py``).

Each check runs in a fresh interpreter, since this one has imported everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys

import parzen

HEAVY = ("numpy", "scipy", "pymongo", "celery", "matplotlib", "cloudpickle", "tqdm")


def _loaded_after(code: str) -> set[str]:
    """The top-level packages among HEAVY that ``code`` leaves in ``sys.modules``."""
    script = (f"import sys, json\n{code}\n"
              f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & "
              f"set({list(HEAVY)!r}))))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def _after_main(*argv: str) -> str:
    return ("import contextlib, io\nfrom parzen.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    try:\n        main({list(argv)!r})\n    except SystemExit:\n        pass")


def test_import_parzen_loads_nothing_heavy() -> None:
    assert _loaded_after("import parzen") == set()


def test_parzen_help_loads_nothing_heavy() -> None:
    assert _loaded_after(_after_main("--help")) == set()


def test_a_read_command_loads_neither_scipy_nor_celery_nor_matplotlib() -> None:
    loaded = _loaded_after(_after_main("trials", "--help"))
    assert "pymongo" in loaded  # the command's own module did load
    assert not loaded & {"scipy", "celery", "matplotlib"}


def test_the_health_probe_loads_nothing_heavy() -> None:
    # Kubernetes runs it every few seconds in every worker pod.
    assert _loaded_after(_after_main("health", "/nonexistent")) == set()


def test_the_first_name_read_loads_the_whole_api() -> None:
    assert {"numpy", "scipy", "pymongo", "celery"} <= _loaded_after(
        "from parzen import hp\nimport parzen\nassert parzen.pyll.stochastic.sample")


def test_fmin_stays_the_function_when_its_module_is_imported_first() -> None:
    # The import system binds parzen.fmin to the module parzen.fmin as it loads it.
    code = ("import types, parzen.fmin\nfrom parzen.fmin import space_eval\n"
            "import parzen\nfrom parzen import fmin\n"
            "assert callable(fmin) and not isinstance(fmin, types.ModuleType), fmin\n"
            "assert parzen.fmin is fmin and parzen.space_eval is space_eval")
    _loaded_after(code)


def test_the_lazy_names_are_exactly_all() -> None:
    lazy = set(parzen._MODULES) | set(parzen._NAMES)
    assert lazy | {"__version__"} == set(parzen.__all__)
    assert set(parzen.__all__) <= set(dir(parzen))
