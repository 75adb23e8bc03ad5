"""``parzen.__all__`` is sorted, unique and equal to the public names the package exports."""

from __future__ import annotations

import inspect
import types

import parzen

# Imported names that are not part of the API (``from __future__ import annotations``).
NOT_API = {"annotations"}

# The hyperopt names code written against hyperopt imports from the top level.
HYPEROPT_NAMES = {
    "fmin", "hp", "tpe", "rand", "anneal", "Trials", "space_eval", "STATUS_OK", "STATUS_FAIL",
    "STATUS_NEW", "STATUS_RUNNING", "STATUS_STRINGS", "JOB_STATES", "JOB_STATE_NEW",
    "JOB_STATE_RUNNING", "JOB_STATE_DONE", "JOB_STATE_ERROR", "JOB_STATE_CANCEL", "Domain",
    "generate_trials_to_calculate",
}


def _public_attributes() -> set[str]:
    """Public top-level names, leaving out submodules that are only there because they were
    imported (``parzen.trials``); modules re-exported on purpose (``hp``, ``tpe``) are in
    ``__all__`` and checked by the other direction."""
    return {name for name, value in vars(parzen).items()
            if not name.startswith("_") and name not in NOT_API
            and not isinstance(value, types.ModuleType)}


def _isort_key(name: str) -> tuple[int, str]:
    # ruff's RUF022 order: CONSTANTS, then CamelCase, then everything else, each sorted.
    group = 0 if name.isupper() else 1 if name[0].isupper() else 2
    return group, name


def test_all_is_sorted_and_unique() -> None:
    assert len(parzen.__all__) == len(set(parzen.__all__))
    assert parzen.__all__ == sorted(parzen.__all__, key=_isort_key)
    assert _isort_key("STATUS_OK") < _isort_key("Trials") < _isort_key("__version__") \
        < _isort_key("fmin")


def test_every_name_in_all_exists() -> None:
    missing = [name for name in parzen.__all__ if not hasattr(parzen, name)]
    assert missing == []


def test_no_public_attribute_is_missing_from_all() -> None:
    assert _public_attributes() - set(parzen.__all__) == set()


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from parzen import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(parzen.__all__)


def test_hyperopt_names_are_exported() -> None:
    assert HYPEROPT_NAMES - set(parzen.__all__) == set()
    assert inspect.ismodule(parzen.hp) and inspect.ismodule(parzen.tpe)
    for algo in ("tpe", "rand", "anneal", "grid"):
        assert callable(getattr(parzen, algo).suggest)
    assert callable(parzen.fmin) and not inspect.ismodule(parzen.fmin)


def test_public_exceptions_are_exported() -> None:
    exported = {name for name in parzen.__all__
                if isinstance(getattr(parzen, name), type)
                and issubclass(getattr(parzen, name), BaseException)}
    assert {"ParzenError", "AllTrialsFailed", "ConfigError", "DuplicateLabel", "SpaceError",
            "InvalidDistribution", "InvalidLoss", "InvalidResultStatus", "InvalidTrial",
            "UnsupportedExpression"} <= exported
    assert all(issubclass(getattr(parzen, n), parzen.ParzenError) for n in exported)


def test_pyll_scope_is_importable_like_hyperopts() -> None:
    from parzen.pyll import scope

    assert callable(scope.int) and callable(scope.float)


def test_version() -> None:
    assert isinstance(parzen.__version__, str) and parzen.__version__.count(".") >= 1
