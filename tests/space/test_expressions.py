"""pyll expressions over hp leaves: operators, scope functions, user functions, sampling,
space_eval, descriptions, and a failing expression as one trial's error."""

from __future__ import annotations

import pickle
import sys
from typing import Any

import cloudpickle
import numpy as np
import pytest

import parzen.pyll.stochastic
from parzen import (
    STATUS_OK,
    ExpressionError,
    InvalidAnnotatedParameter,
    Trials,
    fmin,
    hp,
    rand,
    space_eval,
    tpe,
)
from parzen.progress import no_progress_callback, tqdm_progress_callback
from parzen.pyll import Apply, as_apply, scope
from parzen.space import compile_space, describe
from parzen.space.described import evaluate, params_of


@scope.define
def halve_sum(a: float, b: float = 0.0) -> float:
    return (a + b) / 2


def test_the_search_space_page_first_example() -> None:
    space = hp.choice("a", [("case 1", 1 + hp.lognormal("c1", 0, 1)),
                            ("case 2", hp.uniform("c2", -10, 10))])
    assert space_eval(space, {"a": 0, "c1": 1.0}) == ("case 1", 2.0)
    assert space_eval(space, {"a": 1, "c2": 3.5}) == ("case 2", 3.5)
    assert compile_space(space).labels == ("a", "c1", "c2")  # the samplers see leaves only


