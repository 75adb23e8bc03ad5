"""Annealing: prior draws during start-up, then perturbations of good trials that stay in the
space and shrink as the history grows."""

from __future__ import annotations

from typing import Any

import numpy as np

from parzen import hp
from parzen.samplers._history import History
from parzen.samplers.anneal import AnnealSampler
from parzen.samplers.rand import RandomSampler
from parzen.space import compile_space

SPACE = compile_space({"x": hp.uniform("x", 0, 10), "q": hp.quniform("q", 0, 10, 1),
                       "lx": hp.loguniform("lx", -5, 0), "n": hp.normal("n", 0, 1),
                       "c": hp.choice("c", ["a", "b", "c", "d"]), "r": hp.randint("r", 20)})


def _history(rows: list[tuple[dict[str, Any], float | None]]) -> History:
    return History.from_rows(SPACE, [(p, loss, loss is None) for p, loss in rows])


def _rows(n: int, seed: int = 0) -> list[tuple[dict[str, Any], float | None]]:
    """``n`` random finished trials, plus one clearly best trial at a known point."""
    rng = np.random.default_rng(seed)
    pts = RandomSampler().suggest(SPACE, History.empty(SPACE), n, rng)
    rows: list[tuple[dict[str, Any], float | None]] = [(p, 10.0 + i) for i, p in enumerate(pts)]
    best = {"x": 7.0, "q": 3.0, "lx": float(np.exp(-2.0)), "n": 0.5, "c": 2, "r": 11}
    rows.append((best, 0.0))
    return rows


def test_startup_draws_from_the_prior() -> None:
    sampler = AnnealSampler(n_startup_jobs=5)
    history = _history(_rows(3))  # 4 finished trials < 5
    a = sampler.suggest(SPACE, history, 6, np.random.default_rng(1))
    b = RandomSampler().suggest(SPACE, History.empty(SPACE), 6, np.random.default_rng(1))
    assert a == b
    # With n_startup_jobs=0 the first point still needs one finished trial to perturb.
    assert AnnealSampler(n_startup_jobs=0).suggest(
        SPACE, History.empty(SPACE), 2, np.random.default_rng(1)) == RandomSampler().suggest(
        SPACE, History.empty(SPACE), 2, np.random.default_rng(1))


def test_fixed_seed_gives_fixed_points() -> None:
    history = _history(_rows(30))
    a = AnnealSampler().suggest(SPACE, history, 8, np.random.default_rng(5))
    assert a == AnnealSampler().suggest(SPACE, history, 8, np.random.default_rng(5))
    assert a != AnnealSampler().suggest(SPACE, history, 8, np.random.default_rng(6))


def test_proposals_concentrate_near_the_best_trial() -> None:
    history = _history(_rows(200))
    points = AnnealSampler(avg_best_idx=1.0).suggest(SPACE, history, 400,
                                                     np.random.default_rng(0))
    x = np.array([p["x"] for p in points])
    assert np.median(np.abs(x - 7.0)) < 0.5  # prior median distance is about 2.6
    assert np.mean([p["c"] == 2 for p in points]) > 0.8
    assert np.mean([p["r"] == 11 for p in points]) > 0.8
    early = AnnealSampler(avg_best_idx=1.0).suggest(SPACE, _history(_rows(5)), 400,
                                                    np.random.default_rng(0))
    early_x = np.array([p["x"] for p in early])
    # The neighbourhood shrinks as the history grows.
    assert np.median(np.abs(early_x - 7.0)) > 2 * np.median(np.abs(x - 7.0))


def test_perturbations_stay_in_the_space() -> None:
    rows = _rows(40)
    # Parents sitting on the bounds must be reflected back inside, not clipped outside.
    rows += [({"x": 0.0, "q": 0.0, "lx": float(np.exp(-5)), "n": 0.0, "c": 0, "r": 0}, -1.0),
             ({"x": 10.0, "q": 10.0, "lx": 1.0, "n": 0.0, "c": 3, "r": 19}, -1.0)]
    for seed in range(3):
        points = AnnealSampler(shrink_coef=0.0).suggest(SPACE, _history(rows), 300,
                                                        np.random.default_rng(seed))
        for p in points:
            assert set(p) == set(SPACE.labels)
            assert 0.0 <= p["x"] <= 10.0
            assert p["q"] in [float(v) for v in range(11)]
            assert np.exp(-5) - 1e-12 <= p["lx"] <= 1.0 + 1e-12
            assert np.isfinite(p["n"])
            assert type(p["c"]) is int and 0 <= p["c"] < 4
            assert type(p["r"]) is int and 0 <= p["r"] < 20
        xs = np.array([p["x"] for p in points])
        assert np.mean(xs == 0.0) < 0.05 and np.mean(xs == 10.0) < 0.05  # no mass piles up


def test_inactive_parent_values_are_drawn_from_the_prior() -> None:
    space = compile_space(hp.choice("m", [{"u": hp.uniform("u", 5, 6)},
                                          {"r": hp.randint("r", 3)}]))
    rows = [({"m": 1, "r": i % 3}, float(i)) for i in range(30)]  # every parent lacks "u"
    history = History.from_rows(space, [(p, loss, False) for p, loss in rows])
    points = AnnealSampler(shrink_coef=0.01).suggest(space, history, 300,
                                                     np.random.default_rng(0))
    with_u = [p for p in points if p["m"] == 0]
    assert with_u, "a categorical must sometimes be resampled from the prior"
    assert all(set(p) == {"m", "u"} and 5 <= p["u"] <= 6 for p in with_u)
    assert all(set(p) == {"m", "r"} for p in points if p["m"] == 1)

