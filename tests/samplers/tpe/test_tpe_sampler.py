"""The TPE sampler: determinism, quality, conditional spaces, support, batches, settings."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pytest

from parzen import hp
from parzen.exceptions import ConfigError
from parzen.samplers import tpe
from parzen.samplers._history import History, HistoryBuilder
from parzen.samplers._prior import sample_prior
from parzen.samplers.rand import RandomSampler
from parzen.samplers.tpe import TPESampler
from parzen.samplers.tpe import _proposal as proposal_mod
from parzen.samplers.tpe._encode import build_groups
from parzen.samplers.tpe._surrogate import Surrogate, features
from parzen.space import Space, compile_space


def _history(space: Space, points: list[dict[str, Any]], losses: list[float | None],
             pending: list[bool] | None = None) -> History:
    pend = pending or [False] * len(points)
    return History.from_rows(space, list(zip(points, losses, pend, strict=True)))


def _random_history(space: Space, n: int, loss: Any, seed: int = 0) -> History:
    pts = RandomSampler().suggest(space, History.empty(space), n, np.random.default_rng(seed))
    return _history(space, pts, [loss(p) for p in pts])


def _quad(p: dict[str, Any]) -> float:
    return float((p["x"] - 0.3) ** 2 + (p["y"] + 0.2) ** 2)


SPACE_2D = compile_space({"x": hp.uniform("x", -1, 1), "y": hp.uniform("y", -1, 1)})


def _minimise(sampler: Any, seed: int, evals: int) -> float:
    b = HistoryBuilder(SPACE_2D)
    best = math.inf
    for t in range(evals):
        (p,) = sampler.suggest(SPACE_2D, b.view(), 1, np.random.default_rng([seed, t]))
        y = _quad(p)
        b.set_row(t, p, y, False)
        best = min(best, y)
    return best


def test_same_generator_state_gives_same_points() -> None:
    h = _random_history(SPACE_2D, 30, _quad)
    s = TPESampler()
    a = s.suggest(SPACE_2D, h, 4, np.random.default_rng(7))
    b = s.suggest(SPACE_2D, h, 4, np.random.default_rng(7))
    c = s.suggest(SPACE_2D, h, 4, np.random.default_rng(8))
    assert a == b
    assert a != c


def test_beats_random_search_on_a_quadratic() -> None:
    tpe_best = [_minimise(TPESampler(), s, 40) for s in range(3)]
    rand_best = [_minimise(RandomSampler(), s, 40) for s in range(3)]
    assert np.median(tpe_best) < 0.2 * np.median(rand_best)
    assert max(tpe_best) < 1e-2


def test_proposals_concentrate_where_losses_are_low() -> None:
    h = _random_history(SPACE_2D, 60, _quad)
    pts = TPESampler().suggest(SPACE_2D, h, 8, np.random.default_rng(0))
    assert np.median([_quad(p) for p in pts]) < 0.05


def test_startup_points_come_from_the_prior_then_the_model() -> None:
    s = TPESampler(n_startup_jobs=5)
    h = _random_history(SPACE_2D, 3, _quad)
    r = RandomSampler().suggest(SPACE_2D, h, 2, np.random.default_rng(1))
    assert s.suggest(SPACE_2D, h, 2, np.random.default_rng(1)) == r


COND = compile_space(hp.choice("m", [
    {"x": hp.uniform("x", 0, 1)},
    {"y": hp.uniform("y", 0, 1),
     "k": hp.choice("k", [{"z": hp.normal("z", 0, 1)}, {"w": hp.randint("w", 4)}])},
]))


def _cond_loss(p: dict[str, Any]) -> float:
    if p["m"] == 0:
        return float(1.0 + abs(p["x"] - 0.8))
    extra = abs(p["z"]) if p["k"] == 0 else 0.5 * p["w"]
    return float(abs(p["y"] - 0.2) + extra)


def test_conditional_points_hold_only_active_labels() -> None:
    h = _random_history(COND, 40, _cond_loss)
    pts = TPESampler().suggest(COND, h, 30, np.random.default_rng(0))
    for p in pts:
        assert list(p) == COND.active_labels(p)
        COND.check_assignment(p)
    assert {tuple(sorted(p)) for p in pts} <= {("m", "x"), ("k", "m", "y", "z"),
                                               ("k", "m", "w", "y")}


def test_child_model_uses_only_rows_where_it_was_active(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    h = _random_history(COND, 40, _cond_loss, seed=3)
    active_rows = {lab: int(np.count_nonzero(~np.isnan(h.values[lab]))) for lab in COND.labels}
    seen: dict[tuple[str, ...], int] = {}
    real_fit = proposal_mod.fit

    def spy(group: Any, xn: Any, xc: Any, *args: Any) -> Any:
        rows = xn.shape[0] if xn.shape[1] else xc.shape[0]
        seen[group.labels] = seen.get(group.labels, 0) + rows
        return real_fit(group, xn, xc, *args)

    monkeypatch.setattr(proposal_mod, "fit", spy)
    TPESampler().suggest(COND, h, 1, np.random.default_rng(0))
    assert seen, "no group was fitted"
    for labels, rows in seen.items():
        # l and g together see each completed row where the group is active, once.
        assert rows == active_rows[labels[0]], labels


def test_nested_choice_branch_with_good_losses_is_preferred() -> None:
    h = _random_history(COND, 60, _cond_loss, seed=1)
    pts = TPESampler().suggest(COND, h, 20, np.random.default_rng(2))
    assert sum(p["m"] == 1 for p in pts) >= 14


ALL_KINDS = compile_space({
    "u": hp.uniform("u", -2, 3),
    "qu": hp.quniform("qu", 0.5, 10.2, 1.5),
    "lu": hp.loguniform("lu", math.log(1e-4), math.log(1.0)),
    "qlu": hp.qloguniform("qlu", math.log(1), math.log(100), 5),
    "n": hp.normal("n", 1, 2),
    "qn": hp.qnormal("qn", 0, 3, 2),
    "ln": hp.lognormal("ln", 0, 1),
    "qln": hp.qlognormal("qln", 0, 2, 0.5),
    "r": hp.randint("r", 3, 9),
    "c": hp.choice("c", ["a", "b", "c"]),
    "pc": hp.pchoice("pc", [(0.1, "x"), (0.9, "y")]),
})


def _kinds_loss(p: dict[str, Any]) -> float:
    return float((p["u"] - 2.9) ** 2 + abs(p["n"] - 8) + p["qlu"] / 100 + p["lu"] + p["r"] / 10)


@pytest.mark.parametrize("seed", [0, 1])
def test_every_distribution_stays_in_its_support(seed: int) -> None:
    h = _random_history(ALL_KINDS, 40, _kinds_loss, seed=seed)
    pts = TPESampler(n_EI_candidates=64).suggest(ALL_KINDS, h, 16, np.random.default_rng(seed))
    for p in pts:
        ALL_KINDS.check_assignment(p)  # raises on out-of-range values
        assert type(p["r"]) is int and 3 <= p["r"] < 9
        assert type(p["c"]) is int and type(p["pc"]) is int
        for lab, q in (("qu", 1.5), ("qlu", 5), ("qn", 2), ("qln", 0.5)):
            assert type(p[lab]) is float
            assert p[lab] == round(p[lab] / q) * q, (lab, p[lab])
        assert 0.0 <= p["qu"] <= 10.5 and -2 <= p["u"] <= 3
        assert 1e-4 <= p["lu"] <= 1.0 and p["ln"] > 0 and p["qln"] >= 0
    # The model pushes u towards its upper bound: clipped, never beyond it.
    assert max(p["u"] for p in pts) <= 3.0


def _normalised(p: dict[str, Any]) -> np.ndarray:
    return np.array([(p["x"] + 1) / 2, (p["y"] + 1) / 2])


def _min_pair_distance(pts: list[dict[str, Any]]) -> float:
    z = np.array([_normalised(p) for p in pts])
    d = np.sqrt(((z[:, None] - z[None]) ** 2).sum(-1) / 2)
    return float(d[np.triu_indices(len(pts), 1)].min())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_batch_has_no_near_duplicates(seed: int) -> None:
    # A sharp optimum: without pending handling all 8 points pile onto it.
    h = _random_history(SPACE_2D, 50, _quad, seed=seed)
    pts = TPESampler().suggest(SPACE_2D, h, 8, np.random.default_rng(seed))
    assert len(pts) == 8
    assert _min_pair_distance(pts) >= TPESampler().settings.pending.min_distance


def test_pending_points_are_avoided() -> None:
    base = RandomSampler().suggest(SPACE_2D, History.empty(SPACE_2D), 50,
                                   np.random.default_rng(0))
    s = TPESampler()
    free = _history(SPACE_2D, base, [_quad(p) for p in base])
    first = s.suggest(SPACE_2D, free, 1, np.random.default_rng(5))
    # The same point handed out to another worker is now pending.
    busy = _history(SPACE_2D, base + first, [_quad(p) for p in base] + [None],
                    [False] * 50 + [True])
    again = s.suggest(SPACE_2D, busy, 1, np.random.default_rng(5))
    dist = float(np.sqrt(((_normalised(first[0]) - _normalised(again[0])) ** 2).sum() / 2))
    assert dist >= s.settings.pending.min_distance


def test_believer_predicts_good_and_poor_regions() -> None:
    h = _random_history(SPACE_2D, 60, _quad, seed=3)
    groups = build_groups(SPACE_2D, True)
    rows = np.arange(h.n)
    values = {lab: np.asarray(v) for lab, v in h.values.items()}
    b = Surrogate(features(groups, values, rows), np.asarray(h.losses))
    q = {"x": np.array([0.3, -1.0]), "y": np.array([-0.2, 1.0])}
    good, poor = b.predict(features(groups, q, np.arange(2)))
    losses = np.sort(np.asarray(h.losses))
    assert good <= losses[6] and poor >= losses[-7]


def test_single_suggestion_without_pending_ignores_batch_settings() -> None:
    # n=1 and nothing pending is sequential TPE: batch-only settings must not change it.
    h = _random_history(SPACE_2D, 30, _quad)
    a = TPESampler().suggest(SPACE_2D, h, 1, np.random.default_rng(4))
    b = TPESampler(believer=False, parallel_n_EI_candidates=3, parallel_bandwidth_factor=0.5,
                   min_distance=0.3, parallel_polish=0, parallel_thompson=False,
                   ).suggest(SPACE_2D, h, 1, np.random.default_rng(4))
    assert a == b


def _batch_minimise(sampler: TPESampler, seed: int, evals: int, k: int) -> float:
    b = HistoryBuilder(SPACE_2D)
    best = math.inf
    for t in range(0, evals, k):
        pts = sampler.suggest(SPACE_2D, b.view(), k, np.random.default_rng([seed, t]))
        for i, p in enumerate(pts):
            b.set_row(t + i, p, None, True)
        for i, p in enumerate(pts):
            b.set_row(t + i, p, _quad(p), False)
            best = min(best, _quad(p))
    return best


def test_believer_batches_beat_the_constant_liar_on_a_smooth_bowl() -> None:
    # Pending-aware: later members of a batch follow the believed-good earlier ones instead
    # of being pushed away from the incumbent by a pessimistic lie.
    # The surrogate's re-ranking would blur the comparison; it is tested on its own.
    seeds = range(12)
    believe = [_batch_minimise(TPESampler(parallel_refine_candidates=0), s, 48, 8)
               for s in seeds]
    liar = [_batch_minimise(TPESampler(believer=False, parallel_refine_candidates=0), s, 48, 8)
            for s in seeds]
    assert np.median(believe) < np.median(liar)


def test_believer_batch_is_pending_aware() -> None:
    # A pending point right at the optimum, believed good, pulls the next points towards it;
    # the liar pushes them away.
    h0 = _random_history(SPACE_2D, 40, _quad, seed=1)
    pts = [{"x": float(x), "y": float(y)} for x, y in zip(h0.values["x"], h0.values["y"],
                                                           strict=True)]
    busy = _history(SPACE_2D, pts + [{"x": 0.3, "y": -0.2}],
                    [float(v) for v in h0.losses] + [None], [False] * 40 + [True])
    opt = np.array([0.3, -0.2])

    def spread(s: TPESampler) -> float:
        out = [s.suggest(SPACE_2D, busy, 4, np.random.default_rng(r)) for r in range(10)]
        return float(np.median([np.hypot(*(np.array([p["x"], p["y"]]) - opt))
                                for b in out for p in b]))

    assert spread(TPESampler()) < spread(TPESampler(believer=False))


@pytest.mark.parametrize(("setting", "value"), [
    ("n_startup_jobs", -1), ("n_startup_jobs", 2.5), ("n_EI_candidates", 0),
    ("gamma", 0.0), ("gamma", 1.5), ("prior_weight", -1.0), ("prior_weight", math.nan),
    ("linear_forgetting", -3), ("multivariate", "yes"), ("below_fraction", 0),
    ("min_distance", 2.0), ("bandwidth_factor", 0.0), ("pending_weight", 0),
    ("believer", 1), ("parallel_n_EI_candidates", 0),
])
def test_bad_settings_raise_config_error_naming_the_value(setting: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"{setting}={value!r}"):
        TPESampler(**{setting: value})


def test_refusals_read_as_before() -> None:
    with pytest.raises(ConfigError) as err:
        TPESampler(n_startup_jobs=-1)
    assert str(err.value) == "tpe: n_startup_jobs must be an int >= 0, got n_startup_jobs=-1"
    with pytest.raises(ConfigError) as err:
        TPESampler(parallel_local=5)
    assert str(err.value) == ("tpe: parallel_local must be at most 4 (one per neighbourhood "
                              "size), got parallel_local=5")
    # With several bad settings, the first in the order they are checked is reported.
    with pytest.raises(ConfigError, match="gamma=2.0"):
        TPESampler(gamma=2.0, min_distance=5.0, parallel_probes=-1)


# Each keyword of TPESampler and the part of TPESettings that holds it.
_PARTS = {
    "n_startup_jobs": "prior", "prior_weight": "prior",
    "n_EI_candidates": "proposal", "parallel_n_EI_candidates": "proposal",
    "gamma": "proposal", "below_fraction": "proposal", "below_cap": "proposal",
    "linear_forgetting": "proposal", "multivariate": "proposal",
    "bandwidth_factor": "proposal", "parallel_bandwidth_factor": "proposal",
    "min_bandwidth": "proposal",
    "believer": "pending", "constant_liar": "pending", "pending_weight": "pending",
    "min_distance": "pending",
    "refine_candidates": "rerank", "parallel_refine_candidates": "rerank",
    "refine_max_pending": "rerank", "parallel_thompson": "rerank",
    "local_every": "local", "parallel_local": "local",
    "parallel_probes": "probes",
    "parallel_polish": "polish", "polish_candidates": "polish", "polish_scale": "polish",
}


def test_every_keyword_lands_in_its_part_with_the_same_default() -> None:
    import inspect

    params = inspect.signature(TPESampler).parameters
    assert sorted(n for n in params if n != "verbose") == sorted(_PARTS)
    settings = TPESampler().settings
    for name, part in _PARTS.items():
        default = params[name].default
        assert getattr(getattr(settings, part), name) == default, name
        # The part's own default is the keyword's, so a part built alone behaves the same.
        assert getattr(type(getattr(settings, part))(), name) == default, name
    values = {"n_startup_jobs": 3, "prior_weight": 2.0, "n_EI_candidates": 7,
              "parallel_n_EI_candidates": 9, "gamma": 0.25, "below_fraction": 0.2,
              "below_cap": 4, "linear_forgetting": 0, "multivariate": False,
              "bandwidth_factor": 0.3, "parallel_bandwidth_factor": 0.4, "min_bandwidth": 0.02,
              "believer": False, "constant_liar": False, "pending_weight": 0.5,
              "min_distance": 0.0, "refine_candidates": 0, "parallel_refine_candidates": 3,
              "refine_max_pending": 2, "parallel_thompson": False, "local_every": 0,
              "parallel_local": 1, "parallel_probes": 0, "parallel_polish": 0,
              "polish_candidates": 5, "polish_scale": 1.5}
    assert sorted(values) == sorted(_PARTS)
    settings = TPESampler(**values).settings  # type: ignore[arg-type]
    for name, value in values.items():
        assert getattr(getattr(settings, _PARTS[name]), name) == value, name
    proposal = settings.proposal
    assert proposal.bandwidth(False).factor == 0.3 and proposal.bandwidth(True).factor == 0.4
    assert proposal.bandwidth(True).min_width == 0.02


def test_unknown_setting_is_refused() -> None:
    with pytest.raises(TypeError):
        TPESampler(n_startup=3)  # type: ignore[call-arg]


def test_hyperopt_style_partial_settings_are_accepted() -> None:
    algo = functools.partial(tpe.suggest, n_startup_jobs=20, n_EI_candidates=10, gamma=0.25,
                             prior_weight=1.0, linear_forgetting=25)
    # The factory behind tpe.suggest (fmin builds the sampler once per run with it).
    sampler = tpe.suggest.make(**algo.keywords)
    assert isinstance(sampler, TPESampler) and sampler.settings.prior.n_startup_jobs == 20
    h = _random_history(SPACE_2D, 30, _quad)
    pts = sampler.suggest(SPACE_2D, h, 3, np.random.default_rng(0))
    assert len(pts) == 3


def test_fmin_with_tpe_finds_a_good_point() -> None:
    from parzen import Trials, fmin

    trials = Trials()
    algo = functools.partial(tpe.suggest, n_startup_jobs=10)
    best = fmin(_quad, {"x": hp.uniform("x", -1, 1), "y": hp.uniform("y", -1, 1)}, algo=algo,
                max_evals=40, trials=trials, rstate=np.random.default_rng(0),
                show_progressbar=False)
    assert len(trials.trials) == 40
    assert _quad(best) < 0.02


def test_edge_histories_do_not_break_the_sampler() -> None:
    s = TPESampler(n_startup_jobs=2)
    cat_only = compile_space({"c": hp.choice("c", ["a", "b", "c"]), "r": hp.randint("r", 2)})
    pts = [{"c": i % 3, "r": i % 2} for i in range(12)]
    # Failed trials (no loss, not pending) and pending ones mixed with completed ones.
    losses: list[float | None] = [float(i) if i % 4 else None for i in range(12)]
    pending = [losses[i] is None and i % 8 == 0 for i in range(12)]
    h = _history(cat_only, pts, losses, pending)
    out = s.suggest(cat_only, h, 5, np.random.default_rng(0))
    assert len(out) == 5 and all(set(p) == {"c", "r"} for p in out)
    # Every completed loss equal: no information, still valid points.
    flat = _history(SPACE_2D, [{"x": 0.1 * i - 0.5, "y": 0.0} for i in range(10)], [1.0] * 10)
    for p in TPESampler(prior_weight=0.0).suggest(SPACE_2D, flat, 3, np.random.default_rng(1)):
        assert -1 <= p["x"] <= 1 and -1 <= p["y"] <= 1
    assert s.suggest(SPACE_2D, flat, 0, np.random.default_rng(1)) == []


def test_hyperopt_gamma_uses_hyperopts_split_rule() -> None:
    from parzen.samplers.tpe._split import n_below

    assert n_below(100, 0.1, 25, None) == 10
    assert n_below(1000, 0.1, 25, None) == 25
    assert n_below(100, 0.1, 25, 0.25) == 3  # ceil(0.25 * sqrt(100))
    assert n_below(1, 0.1, 25, None) == 1


def _all_kinds_space() -> Space:
    return compile_space({
        "a": hp.uniform("a", -2, 3), "b": hp.loguniform("b", -3, 2),
        "c": hp.quniform("c", 0, 10, 2), "d": hp.qloguniform("d", 0, 4, 1),
        "e": hp.normal("e", 1, 2), "f": hp.lognormal("f", 0, 1),
        "g": hp.qnormal("g", 0, 3, 0.5), "h": hp.qlognormal("h", 1, 1, 0.2),
        "i": hp.randint("i", 7), "j": hp.pchoice("j", [(0.2, "x"), (0.5, "y"), (0.3, "z")]),
    })


def test_vectorised_encoding_matches_the_per_column_one() -> None:
    space = _all_kinds_space()
    (g,) = build_groups(space, True)
    cols = sample_prior(space, 400, np.random.default_rng(0))
    x = np.column_stack([cols[d.label] for d in g.numeric])
    x[3, 2], x[5, 3] = np.nan, 0.0
    ref = np.column_stack([d.encode(x[:, j]) for j, d in enumerate(g.numeric)])
    assert np.array_equal(g.encode_numeric(x), ref, equal_nan=True)
    u = np.random.default_rng(1).normal(0.5, 0.6, size=(400, len(g.numeric)))
    ref = np.column_stack([d.decode(u[:, j]) for j, d in enumerate(g.numeric)])
    assert np.array_equal(g.decode_numeric(u), ref)


def test_categorical_prior_draws_match_generator_choice() -> None:
    (g,) = build_groups(_all_kinds_space(), True)
    for c in g.categorical:
        for seed in range(20):
            want = np.random.default_rng(seed).choice(c.k, size=9, p=c.prior)
            assert np.array_equal(c.prior_sample(9, np.random.default_rng(seed)), want)


def test_single_suggestion_leaves_the_history_untouched() -> None:
    space = _all_kinds_space()
    hb = HistoryBuilder(space)
    rng = np.random.default_rng(0)
    for i, p in enumerate(RandomSampler().suggest(space, History.empty(space), 30, rng)):
        hb.set_row(i, p, float(rng.normal()), False)
    h = hb.view()
    before = {lab: np.array(v) for lab, v in h.values.items()}
    pts = TPESampler().suggest(space, h, 1, np.random.default_rng(1))
    assert len(pts) == 1 and set(pts[0]) == set(space.labels)
    assert all(np.array_equal(h.values[lab], v, equal_nan=True) for lab, v in before.items())
    assert pts == TPESampler().suggest(space, h, 1, np.random.default_rng(1))


def test_blocked_kernel_product_matches_the_plain_one() -> None:
    from parzen.samplers.tpe._parzen import _KERNEL_BLOCK, _small_matmul

    rng = np.random.default_rng(0)
    f = rng.normal(size=(24, 13))
    for m in (1, _KERNEL_BLOCK, _KERNEL_BLOCK + 1, 3 * _KERNEL_BLOCK + 7):
        kmat = rng.normal(size=(m, 13))
        np.testing.assert_allclose(_small_matmul(f, kmat), f @ kmat.T, rtol=1e-12, atol=1e-12)
