"""hyperopt 0.3.0's own SparkTrials tests (``hyperopt/tests/integration/test_spark.py``),
with the imports changed to parzen, on the shared local Spark.

The sdist is fetched and the files rewritten as ``bench/hyperopt_suite.py`` does for the
unit tests (``fetch_sdist``, ``rewrite``); ``test_spark.py`` and the ``test_fmin.py`` it
imports become the package ``hsuite_spark``. The test methods run in this process against
the session fixture (hyperopt's class set-up would make its own session, and its tear-down
would stop the shared one).

The tests of public behaviour run: the ones listed in ``PUBLIC`` pass whole; in those of
``PUBLIC_THEN_LOG`` every assertion on public behaviour before the first one on hyperopt's
log text ("... missing from log") passes, and that one, which does not apply, fails. The
rest read hyperopt's private attributes (``_fmin_cancelled``,
``_spark_supports_job_cancelling``, ``_spark_pinned_threads_enabled``,
``hyperopt.spark._have_spark``, ``SparkTrials._decide_parallelism``) before anything else
they check: they do not apply. ``test_trial_run_info`` expects 6 of 8 anneal trials to
succeed: which points anneal proposes depends on the random stream and on the order in
which four parallel results come back, so its counts held in some runs and not in others
(then its log text does not apply either).
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.support.bench import bench_module
from tests.support.services import require_service

pytestmark = [pytest.mark.spark, pytest.mark.timeout(600)]

PACKAGE = "hsuite_spark"
PUBLIC = [
    ("FMinTestCase", "test_accepting_sparksession"),
    ("FMinTestCase", "test_quadratic1_tpe"),
    ("FMinTestCase", "test_no_retry_for_long_tasks"),
    ("FMinTestCase", "test_invalid_timeout"),
]
PUBLIC_THEN_LOG = [
    ("FMinTestCase", "test_all_successful_trials"),  # count_successful_trials() == 1
    ("FMinTestCase", "test_all_failed_trials"),  # count_failed_trials() == 1
    ("FMinTestCase", "test_early_stop"),  # 3 <= count_successful_trials() < 10
]


@pytest.fixture(scope="module")
def hyperopt_spark_tests(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    suite = bench_module("hyperopt_suite")
    try:
        sdist = suite.fetch_sdist(sys.executable)
    except (subprocess.SubprocessError, OSError) as exc:
        require_service(False, f"PyPI, to download hyperopt {suite.VERSION}'s sdist ({exc})")
        raise
    root = tmp_path_factory.mktemp("hyperopt-spark")
    pkg = root / PACKAGE
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for rel in ("tests/integration/test_spark.py", "tests/unit/test_fmin.py"):
        source = Path(sdist, "hyperopt", rel).read_text()
        text = suite.rewrite(source, to_parzen=True).replace("hsuite.", f"{PACKAGE}.")
        (pkg / Path(rel).name).write_text(text)
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(f"{PACKAGE}.test_spark")
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _case(module: ModuleType, spark: Any, cls_name: str, test: str) -> Any:
    from py4j.clientserver import ClientServer

    cls = getattr(module, cls_name)
    # What hyperopt's setUpClass sets, with the shared session.
    cls._spark = spark
    cls._sc = spark.sparkContext
    cls._pin_mode_enabled = isinstance(cls._sc._gateway, ClientServer)
    return cls(test)


def test_the_rewrite_imports_parzen(hyperopt_spark_tests: ModuleType) -> None:
    text = Path(hyperopt_spark_tests.__file__).read_text()
    assert "from parzen import SparkTrials, anneal, base, fmin, hp, rand" in text
    assert f"from {PACKAGE}.test_fmin import test_quadratic1_tpe" in text
    assert hyperopt_spark_tests.SparkTrials.__module__ == "parzen.spark"


@pytest.mark.parametrize(("cls_name", "test"), PUBLIC, ids=[t for _, t in PUBLIC])
def test_hyperopts_spark_test_passes(hyperopt_spark_tests: ModuleType, spark: Any,
                                     cls_name: str, test: str) -> None:
    case = _case(hyperopt_spark_tests, spark, cls_name, test)
    getattr(case, test)()


@pytest.mark.parametrize(("cls_name", "test"), PUBLIC_THEN_LOG,
                         ids=[t for _, t in PUBLIC_THEN_LOG])
def test_hyperopts_spark_test_passes_up_to_its_log_text(
        hyperopt_spark_tests: ModuleType, spark: Any, cls_name: str, test: str) -> None:
    case = _case(hyperopt_spark_tests, spark, cls_name, test)
    with pytest.raises(AssertionError, match=r"missing from\s+(the )?log"):
        getattr(case, test)()
