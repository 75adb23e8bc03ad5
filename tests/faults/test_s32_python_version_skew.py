"""Python version skew between the coordinator and the workers (scenario 32, issue 15).

Before: an objective defined in ``__main__`` (or inside a function) is pickled by value, its
bytecode in the payload; a worker on another Python minor version loaded it and died with
SIGSEGV, three attempts on every trial. The payload recorded the Python version, but nothing
checked it. Now a worker refuses such a payload before unpickling it, without spending an
attempt, and fmin fails fast naming both versions and the import-path alternative.

There is one Python here, so the coordinator's stamp is patched to say another minor version:
the header the worker verifies is signed, and that is where the version is read from.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pytest

from parzen import fmin, tpe
from parzen.exceptions import ObjectiveUnloadable
from parzen.execution import payload
from parzen.mongoexp import MongoTrials
from parzen.trial import TrialState
from tests.support.fault_objectives import loss, mark, sleepy, space
from tests.support.faults import FaultCluster, assert_clean_end

pytestmark = [pytest.mark.integration]

HERE = platform.python_version()
OTHER = f"{sys.version_info.major}.{sys.version_info.minor + 1}.0"  # the coordinator's
KEY = b"k" * 32


class _Bomb:
    """Unpickling this creates a directory: proof that the payload was unpickled."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (os.makedirs, (self.path, 0o777, True))  # exist_ok: every load succeeds


def coordinator_on(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    """Make this process (the coordinator) stamp its payloads with Python ``version``."""
    real = payload.stamp
    monkeypatch.setattr(payload, "stamp", lambda: {**real(), "python": version})


def run(cluster: FaultCluster, exp_key: str, fn: Any, max_evals: int) -> None:
    trials = MongoTrials(cluster.mongo_url, exp_key=exp_key, parallelism=2,
                         **cluster.kwargs(dispatch_timeout=2.0))
    try:
        fmin(fn, space(0.0), algo=tpe.suggest, max_evals=max_evals, trials=trials,
             show_progressbar=False, rstate=np.random.default_rng(0))
    finally:
        trials.close()


@pytest.mark.timeout(90)
def test_s32_by_value_objective_from_another_python_is_refused_before_unpickling(
        shared_cluster: FaultCluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    c = shared_cluster
    c.clear_side_effects()
    proof = tmp_path / "unpickled"
    bomb = _Bomb(str(proof))

    def by_value(p: dict[str, Any]) -> float:  # nested: cloudpickle pickles it by value
        mark(p)
        _ = bomb  # captured, so unpickling the objective makes the proof
        return loss(p)

    # The proof works: unpickling the objective creates it.
    cloudpickle.loads(cloudpickle.dumps(by_value))
    assert proof.exists()
    proof.rmdir()

    coordinator_on(monkeypatch, OTHER)
    with pytest.raises(ObjectiveUnloadable) as info:
        run(c, "s32-skew", by_value, 4)
    msg = str(info.value)
    assert msg.startswith("no worker can load the objective of 's32-skew'"), msg
    assert f"the objective was pickled by value (test_s32_by_value_objective_from_another_" \
        f"python_is_refused_before_unpickling.<locals>.by_value ({__file__}:" in msg, msg
    assert f"on Python {OTHER}, and this worker runs Python {HERE}" in msg, msg
    assert "can crash the evaluation with SIGSEGV" in msg
    assert 'objective="package.module:function"' in msg
    assert "Nothing was unpickled" in msg

    assert not proof.exists(), "the payload was unpickled"
    assert c.executions() == []
    trials = c.trials("s32-skew")
    released = [t for t in trials if t.history]
    assert released, "a worker should have released a trial"
    for t in released:
        assert t.attempts == 0 and t.error is None, "refusing spends no attempt"
        assert all(a.outcome.startswith("objective unloadable: the objective was pickled by "
                                        "value") for a in t.history)
    assert {t.state for t in trials} == {TrialState.CANCEL}
    exp = c.store.get_experiment("s32-skew")
    assert exp is not None and exp.objective is not None
    assert exp.objective.versions["python"] == OTHER


@pytest.mark.timeout(90)
def test_s32_importable_objective_runs_across_python_versions(
        shared_cluster: FaultCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pickled by reference (the workers import it), the objective has no bytecode in the
    payload, so another Python minor version is no reason to refuse it."""
    c = shared_cluster
    c.clear_side_effects()
    coordinator_on(monkeypatch, OTHER)
    run(c, "s32-by-reference", sleepy, 3)
    assert_clean_end(c, "s32-by-reference", done=3)
    assert all(t.attempts == 1 and not t.history for t in c.trials("s32-by-reference"))


# ---- the header and the rule ---------------------------------------------------------------

def test_the_signed_header_names_the_code_pickled_by_value() -> None:
    def nested(p: dict[str, Any]) -> float:
        return loss(p)

    header, _ = payload.verify(payload.build((sleepy, space(0.0)), KEY).data, KEY)
    assert header[payload.BY_VALUE] == "", "importable code is pickled by reference"
    assert header["python"] == HERE

    header, _ = payload.verify(payload.build((nested, space(0.0)), KEY).data, KEY)
    assert header[payload.BY_VALUE] == (
        f"test_the_signed_header_names_the_code_pickled_by_value.<locals>.nested "
        f"({__file__}:{nested.__code__.co_firstlineno})")

    many = [eval(f"lambda: {i}") for i in range(7)]  # noqa: S307  (seven pieces of code)
    header, _ = payload.verify(payload.build(many, KEY).data, KEY)
    assert header[payload.BY_VALUE].count("<lambda> (<string>:1)") == 5
    assert header[payload.BY_VALUE].endswith(" and 2 more")


@pytest.mark.parametrize(("theirs", "by_value", "refused"), [
    (OTHER, "objective (/app/run.py:3)", True),
    (OTHER, None, True),  # a payload from before the record: it may hold code
    (OTHER, "", False),  # importable code only
    (f"{sys.version_info.major}.{sys.version_info.minor}.99", "objective (x.py:1)", False),
    (HERE, "objective (x.py:1)", False),
])
def test_refuse_python_skew(theirs: str, by_value: str | None, refused: bool) -> None:
    header = {"python": theirs, "cloudpickle": cloudpickle.__version__}
    if by_value is not None:
        header[payload.BY_VALUE] = by_value
    if not refused:
        payload.refuse_python_skew(header)
        return
    with pytest.raises(ObjectiveUnloadable) as info:
        payload.refuse_python_skew(header)
    msg = str(info.value)
    code = f" ({by_value})" if by_value else ""
    assert msg.startswith(f"the objective was pickled by value{code} on Python {theirs}, "
                          f"and this worker runs Python {HERE} ({sys.executable} on ")
    minor = ".".join(theirs.split(".")[:2])
    assert f"Run the workers on Python {minor} like the coordinator" in msg


def test_refuse_python_skew_of_a_space_names_the_fix_for_a_space() -> None:
    with pytest.raises(ObjectiveUnloadable) as info:
        payload.refuse_python_skew({"python": OTHER, payload.BY_VALUE: "f (s.py:1)"}, "space")
    msg = str(info.value)
    assert msg.startswith("the space was pickled by value (f (s.py:1))")
    assert "define the functions the space uses in a module the workers can import" in msg
