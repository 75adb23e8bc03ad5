"""Conditional spaces, ``space_eval``, the compiled ``Space`` and its fingerprint, and the
support of every distribution under the rand and anneal samplers."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from parzen import InvalidTrial, Trials, anneal, fmin, hp, rand, space_eval
from parzen.pyll import scope
from parzen.space import compile_space


def _run(fn: Callable[[Any], Any], space: Any, n: int, algo: Any = rand.suggest,
         seed: int = 0) -> Trials:
    trials = Trials()
    fmin(fn, space, algo=algo, max_evals=n, trials=trials, rstate=np.random.default_rng(seed),
         show_progressbar=False)
    return trials


def _nested_space() -> Any:
    return {
        "model": hp.choice("model", [
            {"kind": "svm", "C": hp.loguniform("C", -3, 3),
             "kernel": hp.choice("kernel", [
                 {"name": "linear"},
                 {"name": "rbf", "gamma": hp.uniform("gamma", 0, 1)},
             ])},
            {"kind": "tree", "depth": hp.randint("depth", 1, 6)},
        ]),
        "lr": hp.uniform("lr", 0, 1),
    }


# ---- conditional spaces ----------------------------------------------------------------

def test_nested_choice_conditions() -> None:
    space = compile_space(_nested_space())
    assert space.labels == ("model", "C", "kernel", "gamma", "depth", "lr")
    assert space.conditions["lr"] == ((),)
    assert space.conditions["C"] == ((("model", 0),),)
    assert space.conditions["gamma"] == ((("model", 0), ("kernel", 1)),)
    assert space.conditions["depth"] == ((("model", 1),),)
    assert space.is_conditional()
    assert not compile_space({"a": hp.uniform("a", 0, 1)}).is_conditional()
    assert space.active_labels({"model": 0, "kernel": 1}) == ["model", "C", "kernel", "gamma",
                                                               "lr"]
    assert space.active_labels({"model": 0, "kernel": 0}) == ["model", "C", "kernel", "lr"]
    assert space.active_labels({"model": 1}) == ["model", "depth", "lr"]


def test_inactive_params_are_absent_from_trials() -> None:
    seen: list[Any] = []

    def objective(p: Any) -> float:
        seen.append(p)
        return p["lr"]

    trials = _run(objective, _nested_space(), 40)
    space = compile_space(_nested_space())
    branches = set()
    for doc, point in zip(trials.trials, seen, strict=True):
        vals = doc["misc"]["vals"]
        params = {k: v[0] for k, v in vals.items()}
        assert sorted(vals) == sorted(space.active_labels(params))
        assert all(len(v) == 1 for v in vals.values())
        assert sorted(doc["misc"]["idxs"]) == sorted(vals)
        assert space_eval(_nested_space(), params) == point
        model = point["model"]
        if model["kind"] == "tree":
            assert set(vals) == {"model", "depth", "lr"}
            assert set(model) == {"kind", "depth"}
        else:
            assert "depth" not in vals
            assert ("gamma" in vals) == (model["kernel"]["name"] == "rbf")
        branches.add((params["model"], params.get("kernel")))
    assert branches == {(0, 0), (0, 1), (1, None)}  # every branch was visited

    # Per-trial view: a tid is listed under a label only when the label was active.
    idxs, vals = trials.idxs, trials.vals
    for label in ("C", "kernel", "gamma", "depth"):
        active_tids = [d["tid"] for d in trials.trials if label in d["misc"]["vals"]]
        assert idxs[label] == active_tids
        assert len(vals[label]) == len(active_tids)
    assert idxs["lr"] == trials.tids
    assert len(idxs["depth"]) + len(idxs["C"]) == len(trials)


def test_argmin_holds_only_active_labels() -> None:
    # The tree branch is always best, so the argmin must not mention the svm's params.
    trials = _run(lambda p: 0.0 if p["model"]["kind"] == "tree" else 1.0, _nested_space(), 20)
    best = trials.argmin
    assert best["model"] == 1
    assert set(best) == {"model", "depth", "lr"}
    assert space_eval(_nested_space(), best)["model"]["kind"] == "tree"


def test_reused_node_under_two_branches() -> None:
    x = hp.uniform("x", 0, 1)
    space_def = hp.choice("branch", [{"a": x}, {"b": x, "y": hp.uniform("y", 5, 6)}, {"c": 1}])
    space = compile_space(space_def)
    assert space.labels == ("branch", "x", "y")
    assert space.conditions["x"] == ((("branch", 0),), (("branch", 1),))
    assert space.is_active("x", {"branch": 1})
    assert not space.is_active("x", {"branch": 2})

    trials = _run(lambda p: 0.0, space_def, 30)
    for doc in trials.trials:
        vals = doc["misc"]["vals"]
        assert ("x" in vals) == (vals["branch"][0] in (0, 1))
        assert ("y" in vals) == (vals["branch"][0] == 1)
    assert set(trials.vals["branch"]) == {0, 1, 2}
    assert space_eval(space_def, {"branch": 1, "x": 0.25, "y": 5.5}) == {"b": 0.25, "y": 5.5}
    assert space_eval(space_def, {"branch": 0, "x": 0.75}) == {"a": 0.75}


def test_node_reused_unconditionally_is_always_active() -> None:
    x = hp.uniform("x", 0, 1)
    space = compile_space({"top": x, "c": hp.choice("c", [x, 2])})
    assert space.conditions["x"] == ((),)
    assert space.is_active("x", {"c": 1})


def test_reused_choice_enables_children_under_both_parents() -> None:
    inner = hp.choice("inner", [hp.uniform("u", 0, 1), "none"])
    space = compile_space(hp.choice("outer", [inner, {"again": inner}, "skip"]))
    assert space.conditions["inner"] == ((("outer", 0),), (("outer", 1),))
    assert space.is_active("u", {"outer": 1, "inner": 0})
    assert not space.is_active("u", {"outer": 2, "inner": 0})
    assert not space.is_active("u", {"outer": 0, "inner": 1})


# ---- space_eval ---------------------------------------------------------------------------

def test_space_eval_nested_structures() -> None:
    space = {
        "list": [hp.uniform("a", 0, 1), 7, (hp.randint("r", 4), "const")],
        "tuple": (hp.choice("c", [[1, 2], {"deep": hp.normal("n", 0, 1)}]),),
        "int": scope.int(hp.quniform("q", 0, 10, 1)),
        "float": scope.float(hp.randint("fi", 3)),
        "none": None,
    }
    out = space_eval(space, {"a": 0.5, "r": 3, "c": 1, "n": -0.25, "q": 4.0, "fi": 2})
    assert out == {
        "list": [0.5, 7, (3, "const")],
        "tuple": ({"deep": -0.25},),
        "int": 4,
        "float": 2.0,
        "none": None,
    }
    assert type(out["list"]) is list and type(out["tuple"]) is tuple
    assert type(out["list"][2]) is tuple
    assert type(out["int"]) is int and type(out["float"]) is float
    # The inactive branch needs no value.
    assert space_eval(space, {"a": 0.5, "r": 3, "c": 0, "q": 4.0, "fi": 0})["tuple"] == ([1, 2],)


def test_space_eval_accepts_misc_vals_lists_and_compiled_space() -> None:
    space = {"c": hp.choice("c", ["x", "y"]), "u": hp.uniform("u", 0, 1)}
    assert space_eval(space, {"c": [1], "u": [0.5]}) == {"c": "y", "u": 0.5}
    assert space_eval(compile_space(space), {"c": 0, "u": 0.1}) == {"c": "x", "u": 0.1}
    assert space_eval(hp.choice("c", ["x", "y"]), {"c": np.int64(1)}) == "y"
    assert space_eval(hp.randint("r", 5), {"r": 3.0}) == 3
    assert space_eval(scope.int(hp.uniform("x", 0, 5)), {"x": 2.7}) == 2  # truncates


def test_space_eval_errors() -> None:
    space = {"c": hp.choice("c", [hp.uniform("u", 0, 1), "none"])}
    with pytest.raises(InvalidTrial, match=r"no value for active parameter 'u'"):
        space_eval(space, {"c": 0})
    with pytest.raises(InvalidTrial, match=r"choice 'c' has 2 options, index 2 is out of range"):
        space_eval(space, {"c": 2})
    with pytest.raises(InvalidTrial, match=r"no value for active parameter 'c'"):
        space_eval(space, {"c": []})


# ---- check_assignment (points_to_evaluate) ---------------------------------------------

def test_check_assignment_keeps_active_values_only() -> None:
    space = compile_space(_nested_space())
    point = {"model": 1, "depth": 3, "lr": 0.5, "C": 1.0}  # C belongs to the other branch
    assert space.check_assignment(point) == {"model": 1, "depth": 3, "lr": 0.5}
    with pytest.raises(InvalidTrial, match="missing the active label 'gamma'"):
        space.check_assignment({"model": 0, "C": 1.0, "kernel": 1, "lr": 0.5})
    with pytest.raises(InvalidTrial, match=r"randint takes an integer in \[1, 6\)"):
        space.check_assignment({"model": 1, "depth": 6, "lr": 0.5})
    with pytest.raises(InvalidTrial, match=r"value 1.5 for choice\('model'\)"):
        space.check_assignment({"model": 1.5, "lr": 0.5})


@pytest.mark.parametrize(("node", "ok", "bad"), [
    (hp.uniform("v", 0, 1), [0.0, 1.0, 0.5], [-0.01, 1.01]),
    (hp.loguniform("v", 0, 1), [1.0, math.e], [0.99, 2.8]),
    (hp.quniform("v", 0, 10, 5), [0.0, 10.0, 12.4], [12.6, -2.6]),
    (hp.lognormal("v", 0, 1), [0.0, 100.0], [-0.1]),
    (hp.normal("v", 0, 1), [-1e6, 1e6], [math.inf]),
    (hp.randint("v", 2, 4), [2, 3], [1, 4, 2.5]),
])
def test_check_assignment_support(node: Any, ok: list[float], bad: list[float]) -> None:
    space = compile_space({"v": node})
    for v in ok:
        space.check_assignment({"v": v})
    for v in bad:
        with pytest.raises(InvalidTrial, match="is outside the space"):
            space.check_assignment({"v": v})


# ---- fingerprint --------------------------------------------------------------------------

def _fp_space(low: float = 0.0, label: str = "x", options: tuple[Any, ...] = ("a", "b"),
              container: type = list, probs: tuple[float, float] | None = None) -> Any:
    c = (hp.pchoice("c", list(zip(probs, options, strict=True))) if probs
         else hp.choice("c", list(options)))
    return {"p": container([hp.uniform(label, low, 1), c]),
            "n": scope.int(hp.quniform("n", 1, 5, 1))}


def test_fingerprint_is_stable_for_equal_spaces() -> None:
    a = compile_space(_fp_space()).fingerprint()
    assert a == compile_space(_fp_space()).fingerprint()  # separately built nodes
    assert len(a) == 16 and int(a, 16) >= 0


@pytest.mark.parametrize("changed", [
    pytest.param(lambda: _fp_space(low=0.5), id="bound"),
    pytest.param(lambda: _fp_space(label="y"), id="label"),
    pytest.param(lambda: _fp_space(options=("a", "c")), id="option-value"),
    pytest.param(lambda: _fp_space(options=("a", "b", "c")), id="option-count"),
    pytest.param(lambda: _fp_space(container=tuple), id="list-vs-tuple"),
    pytest.param(lambda: _fp_space(probs=(0.5, 0.5)), id="choice-vs-pchoice"),
    pytest.param(lambda: {"p": [hp.uniform("x", 0, 1), hp.choice("c", ["a", "b"])],
                          "n": hp.quniform("n", 1, 5, 1)}, id="no-cast"),
    pytest.param(lambda: {"p": [hp.loguniform("x", 0, 1), hp.choice("c", ["a", "b"])],
                          "n": scope.int(hp.quniform("n", 1, 5, 1))}, id="log"),
])
def test_fingerprint_changes_with_the_space(changed: Callable[[], Any]) -> None:
    assert compile_space(changed()).fingerprint() != compile_space(_fp_space()).fingerprint()


def test_fingerprint_distinguishes_pchoice_probabilities() -> None:
    a = compile_space(_fp_space(probs=(0.5, 0.5))).fingerprint()
    b = compile_space(_fp_space(probs=(0.25, 0.75))).fingerprint()
    assert a != b


# ---- every distribution stays in its support ----------------------------------------------

def _all_distributions() -> dict[str, Any]:
    return {
        "uniform": hp.uniform("uniform", -2, 3),
        "quniform": hp.quniform("quniform", 0, 10, 2.5),
        "loguniform": hp.loguniform("loguniform", -3, 1),
        "qloguniform": hp.qloguniform("qloguniform", 0, 3, 2),
        "normal": hp.normal("normal", 1, 2),
        "qnormal": hp.qnormal("qnormal", 0, 5, 2),
        "lognormal": hp.lognormal("lognormal", 0, 1),
        "qlognormal": hp.qlognormal("qlognormal", 1, 0.5, 0.5),
        "randint_upper": hp.randint("randint_upper", 5),
        "randint_low_high": hp.randint("randint_low_high", -3, 2),
        "uniformint": hp.uniformint("uniformint", 2, 6),
        "choice": hp.choice("choice", ["a", ("t",), {"d": 1}]),
        "pchoice": hp.pchoice("pchoice", [(0.2, "rare"), (0.8, "common")]),
        "int_quniform": scope.int(hp.quniform("int_quniform", 1, 4, 1)),
    }


def _on_grid(x: float, q: float) -> bool:
    return math.isclose(x / q, round(x / q), abs_tol=1e-9)


def _check_support(v: dict[str, Any]) -> None:
    assert type(v["uniform"]) is float and -2 <= v["uniform"] <= 3
    assert v["quniform"] in (0.0, 2.5, 5.0, 7.5, 10.0)
    assert math.exp(-3) <= v["loguniform"] <= math.exp(1)
    assert _on_grid(v["qloguniform"], 2) and 0 <= v["qloguniform"] <= 2 * round(math.exp(3) / 2)
    assert type(v["normal"]) is float and math.isfinite(v["normal"])
    assert _on_grid(v["qnormal"], 2)
    assert v["lognormal"] > 0
    assert _on_grid(v["qlognormal"], 0.5) and v["qlognormal"] >= 0
    assert type(v["randint_upper"]) is int and 0 <= v["randint_upper"] < 5
    assert type(v["randint_low_high"]) is int and -3 <= v["randint_low_high"] < 2
    assert type(v["uniformint"]) is int and 2 <= v["uniformint"] <= 6
    assert v["choice"] in ("a", ("t",), {"d": 1})
    assert v["pchoice"] in ("rare", "common")
    assert type(v["int_quniform"]) is int and 1 <= v["int_quniform"] <= 4


@pytest.mark.parametrize("algo", [rand.suggest, anneal.suggest], ids=["rand", "anneal"])
def test_every_distribution_stays_in_support(algo: Any) -> None:
    seen: list[dict[str, Any]] = []
    noise = np.random.default_rng(1)

    def objective(p: dict[str, Any]) -> float:
        _check_support(p)
        seen.append(p)
        return float(noise.uniform())

    trials = _run(objective, _all_distributions(), 200, algo=algo)
    assert len(seen) == 200
    # The raw values recorded on the trials are what space_eval was given.
    for doc, point in zip(trials.trials, seen, strict=True):
        params = {k: v[0] for k, v in doc["misc"]["vals"].items()}
        assert space_eval(_all_distributions(), params) == point
        assert type(params["choice"]) is int and type(params["randint_upper"]) is int
    if algo is not rand.suggest:
        return  # anneal concentrates near its best trials; coverage is rand's property
    # Draws cover the discrete supports (200 draws make a miss vanishingly unlikely).
    assert {p["randint_upper"] for p in seen} == set(range(5))
    assert {p["randint_low_high"] for p in seen} == set(range(-3, 2))
    assert {p["uniformint"] for p in seen} == set(range(2, 7))
    assert {p["quniform"] for p in seen} == {0.0, 2.5, 5.0, 7.5, 10.0}
    assert len({repr(p["choice"]) for p in seen}) == 3


def test_rand_follows_pchoice_probabilities() -> None:
    seen: list[str] = []
    _run(lambda p: seen.append(p) or 0.0, hp.pchoice("p", [(0.1, "rare"), (0.9, "common")]),
         400)
    share = seen.count("rare") / len(seen)
    assert 0.04 < share < 0.18


def test_support_checker_catches_values_out_of_support() -> None:
    # The checker above must be able to fail.
    good = space_eval(_all_distributions(), {
        "uniform": 0.0, "quniform": 2.5, "loguniform": 1.0, "qloguniform": 4.0, "normal": 0.0,
        "qnormal": -2.0, "lognormal": 1.0, "qlognormal": 1.5, "randint_upper": 4,
        "randint_low_high": -3, "uniformint": 6.0, "choice": 2, "pchoice": 0,
        "int_quniform": 4.0,
    })
    _check_support(good)
    for key, bad in [("uniform", 3.5), ("quniform", 3.0), ("randint_upper", 5),
                     ("uniformint", 7), ("qnormal", 1.0), ("lognormal", 0.0)]:
        with pytest.raises(AssertionError):
            _check_support({**good, key: bad})
