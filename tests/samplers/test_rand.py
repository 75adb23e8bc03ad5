"""Random search: independent, seeded draws from each distribution's prior."""

from __future__ import annotations

import math

import numpy as np
import pytest

from parzen import hp, rand, space_eval
from parzen.pyll import scope
from parzen.samplers._history import History
from parzen.samplers._prior import quantize, sample_param, to_points
from parzen.samplers.rand import RandomSampler
from parzen.space import compile_space

N = 4000


def _draws(node: object, seed: int = 0) -> np.ndarray:
    space = compile_space({"v": node})
    return sample_param(space.params[0], N, np.random.default_rng(seed))


def test_fixed_seed_gives_fixed_points() -> None:
    space = compile_space({"x": hp.uniform("x", 0, 1), "c": hp.choice("c", ["a", "b"]),
                           "r": hp.randint("r", 10)})
    sampler = RandomSampler()
    history = History.empty(space)
    a = sampler.suggest(space, history, 5, np.random.default_rng(3))
    b = sampler.suggest(space, history, 5, np.random.default_rng(3))
    c = sampler.suggest(space, history, 5, np.random.default_rng(4))
    assert a == b and a != c
    assert len(a) == 5 and all(set(p) == {"x", "c", "r"} for p in a)
    assert all(type(p["c"]) is int and type(p["r"]) is int and type(p["x"]) is float
               for p in a)


def test_history_does_not_change_random_points() -> None:
    space = compile_space({"x": hp.uniform("x", 0, 1)})
    full = History.from_rows(space, [({"x": 0.5}, 0.0, False)] * 10)
    rng_a, rng_b = np.random.default_rng(1), np.random.default_rng(1)
    assert RandomSampler().suggest(space, History.empty(space), 3, rng_a) == \
        RandomSampler().suggest(space, full, 3, rng_b)


def test_points_hold_only_active_labels() -> None:
    space = compile_space(hp.choice("m", [{"u": hp.uniform("u", 0, 1)},
                                          {"r": hp.randint("r", 3),
                                           "k": hp.choice("k", [0, {"v": hp.normal("v", 0, 1)}])}]))
    points = RandomSampler().suggest(space, History.empty(space), 300, np.random.default_rng(0))
    shapes = {tuple(sorted(p)) for p in points}
    assert shapes == {("m", "u"), ("k", "m", "r"), ("k", "m", "r", "v")}
    for p in points:
        assert space.active_labels(p) == [lab for lab in space.labels if lab in p]


@pytest.mark.parametrize(("node", "mean", "std"), [
    (hp.uniform("v", -2, 4), 1.0, 6 / math.sqrt(12)),
    (hp.normal("v", 3, 2), 3.0, 2.0),
    (hp.randint("v", 10), 4.5, math.sqrt((10**2 - 1) / 12)),
    (hp.randint("v", -5, 5), -0.5, math.sqrt((10**2 - 1) / 12)),
])
def test_prior_moments(node: object, mean: float, std: float) -> None:
    x = _draws(node)
    assert abs(x.mean() - mean) < 4 * std / math.sqrt(N)
    assert abs(x.std() - std) < 0.05 * std


def test_log_distributions_are_uniform_and_normal_in_log_space() -> None:
    lu = np.log(_draws(hp.loguniform("v", -4, 2)))
    assert lu.min() >= -4 and lu.max() <= 2 and abs(lu.mean() + 1) < 0.1
    ln = np.log(_draws(hp.lognormal("v", 1, 0.5)))
    assert abs(ln.mean() - 1) < 0.05 and abs(ln.std() - 0.5) < 0.03


def test_quantised_draws() -> None:
    q = _draws(hp.quniform("v", 0, 10, 2.5))
    assert set(q.tolist()) == {0.0, 2.5, 5.0, 7.5, 10.0}
    # round() gives the end points half the mass of the inner points, as in hyperopt.
    assert 0.08 < np.mean(q == 0.0) < 0.17 and 0.2 < np.mean(q == 5.0) < 0.3
    qln = _draws(hp.qlognormal("v", 0, 1, 0.5))
    np.testing.assert_allclose(qln / 0.5, np.round(qln / 0.5))
    assert qln.min() >= 0
    assert quantize(np.array([0.74, 0.76]), 0.5).tolist() == [0.5, 1.0]
    assert quantize(np.array([0.74]), None).tolist() == [0.74]


def test_choice_and_pchoice_frequencies() -> None:
    c = _draws(hp.choice("v", ["a", "b", "c", "d"]))
    np.testing.assert_allclose(np.bincount(c.astype(int)) / N, [0.25] * 4, atol=0.03)
    p = _draws(hp.pchoice("v", [(0.1, "a"), (0.6, "b"), (0.3, "c")]))
    np.testing.assert_allclose(np.bincount(p.astype(int)) / N, [0.1, 0.6, 0.3], atol=0.03)
    assert set(_draws(hp.pchoice("v", [(0.0, "never"), (1.0, "b")])).tolist()) == {1.0}


def test_uniformint_is_inclusive_and_cast() -> None:
    space_def = {"v": hp.uniformint("v", 2, 5), "w": scope.int(hp.quniform("w", 0, 3, 1))}
    space = compile_space(space_def)
    points = to_points(space, {p.label: sample_param(p, N, np.random.default_rng(0))
                               for p in space.params})
    assert {p["v"] for p in points} == {2.0, 3.0, 4.0, 5.0}  # raw values are floats
    values = [space_eval(space_def, p) for p in points[:50]]
    assert all(type(v["v"]) is int and type(v["w"]) is int for v in values)
    assert {v["w"] for v in values} <= {0, 1, 2, 3}


def test_module_suggest_has_hyperopts_shape() -> None:
    assert rand.suggest.make is RandomSampler
    assert "hyperopt" in (rand.suggest.__doc__ or "")
