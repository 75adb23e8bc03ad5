"""Grid search: every point of a finite space once, in a seeded order, then exhaustion."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pytest

from parzen import SpaceError, Trials, fmin, grid, hp, space_eval
from parzen.pyll import scope
from parzen.samplers._history import History
from parzen.samplers.grid import MAX_GRID_POINTS, GridSampler, enumerate_grid, grid_values
from parzen.space import compile_space

TWELVE = {"act": hp.choice("act", ["relu", "tanh", "elu"]), "layers": hp.randint("layers", 1, 5)}


def _key(doc: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((k, v[0]) for k, v in doc["misc"]["vals"].items()))


def _run(space: Any, max_evals: int, trials: Trials | None = None, **kw: Any) -> Trials:
    trials = Trials() if trials is None else trials
    kw.setdefault("algo", grid.suggest)
    fmin(lambda p: float(len(repr(p))), space, max_evals=max_evals, trials=trials,
         rstate=np.random.default_rng(0), show_progressbar=False, **kw)
    return trials


@pytest.mark.timeout(30)  # undetected exhaustion would spin the loop forever
@pytest.mark.parametrize("max_queue_len", [1, 5])
def test_exhaustion_ends_the_run_normally(max_queue_len: int) -> None:
    trials = Trials()
    best = fmin(lambda p: p["layers"] + len(p["act"]), TWELVE, algo=grid.suggest,
                max_evals=100, trials=trials, max_queue_len=max_queue_len,
                show_progressbar=False)
    assert len(trials) == 12
    assert len({_key(d) for d in trials.trials}) == 12
    assert trials.count_by_state_synced(2) == 12  # all DONE, nothing cancelled
    assert space_eval(TWELVE, best) == {"act": "elu", "layers": 1}


def test_exhaustion_then_rerun_adds_nothing() -> None:
    trials = _run(TWELVE, 7)
    assert len(trials) == 7
    _run(TWELVE, 100, trials)
    assert len(trials) == 12 and len({_key(d) for d in trials.trials}) == 12
    _run(TWELVE, 200, trials)
    assert len(trials) == 12


def test_points_already_evaluated_are_not_repeated() -> None:
    trials = _run(TWELVE, 100, points_to_evaluate=[{"act": 1, "layers": 2}])
    assert len(trials) == 12 and len({_key(d) for d in trials.trials}) == 12


@pytest.mark.parametrize("node", [hp.uniform("x", 0, 1), hp.loguniform("x", 0, 1),
                                  hp.normal("x", 0, 1), hp.qnormal("x", 0, 1, 1)],
                         ids=["uniform", "loguniform", "normal", "qnormal"])
def test_continuous_parameter_is_a_space_error(node: Any) -> None:
    with pytest.raises(SpaceError, match=rf"grid search needs a finite space, but {node.kind}"
                                         r"\('x'\) is continuous"):
        _run({"x": node, "c": hp.choice("c", [1, 2])}, 5)


def test_too_many_points_is_a_space_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SpaceError, match=f"more than {MAX_GRID_POINTS}; use a larger q"):
        grid_values(compile_space(hp.quniform("x", 0, 1e7, 1)).params[0])
    monkeypatch.setattr(grid, "MAX_GRID_POINTS", 999)  # enumerating 10**6 is slow
    big = {f"p{i}": hp.randint(f"p{i}", 10) for i in range(3)}  # 1000 points
    with pytest.raises(SpaceError, match="the space has more than 999 points"):
        enumerate_grid(compile_space(big))
    assert len(enumerate_grid(compile_space({"p": hp.randint("p", 999)}))) == 999


def test_grid_values_per_distribution() -> None:
    def values(node: Any) -> list[Any]:
        return grid_values(compile_space(node).params[0])

    assert values(hp.choice("v", ["a", "b", "c"])) == [0, 1, 2]
    assert values(hp.randint("v", 3)) == [0, 1, 2]
    assert values(hp.randint("v", -2, 1)) == [-2, -1, 0]
    assert values(hp.quniform("v", 0, 1, 0.25)) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert values(hp.quniform("v", 10, 100, 10)) == [float(v) for v in range(10, 101, 10)]
    assert values(hp.qloguniform("v", 0, math.log(5), 1)) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert values(scope.int(hp.uniformint("v", 2, 4))) == [2.0, 3.0, 4.0]


def test_conditional_grid_counts() -> None:
    space = {"model": hp.choice("model", [
        {"kind": "a", "act": hp.choice("act", ["x", "y", "z"])},
        {"kind": "b", "depth": hp.randint("depth", 2), "frac": hp.quniform("frac", 0, 1, 0.5)},
        "none",
    ]), "lr": hp.choice("lr", [0.1, 0.01])}
    points = enumerate_grid(compile_space(space))
    assert len(points) == (3 + 2 * 3 + 1) * 2
    assert len({tuple(sorted(p.items())) for p in points}) == len(points)
    assert {tuple(sorted(p)) for p in points} == {
        ("act", "lr", "model"), ("depth", "frac", "lr", "model"), ("lr", "model")}
    trials = _run(space, 1000)
    assert len(trials) == 20
    assert {_key(d) for d in trials.trials} == {tuple(sorted(p.items())) for p in points}


def test_order_is_seeded_and_stable() -> None:
    space = compile_space(TWELVE)
    empty = History.empty(space)
    rng = np.random.default_rng(0)
    a = GridSampler(seed=1).suggest(space, empty, 12, rng)
    assert GridSampler(seed=1).suggest(space, empty, 12, np.random.default_rng(99)) == a
    assert GridSampler(seed=2).suggest(space, empty, 12, rng) != a
    assert sorted(map(str, a)) == sorted(map(str, enumerate_grid(space)))
    assert GridSampler(shuffle=False).suggest(space, empty, 12, rng) == enumerate_grid(space)


def test_sampler_skips_finished_and_pending_points() -> None:
    space = compile_space(TWELVE)
    sampler = GridSampler(shuffle=False)
    history = History.from_rows(space, [({"act": 0, "layers": 1}, 1.0, False),
                                        ({"act": 0, "layers": 2}, None, True)])
    out = sampler.suggest(space, history, 20, np.random.default_rng(0))
    assert len(out) == 10
    assert {"act": 0, "layers": 1} not in out and {"act": 0, "layers": 2} not in out
    assert out[0] == {"act": 0, "layers": 3}


def test_partial_grid_suggest_settings() -> None:
    plain = [_key(d) for d in _run(TWELVE, 12, algo=functools.partial(grid.suggest,
                                                                       shuffle=False)).trials]
    assert plain == [tuple(sorted(p.items())) for p in enumerate_grid(compile_space(TWELVE))]
    seeded = [_key(d) for d in _run(TWELVE, 12, algo=functools.partial(grid.suggest,
                                                                        grid_seed=4)).trials]
    assert seeded != plain and sorted(seeded) == sorted(plain)