@pytest.mark.parametrize(("build", "values", "expected"), [
    (lambda x: x * 2 - 1, {"x": 0.25}, -0.5),
    (lambda x: 10 ** x, {"x": 2.0}, 100.0),
    (lambda x: 2 ** -x, {"x": 1.0}, 0.5),
    (lambda x: (x - 3) ** 2 / 2, {"x": 5.0}, 2.0),
    (lambda x: 7 // x + 7 % x, {"x": 2.0}, 4.0),
    (lambda x: abs(-x), {"x": 2.0}, 2.0),
    (lambda x: +x, {"x": 2.0}, 2.0),
    (lambda x: np.float64(3.0) * x, {"x": 2.0}, 6.0),
    (lambda x: x < 1, {"x": 0.5}, True),
    (lambda x: x >= 1, {"x": 0.5}, False),
    (lambda x: scope.exp(scope.log(x)), {"x": 2.0}, 2.0),
    (lambda x: scope.sqrt(x) + scope.sin(0) + scope.cos(0), {"x": 4.0}, 3.0),
    (lambda x: scope.min(x, 3) + scope.max(x, 3), {"x": 5.0}, 8.0),
    (lambda x: scope.int(x * 10), {"x": 0.57}, 5),
    (lambda x: scope.float(scope.len([x, x])), {"x": 0.0}, 2.0),
    (lambda x: scope.getitem(scope.pos_args(x, 2 * x), 1), {"x": 1.5}, 3.0),
    (lambda x: scope.dict(a=x, b=[x, 1]), {"x": 1.0}, {"a": 1.0, "b": [1.0, 1]}),
    (lambda x: scope.switch(scope.int(x), "zero", "one", x), {"x": 2.0}, 2.0),
    (lambda x: scope.halve_sum(x, b=x + 2), {"x": 1.0}, 2.0),
], ids=["affine", "pow", "rpow-neg", "square", "floordiv-mod", "abs", "pos", "numpy-scalar",
        "lt", "ge", "exp-log", "sqrt-sin-cos", "min-max", "int", "len", "getitem", "dict",
        "switch", "user-function"])
def test_expressions_evaluate_after_sampling(build: Any, values: dict[str, float],
                                             expected: Any) -> None:
    expr = build(hp.uniform("x", 0, 10))
    assert isinstance(expr, Apply)
    assert space_eval(expr, values) == expected
    assert compile_space(expr).labels == ("x",)


def test_indexing_a_choice_and_a_literal_by_a_choice() -> None:
    o_x = hp.choice("o_x", [(-3, hp.uniform("x_neg", -5, 5)), (3, hp.uniform("x_pos", -5, 5))])
    assert space_eval((o_x[0] - o_x[1]) ** 2, {"o_x": 1, "x_pos": 1.0}) == 4.0
    arm = hp.choice("arm", [0, 1])
    assert space_eval(as_apply([-1.0, 0.0])[arm], {"arm": 0}) == -1.0
    with pytest.raises(TypeError, match="not a sequence"):
        list(hp.uniform("x", 0, 1))


def test_a_shared_expression_is_evaluated_once_per_sample() -> None:
    noise = scope.normal(0, 1)
    space = {"a": noise + hp.uniform("x", 0, 1), "b": noise}
    out = space_eval(space, {"x": 0.5}, rng=np.random.default_rng(0))
    assert out["a"] - 0.5 == pytest.approx(out["b"])


def test_switch_evaluates_only_the_chosen_branch() -> None:
    x = hp.uniform("x", 0, 1)
    space = scope.switch(hp.randint("i", 2), 1 / (x - x), "safe")
    assert space_eval(space, {"i": 1, "x": 0.5}) == "safe"
    with pytest.raises(ExpressionError):
        space_eval(space, {"i": 0, "x": 0.5})


def test_user_functions_and_define_rules() -> None:
    assert halve_sum(2.0) == 1.0  # define returns the function itself
    assert scope.define(halve_sum) is halve_sum  # defining it again is harmless
    with pytest.raises(ValueError, match="one of scope's own functions"):
        scope.define(_fake_named("exp"))
    with pytest.raises(AttributeError, match="register yours with @scope.define"):
        scope.not_a_function  # noqa: B018
    assert "halve_sum" in dir(scope)


def _fake_named(name: str) -> Any:
    def f(x: Any) -> Any:
        return x
    f.__name__ = name
    return f


def test_stochastic_sample_follows_the_prior() -> None:
    rng = np.random.default_rng(123)
    space = hp.pchoice("p", [(0.2, "a"), (0.8, hp.randint("n", 3, 6))])
    draws = [parzen.pyll.stochastic.sample(space, rng=rng) for _ in range(2000)]
    assert 300 < draws.count("a") < 500
    assert set(draws) == {"a", 3, 4, 5}
    assert parzen.pyll.stochastic.sample({"const": 1}) == {"const": 1}
    assert 0 <= parzen.pyll.stochastic.sample(scope.halve_sum(hp.uniform("u", 0, 2))) <= 1


def test_descriptions_show_expressions_and_find_their_labels() -> None:
    space = {"lr": 10 ** hp.quniform("e", -5, -1, 1), "f": scope.halve_sum(hp.normal("n", 0, 1))}
    desc = describe(space)
    assert desc["dict"]["lr"]["text"] == "(10 ** hp.quniform('e'))"
    assert desc["dict"]["f"]["fn"].endswith("test_expressions.halve_sum")
    assert list(params_of(desc)) == ["e", "n"]
    assert evaluate(desc, {"e": -2.0, "n": 0.5})["lr"] == pytest.approx(0.01)
    assert compile_space(space).fingerprint() == compile_space(
        {"lr": 10 ** hp.quniform("e", -5, -1, 1),
         "f": scope.halve_sum(hp.normal("n", 0, 1))}).fingerprint()


def test_expression_spaces_pickle() -> None:
    space = {"v": scope.exp(hp.uniform("x", 0, 1)) * 2, "f": scope.halve_sum(1.0, 3.0)}
    for dumps in (pickle.dumps, cloudpickle.dumps):
        back = pickle.loads(dumps(space))
        assert space_eval(back, {"x": 0.0}) == {"v": 2.0, "f": 2.0}


def test_fmin_optimises_through_expressions_with_every_sampler() -> None:
    space = {"loss": (hp.uniform("x", -5, 5) - 3) ** 2, "status": STATUS_OK}
    for algo in (rand.suggest, tpe.suggest):
        trials = Trials()
        best = fmin(lambda d: d, space, algo=algo, max_evals=40, trials=trials,
                    rstate=np.random.default_rng(1), show_progressbar=False)
        assert abs(best["x"] - 3) < 1.5
        assert trials.best_trial["result"]["loss"] == pytest.approx((best["x"] - 3) ** 2)


def test_a_failing_expression_is_that_trials_error_not_a_crash() -> None:
    x = hp.uniform("x", 0, 1)
    space = {"v": 1 / scope.int(x * 2)}  # int(x * 2) is 0 for half the draws
    trials = Trials()
    fmin(lambda d: d["v"], space, algo=rand.suggest, max_evals=12, trials=trials,
         rstate=np.random.default_rng(0), show_progressbar=False)
    errors = trials.errors()
    assert errors and len(trials._dynamic_trials) == 12
    info = errors[0][1]
    assert info.type == "ExpressionError"
    assert "(1 / int((hp.uniform('x') * 2)))" in info.message
    assert "ZeroDivisionError" in info.message and "truediv(1, 0)" in info.message


def test_a_space_without_labels_is_evaluated_max_evals_times() -> None:
    calls: list[Any] = []
    trials = Trials()
    fmin(lambda d: calls.append(d) or 1.0, {"a": 1}, algo=tpe.suggest, max_evals=5,
         trials=trials, show_progressbar=False)
    assert calls == [{"a": 1}] * 5 and len(trials) == 5


def test_annotated_space() -> None:
    def objective(x: hp.uniform("x", -1, 1), k: hp.choice("k", [1, 2])) -> float:  # type: ignore[valid-type]  # noqa: F821
        return x * x * k

    best = fmin(objective, space="annotated", algo=rand.suggest, max_evals=10,
                rstate=np.random.default_rng(0), show_progressbar=False)
    assert set(best) == {"x", "k"}

    def bad(x: hp.uniform("x", -1, 1), y: float) -> float:  # type: ignore[valid-type]  # noqa: F821
        return x

    with pytest.raises(InvalidAnnotatedParameter, match="parameter 'y'"):
        fmin(bad, space="annotated", max_evals=3)


def test_progress_callbacks() -> None:
    real = sys.stdout
    with tqdm_progress_callback(initial=0, total=10) as bar:
        assert sys.stdout is not real
        bar.postfix = "best loss: 1"
        bar.update(3)
    assert sys.stdout is real
    seen: list[int] = []

    class Counting:
        postfix = None

        def update(self, n: int) -> None:
            seen.append(n)

    import contextlib

    @contextlib.contextmanager
    def callback(initial: int, total: int | None) -> Any:
        yield Counting()

    fmin(lambda x: x, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=4,
         show_progressbar=callback)
    assert sum(seen) == 4
    fmin(lambda x: x, hp.uniform("x", 0, 1), algo=rand.suggest, max_evals=2,
         show_progressbar=no_progress_callback)
