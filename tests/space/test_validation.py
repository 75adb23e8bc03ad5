"""Every search-space validation error, raised when the space is built, with its message."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from parzen import (
    DuplicateLabel,
    InvalidDistribution,
    SpaceError,
    UnsupportedExpression,
    fmin,
    hp,
    rand,
)
from parzen.space import compile_space


def _dup_different_kinds() -> Any:
    return compile_space({"a": hp.uniform("x", 0, 1), "b": hp.normal("x", 0, 1)})


def _dup_different_bounds() -> Any:
    return compile_space([hp.uniform("x", 0, 1), hp.uniform("x", 0, 2)])


def _dup_two_choices() -> Any:
    # Two separately built choices are two distributions even with equal options.
    return compile_space({"a": hp.choice("c", [1, 2]), "b": hp.choice("c", [1, 2])})


def _dup_inside_branch() -> Any:
    return compile_space(hp.choice("c", [{"x": hp.uniform("x", 0, 1)},
                                         {"x": hp.loguniform("x", 0, 1)}]))


def _dup_choice_and_param() -> Any:
    return compile_space({"a": hp.choice("x", [1, 2]), "b": hp.randint("x", 2)})


class _FakeApply:
    """Stands in for ``hyperopt.pyll.base.Apply``; only its module matters to parzen."""


_FakeApply.__module__ = "hyperopt.pyll.base"


# (id, factory, exception, message fragment)
CASES: list[tuple[str, Callable[[], Any], type[SpaceError], str]] = [
    # ---- labels ------------------------------------------------------------------------
    ("duplicate-label-kinds", _dup_different_kinds, DuplicateLabel,
     "label 'x' is used by two different distributions (uniform and normal)"),
    ("duplicate-label-bounds", _dup_different_bounds, DuplicateLabel,
     "label 'x' is used by two different distributions"),
    ("duplicate-label-choices", _dup_two_choices, DuplicateLabel, "(choice and choice)"),
    ("duplicate-label-branches", _dup_inside_branch, DuplicateLabel,
     "(uniform and loguniform)"),
    ("duplicate-label-choice-randint", _dup_choice_and_param, DuplicateLabel,
     "(choice and randint)"),
    ("label-int", lambda: hp.uniform(3, 0, 1), InvalidDistribution,
     "hp.uniform: the label must be a string, got 3 (int)"),
    ("label-none", lambda: hp.choice(None, [1]), InvalidDistribution,
     "hp.choice: the label must be a string, got None"),
    ("label-bytes", lambda: hp.randint(b"n", 3), InvalidDistribution,
     "the label must be a string, got b'n' (bytes)"),
    ("label-empty", lambda: hp.normal("", 0, 1), InvalidDistribution,
     "the label must be a non-empty string"),
    # ---- bounds ------------------------------------------------------------------------
    ("low-equals-high", lambda: hp.uniform("x", 1, 1), InvalidDistribution,
     "hp.uniform('x'): low must be < high, got low=1, high=1"),
    ("low-above-high", lambda: hp.quniform("x", 5, 2, 1), InvalidDistribution,
     "hp.quniform('x'): low must be < high, got low=5, high=2"),
    ("loguniform-low-above-high", lambda: hp.loguniform("lr", -1, -5), InvalidDistribution,
     "hp.loguniform('lr'): low must be < high"),
    ("uniformint-low-equals-high", lambda: hp.uniformint("n", 3, 3), InvalidDistribution,
     "hp.uniformint('n'): low must be < high"),
    ("low-inf", lambda: hp.uniform("x", -math.inf, 1), InvalidDistribution,
     "hp.uniform('x'): low must be a finite number, got low=-inf"),
    ("high-inf", lambda: hp.uniform("x", 0, math.inf), InvalidDistribution,
     "high must be a finite number, got high=inf"),
    ("low-nan", lambda: hp.quniform("x", math.nan, 1, 0.1), InvalidDistribution,
     "low must be a finite number, got low=nan"),
    ("high-numpy-nan", lambda: hp.loguniform("x", 0, np.nan), InvalidDistribution,
     "high must be a finite number"),
    ("low-str", lambda: hp.uniform("x", "0", 1), InvalidDistribution,
     "low must be a finite number, got low='0'"),
    ("low-bool", lambda: hp.uniform("x", False, 1), InvalidDistribution,
     "low must be a finite number, got low=False"),
    ("mu-inf", lambda: hp.normal("x", math.inf, 1), InvalidDistribution,
     "hp.normal('x'): mu must be a finite number, got mu=inf"),
    ("sigma-nan", lambda: hp.lognormal("x", 0, math.nan), InvalidDistribution,
     "sigma must be a finite number, got sigma=nan"),
    ("sigma-zero", lambda: hp.normal("x", 0, 0), InvalidDistribution,
     "hp.normal('x'): sigma must be > 0, got sigma=0"),
    ("sigma-negative", lambda: hp.qlognormal("x", 0, -1, 1), InvalidDistribution,
     "sigma must be > 0, got sigma=-1"),
    ("loguniform-high-overflows", lambda: hp.loguniform("lr", 1e-5, 1000),
     InvalidDistribution, "high=1000.0 is an exponent and exp(1000.0) overflows"),
    # ---- q -------------------------------------------------------------------------------
    ("q-zero", lambda: hp.quniform("x", 0, 10, 0), InvalidDistribution,
     "hp.quniform('x'): q must be > 0, got q=0"),
    ("q-negative", lambda: hp.qloguniform("x", 0, 2, -1), InvalidDistribution,
     "hp.qloguniform('x'): q must be > 0, got q=-1"),
    ("q-negative-normal", lambda: hp.qnormal("x", 0, 1, -0.5), InvalidDistribution,
     "q must be > 0, got q=-0.5"),
    ("q-inf", lambda: hp.qlognormal("x", 0, 1, math.inf), InvalidDistribution,
     "q must be a finite number, got q=inf"),
    ("q-nan", lambda: hp.uniformint("x", 0, 10, math.nan), InvalidDistribution,
     "q must be a finite number, got q=nan"),
    # ---- choice / pchoice ----------------------------------------------------------------
    ("choice-empty", lambda: hp.choice("c", []), InvalidDistribution,
     "hp.choice('c'): options is empty"),
    ("choice-empty-tuple", lambda: hp.choice("c", ()), InvalidDistribution,
     "options is empty; give at least one option"),
    ("choice-str", lambda: hp.choice("c", "abc"), InvalidDistribution,
     "hp.choice('c'): options must be a list or tuple, got 'abc'"),
    ("choice-set", lambda: hp.choice("c", {1, 2}), InvalidDistribution,
     "options must be a list or tuple"),
    ("pchoice-empty", lambda: hp.pchoice("c", []), InvalidDistribution,
     "hp.pchoice('c'): options is empty"),
    ("pchoice-sum-below-1", lambda: hp.pchoice("c", [(0.2, "a"), (0.3, "b")]),
     InvalidDistribution, "hp.pchoice('c'): probabilities must sum to 1, got 0.5"),
    ("pchoice-sum-above-1", lambda: hp.pchoice("c", [(0.7, "a"), (0.7, "b")]),
     InvalidDistribution, "probabilities must sum to 1, got 1.4"),
    ("pchoice-negative", lambda: hp.pchoice("c", [(-0.5, "a"), (1.5, "b")]),
     InvalidDistribution, "probability of item 0 must be a number >= 0, got -0.5"),
    ("pchoice-nan", lambda: hp.pchoice("c", [(math.nan, "a"), (1.0, "b")]),
     InvalidDistribution, "probability of item 0 must be a number >= 0, got nan"),
    ("pchoice-not-pairs", lambda: hp.pchoice("c", [0.5, 0.5]), InvalidDistribution,
     "item 0 must be a (probability, option) pair, got 0.5"),
    ("pchoice-triple", lambda: hp.pchoice("c", [(0.5, "a", "x"), (0.5, "b")]),
     InvalidDistribution, "item 0 must be a (probability, option) pair"),
    ("pchoice-dict", lambda: hp.pchoice("c", {"a": 0.5, "b": 0.5}), InvalidDistribution,
     "expected a list of (probability, option) pairs"),
    # ---- randint -------------------------------------------------------------------------
    ("randint-no-bounds", lambda: hp.randint("n"), InvalidDistribution,
     "hp.randint('n'): takes (label, upper) or (label, low, high), got 0 bounds ()"),
    ("randint-three-bounds", lambda: hp.randint("n", 0, 5, 1), InvalidDistribution,
     "got 3 bounds (0, 5, 1)"),
    ("randint-float", lambda: hp.randint("n", 2.5), InvalidDistribution,
     "hp.randint('n'): high must be an integer, got high=2.5"),
    ("randint-str", lambda: hp.randint("n", "5"), InvalidDistribution,
     "high must be an integer, got high='5'"),
    ("randint-bool", lambda: hp.randint("n", True), InvalidDistribution,
     "high must be an integer, got high=True"),
    ("randint-low-float", lambda: hp.randint("n", 0.5, 4), InvalidDistribution,
     "low must be an integer, got low=0.5"),
    ("randint-inf", lambda: hp.randint("n", 0, math.inf), InvalidDistribution,
     "high must be an integer, got high=inf"),
    ("randint-zero-upper", lambda: hp.randint("n", 0), InvalidDistribution,
     "low must be < high, got low=0, high=0 (high is exclusive)"),
    ("randint-low-above-high", lambda: hp.randint("n", 5, 2), InvalidDistribution,
     "low must be < high, got low=5, high=2"),
    # ---- expressions ---------------------------------------------------------------------
    ("stochastic-argument", lambda: hp.uniform("a", 0, hp.uniform("b", 1, 2)),
     InvalidDistribution, "hp.uniform('a'): high is itself a search-space expression "
     "(hp.uniform('b')); parzen's distributions take constant arguments"),
    ("stochastic-randint-bound", lambda: hp.randint("n", hp.randint("m", 3)),
     InvalidDistribution, "hp.randint('n'): high is itself a search-space expression"),
    ("stochastic-probability", lambda: hp.pchoice("p", [(hp.uniform("w", 0, 1), 1)]),
     InvalidDistribution, "the probability of item 0 is itself a search-space expression"),
    ("choice-of-an-expression", lambda: hp.choice("c", hp.uniform("x", 0, 1) * 2),
     InvalidDistribution, "options is a search-space expression"),
    ("duplicate-label-identical", lambda: compile_space(
        [hp.uniform("x", -5, 5), hp.uniform("x", -5, 5)]), DuplicateLabel,
     "a label names one node, as in hyperopt"),
    ("duplicate-label-in-expression", lambda: compile_space(
        hp.uniform("x", 0, 1) + hp.uniform("x", 0, 1)), DuplicateLabel,
     "label 'x' is used by two different distributions (uniform and uniform"),
    ("calling", lambda: hp.uniform("x", 0, 1)(), UnsupportedExpression, "is not callable"),
    ("hyperopt-node", lambda: compile_space({"x": _FakeApply()}), UnsupportedExpression,
     "the space contains hyperopt.pyll.base._FakeApply, a hyperopt pyll node; build the "
     "space with parzen.hp"),
    ("hyperopt-node-nested", lambda: compile_space(
        hp.choice("c", [{"deep": [(1, _FakeApply())]}])), UnsupportedExpression,
     "a hyperopt pyll node"),
]


@pytest.mark.parametrize(("factory", "exc", "fragment"),
                         [pytest.param(f, e, m, id=i) for i, f, e, m in CASES])
def test_space_error(factory: Callable[[], Any], exc: type[SpaceError], fragment: str) -> None:
    with pytest.raises(exc) as info:
        factory()
    assert fragment in str(info.value)
    # hyperopt users catch ValueError; parzen users catch SpaceError.
    assert isinstance(info.value, SpaceError)
    assert isinstance(info.value, ValueError)


def test_case_ids_are_unique() -> None:
    ids = [row[0] for row in CASES]
    assert len(ids) == len(set(ids))


def test_space_errors_are_raised_by_fmin_before_any_evaluation() -> None:
    calls: list[Any] = []
    with pytest.raises(DuplicateLabel):
        fmin(calls.append, {"a": hp.uniform("x", 0, 1), "b": hp.uniform("x", 0, 2)},
             algo=rand.suggest, max_evals=3, show_progressbar=False,
             rstate=np.random.default_rng(0))
    assert calls == []


def test_pass_expr_memo_ctrl_is_refused() -> None:
    with pytest.raises(UnsupportedExpression, match="pass_expr_memo_ctrl is not supported"):
        fmin(lambda p: 0.0, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=1,
             pass_expr_memo_ctrl=True, show_progressbar=False)


def test_real_hyperopt_node_is_refused() -> None:
    hyperopt_hp = pytest.importorskip("hyperopt.hp")
    with pytest.raises(UnsupportedExpression, match="a hyperopt pyll node"):
        compile_space({"x": hyperopt_hp.uniform("x", 0, 1)})


# ---- valid edge cases: the checks compare numbers, not truthiness -------------------------

@pytest.mark.parametrize("build", [
    pytest.param(lambda: hp.uniform("x", 0, 1), id="low-zero"),
    pytest.param(lambda: hp.uniform("x", -1, 0), id="high-zero"),
    pytest.param(lambda: hp.normal("x", 0, 1), id="mu-zero"),
    pytest.param(lambda: hp.randint("n", 0, 1), id="randint-single-value"),
    pytest.param(lambda: hp.randint("n", np.int64(4)), id="randint-numpy-int"),
    pytest.param(lambda: hp.randint("n", 3.0), id="randint-integral-float"),
    pytest.param(lambda: hp.choice("c", [0]), id="choice-single-falsy-option"),
    pytest.param(lambda: hp.choice("c", range(3)), id="choice-range"),
    pytest.param(lambda: hp.choice("c", np.arange(10, 40, 10)), id="choice-numpy-array"),
    pytest.param(lambda: hp.pchoice("c", [(0, "never"), (1.0, "always")]),
                 id="pchoice-zero-probability"),
    pytest.param(lambda: hp.pchoice("c", [(1 / 3, "a"), (1 / 3, "b"), (1 / 3, "c")]),
                 id="pchoice-thirds"),
    pytest.param(lambda: hp.quniform("x", np.float64(0), np.float32(1), 0.25),
                 id="numpy-bounds"),
])
def test_valid_edge_cases_are_accepted(build: Callable[[], Any]) -> None:
    compile_space({"p": build()})


def test_numpy_choice_options_become_python_scalars() -> None:
    c = hp.choice("n", np.arange(10, 40, 10))
    assert c.options == (10, 20, 30)
    assert all(type(o) is int for o in c.options)


def test_same_node_twice_is_not_a_duplicate() -> None:
    x = hp.uniform("x", 0, 1)
    c = hp.choice("c", [1, 2])
    space = compile_space({"a": x, "b": [x, c], "d": c})
    assert space.labels == ("x", "c")
