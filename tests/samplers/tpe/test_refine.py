"""The surrogate's re-ranking of the best candidates, and pushing candidates out of a pending
point's neighbourhood instead of discarding them, and the batch rules (polishing, posterior
draws)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from parzen import hp
from parzen.exceptions import ConfigError
from parzen.samplers._history import History, HistoryBuilder
from parzen.samplers.rand import RandomSampler
from parzen.samplers.tpe import TPESampler
from parzen.samplers.tpe import _sampler as sampler_mod
from parzen.samplers.tpe._encode import build_groups
from parzen.samplers.tpe._pending import near_pending, push_out
from parzen.samplers.tpe._polish import polish
from parzen.samplers.tpe._rerank import Ranker
from parzen.samplers.tpe._surrogate import Surrogate, column_span, features, group_features
from parzen.samplers.tpe._work import Candidates, Pick, Work
from parzen.space import compile_space

SPACE_2D = compile_space({"x": hp.uniform("x", -1, 1), "y": hp.uniform("y", -1, 1)})
MIXED = compile_space({"x": hp.uniform("x", 0, 1), "c": hp.choice("c", ["a", "b", "c"])})


def _quad(p: dict[str, Any]) -> float:
    return float((p["x"] - 0.3) ** 2 + (p["y"] + 0.2) ** 2)


def _minimise(sampler: TPESampler, seed: int, evals: int) -> float:
    b = HistoryBuilder(SPACE_2D)
    best = math.inf
    for t in range(evals):
        (p,) = sampler.suggest(SPACE_2D, b.view(), 1, np.random.default_rng([seed, t]))
        b.set_row(t, p, _quad(p), False)
        best = min(best, _quad(p))
    return best


def _random_history(space: Any, n: int, loss: Any, seed: int = 0,
                    pending: int = 0) -> History:
    pts = RandomSampler().suggest(space, History.empty(space), n, np.random.default_rng(seed))
    rows = [(p, None if i >= n - pending else loss(p), i >= n - pending)
            for i, p in enumerate(pts)]
    return History.from_rows(space, rows)


def _cands(cn: np.ndarray, cc: np.ndarray, score: np.ndarray) -> Candidates:
    return Candidates(cn, cc, cn, score)  # raw values unused by the ranker


def _pick(s: TPESampler, work: Work, point: dict[str, Any] | None = None,
          seed: int = 0) -> Pick:
    (g,) = build_groups(SPACE_2D, True)
    return Pick(g, work, 1, {} if point is None else point, np.random.default_rng(seed),
                batch=True, min_distance=s.settings.pending.min_distance)


class _FakeModel:
    """Predicts whatever a function of the feature rows says."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.seen: list[np.ndarray] = []

    def score(self, q: np.ndarray) -> np.ndarray:
        self.seen.append(q)
        return np.asarray(self.fn(q), dtype=np.float64)


def test_ranker_takes_the_lowest_prediction_among_the_top_candidates() -> None:
    (g,) = build_groups(MIXED, True)
    cn = np.array([[0.1], [0.2], [0.3], [0.4], [0.5]])
    cc = np.zeros((5, 1), dtype=np.intp)
    score = np.array([5.0, 4.0, 3.0, 2.0, 1.0])  # candidate 0 is best by l/g
    model = _FakeModel(lambda q: -q[:, 0])  # predicts larger x is better
    ranker = Ranker(model, 3, build_groups(MIXED, True), MIXED.labels)  # type: ignore[arg-type]
    # Only the three best by l/g are eligible: x = 0.1, 0.2, 0.3, and 0.3 is predicted best.
    assert ranker.pick(g, _cands(cn, cc, score), 0, {}) == 2


def test_ranker_never_changes_the_category_the_tpe_chose() -> None:
    (g,) = build_groups(MIXED, True)
    cn = np.array([[0.1], [0.9], [0.2], [0.8]])
    cc = np.array([[1], [0], [1], [2]], dtype=np.intp)
    score = np.array([4.0, 3.0, 2.0, 1.0])
    model = _FakeModel(lambda q: -q[:, 0])  # would love x = 0.9 (category 0)
    ranker = Ranker(model, 4, build_groups(MIXED, True), MIXED.labels)  # type: ignore[arg-type]
    assert ranker.pick(g, _cands(cn, cc, score), 0, {}) == 2  # the best x within category 1
    # Only category 1 reached the model.
    onehot = model.seen[0][:, 1:]
    assert (onehot.argmax(axis=1) == 1).all()


def test_ranker_skips_excluded_candidates_and_defers_without_a_model() -> None:
    (g,) = build_groups(SPACE_2D, True)
    cn = np.array([[0.1, 0.1], [0.9, 0.9], [0.5, 0.5]])
    cc = np.zeros((3, 0), dtype=np.intp)
    score = np.array([2.0, -np.inf, 1.0])  # candidate 1 duplicates a pending point
    model = _FakeModel(lambda q: -q.sum(axis=1))
    groups = build_groups(SPACE_2D, True)
    assert Ranker(model, 3, groups, SPACE_2D.labels).pick(  # type: ignore[arg-type]
        g, _cands(cn, cc, score), 0, {}) == 2
    assert Ranker(None, 3, groups, SPACE_2D.labels).pick(g, _cands(cn, cc, score), 0, {}) == 0


def test_group_columns_match_the_full_feature_layout() -> None:
    space = compile_space({
        "a": hp.uniform("a", 0, 1),
        "m": hp.choice("m", [{"lr": hp.loguniform("lr", -5, 0)},
                             {"k": hp.choice("k", ["x", "y"]), "w": hp.uniform("w", 2, 4)}]),
    })
    groups = build_groups(space, True)
    pts = RandomSampler().suggest(space, History.empty(space), 40, np.random.default_rng(1))
    h = History.from_rows(space, [(p, 1.0, False) for p in pts])
    values = {lab: np.asarray(v) for lab, v in h.values.items()}
    full = features(groups, values, np.arange(h.n))
    for g in groups:
        start, stop = column_span(groups, g)
        active = ~np.isnan(values[g.labels[0]])
        un = g.encode_numeric(np.stack([values[d.label][active] for d in g.numeric], axis=1))
        codes = np.stack([c.encode(values[c.label][active]) for c in g.categorical], axis=1) \
            if g.categorical else np.zeros((int(active.sum()), 0), dtype=np.intp)
        np.testing.assert_allclose(group_features(g, un, codes), full[active, start:stop])
    assert column_span(groups, groups[-1])[1] == full.shape[1]


def test_refinement_beats_plain_density_ratio_on_a_quadratic() -> None:
    seeds = range(10)
    refined = [_minimise(TPESampler(), s, 40) for s in seeds]
    plain = [_minimise(TPESampler(refine_candidates=0), s, 40) for s in seeds]
    assert np.median(refined) < 0.7 * np.median(plain)


def test_refinement_works_on_conditional_spaces() -> None:
    space = compile_space({"m": hp.choice("m", [
        {"kind": "a", "x": hp.uniform("xa", -1, 1)},
        {"kind": "b", "x": hp.uniform("xb", -1, 1), "y": hp.uniform("yb", -1, 1)},
    ])})

    def loss(p: dict[str, Any]) -> float:
        return (p["xa"] - 0.5) ** 2 + 0.3 if p["m"] == 0 else (p["xb"] + 0.2) ** 2 + p["yb"] ** 2

    h = _random_history(space, 40, loss, seed=2)
    for n in (1, 4):
        for p in TPESampler().suggest(space, h, n, np.random.default_rng(n)):
            assert set(p) == set(space.active_labels(p))
            space.check_assignment(p)


def test_many_pending_trials_turn_refinement_off() -> None:
    h = _random_history(SPACE_2D, 48, _quad, seed=4, pending=8)
    on = TPESampler(parallel_refine_candidates=16, refine_max_pending=8)
    off = TPESampler(parallel_refine_candidates=0, refine_max_pending=8)
    a = on.suggest(SPACE_2D, h, 2, np.random.default_rng(3))
    b = off.suggest(SPACE_2D, h, 2, np.random.default_rng(3))
    assert a == b
    # With room for more pending trials the surrogate does change the choice.
    few = _random_history(SPACE_2D, 48, _quad, seed=4, pending=1)
    picks = [TPESampler(parallel_refine_candidates=r).suggest(SPACE_2D, few, 2,
                                                             np.random.default_rng(s))
             for s in range(5) for r in (0, 16)]
    assert picks[0::2] != picks[1::2]


def test_candidates_near_a_pending_point_are_pushed_out_to_the_radius() -> None:
    s = TPESampler(min_distance=0.05)
    # One pending point at the centre (u = 0.5, 0.5) and three candidates near or on it.
    work = Work({"x": np.array([0.0]), "y": np.array([0.0])}, np.array([np.nan]),
                np.array([True]))
    cn = np.array([[0.51, 0.5], [0.5, 0.5], [0.9, 0.9]])
    pick = _pick(s, work)
    assert pick.active.tolist() == [True]
    near = np.array([True, True, False])
    out = push_out(pick, cn, near)
    dist = np.sqrt(((out - 0.5) ** 2).sum(axis=1) / 2)
    assert (dist[:2] >= 0.05).all() and (dist[:2] < 0.06).all()
    assert out[0, 0] > 0.5 and out[0, 1] == pytest.approx(0.5)  # same direction, further out
    np.testing.assert_array_equal(out[2], cn[2])  # far candidates untouched
    assert not near_pending(pick, out, np.zeros((3, 0), np.intp)).any()


@pytest.mark.parametrize(("setting", "value"), [
    ("refine_candidates", -1), ("parallel_refine_candidates", 1.5), ("refine_max_pending", -2),
    ("parallel_polish", -1), ("polish_candidates", 0), ("polish_scale", 0.0),
    ("parallel_thompson", 1),
])
def test_bad_refine_settings_name_the_value(setting: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"{setting}={value!r}"):
        TPESampler(**{setting: value})


@pytest.mark.parametrize("space_spec", ["categorical", "normal", "constant", "duplicates"])
def test_refinement_handles_awkward_histories(space_spec: str) -> None:
    if space_spec == "categorical":
        space = compile_space({"a": hp.choice("a", list(range(6))), "b": hp.randint("b", 4)})

        def loss(p: dict[str, Any]) -> float:
            return float(abs(p["a"] - 2) + abs(p["b"] - 1))
    else:
        space = compile_space({"n": hp.normal("n", 0, 2), "ln": hp.lognormal("ln", 0, 1),
                               "q": hp.qnormal("q", 5, 3, 1)})

        def loss(p: dict[str, Any]) -> float:
            if space_spec == "constant":
                return 1.0
            return float((p["n"] - 1) ** 2 + abs(np.log(p["ln"])) + abs(p["q"] - 4))
    pts = RandomSampler().suggest(space, History.empty(space), 30, np.random.default_rng(0))
    if space_spec == "duplicates":
        pts = pts[:5] * 6  # the same five points, six times each
    h = History.from_rows(space, [(p, loss(p), False) for p in pts])
    for n in (1, 3):
        out = TPESampler().suggest(space, h, n, np.random.default_rng(n))
        assert len(out) == n
        for p in out:
            space.check_assignment(p)
            assert all(np.isfinite(float(v)) for v in p.values())


# -- batches: polishing their first points, posterior draws for the rest -----------------------


def _spy_polish(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = sampler_mod.polish

    def spy(settings: Any, pick: Pick, *args: Any) -> Any:
        calls.append(pick.rows)
        return real(settings, pick, *args)

    monkeypatch.setattr(sampler_mod, "polish", spy)
    return calls


def test_only_the_first_points_of_a_batch_are_polished(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    # Without local steps, which take the first points of a batch when they can
    # (test_local.py), and polishing otherwise.
    calls = _spy_polish(monkeypatch)
    h = _random_history(SPACE_2D, 30, _quad, seed=2)
    TPESampler(local_every=0).suggest(SPACE_2D, h, 8, np.random.default_rng(0))
    assert calls == [30, 31]  # rows before the first and the second point of the batch
    calls.clear()
    TPESampler(parallel_polish=5, local_every=0).suggest(SPACE_2D, h, 8,
                                                         np.random.default_rng(0))
    assert calls == [30, 31, 32, 33, 34]
    calls.clear()
    TPESampler(local_every=0).suggest(SPACE_2D, h, 1, np.random.default_rng(0))  # never
    TPESampler(parallel_polish=0).suggest(SPACE_2D, h, 8, np.random.default_rng(0))
    assert calls == []
    # With them: the batch's first point is a local step (the quadratic fits), the second
    # one polished; unless the step is short, and probes around it come next (test_local.py).
    TPESampler(parallel_probes=0).suggest(SPACE_2D, h, 8, np.random.default_rng(0))
    assert calls == [31]
    calls.clear()
    TPESampler().suggest(SPACE_2D, h, 8, np.random.default_rng(0))
    assert calls == []


def test_polishing_moves_a_batch_point_towards_the_predicted_optimum() -> None:
    # With a model that knows the optimum, the polished point lands nearer to it than the
    # candidate it started from, and no nearer to the pending point than min_distance.
    s = TPESampler(polish_candidates=64, polish_scale=2.0)
    (g,) = build_groups(SPACE_2D, True)
    work = Work({"x": np.array([0.9]), "y": np.array([0.9])}, np.array([np.nan]),
                np.array([True]))
    target = np.array([0.62, 0.41])
    model = _FakeModel(lambda q: ((q - target) ** 2).sum(axis=1))
    ranker = Ranker(model, 5, [g], list(SPACE_2D.labels))  # type: ignore[arg-type]
    x0 = np.array([0.5, 0.5])
    pick = _pick(s, work, seed=3)
    out = polish(s.settings.polish, pick, ranker,
                 _cands(x0[None, :], np.zeros((1, 0), np.intp), np.zeros(1)),
                 np.array([0.05, 0.05]))
    cn, cc, raw = out.u, out.codes, out.raw
    assert np.linalg.norm(cn[0] - target) < 0.5 * np.linalg.norm(x0 - target)
    np.testing.assert_allclose(raw[0], cn[0] * 2 - 1)  # u in [0, 1] -> x in [-1, 1]
    assert not near_pending(pick, cn, cc).any()


def test_polishing_never_returns_a_point_next_to_a_pending_one() -> None:
    s = TPESampler(polish_candidates=64, polish_scale=1.0, min_distance=0.05)
    (g,) = build_groups(SPACE_2D, True)
    # The model's optimum sits on the pending point: the polish must stop short of it.
    work = Work({"x": np.array([0.0]), "y": np.array([0.0])}, np.array([np.nan]),
                np.array([True]))
    model = _FakeModel(lambda q: ((q - 0.5) ** 2).sum(axis=1))
    ranker = Ranker(model, 5, [g], list(SPACE_2D.labels))  # type: ignore[arg-type]
    pick = _pick(s, work)
    out = polish(s.settings.polish, pick, ranker,
                 _cands(np.array([[0.6, 0.6]]), np.zeros((1, 0), np.intp), np.zeros(1)),
                 np.array([0.1, 0.1]))
    cn, cc = out.u, out.codes
    assert not near_pending(pick, cn, cc).any()
    assert np.linalg.norm(cn[0] - 0.5) < np.linalg.norm(np.array([0.6, 0.6]) - 0.5)


def _spy_draws(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = Surrogate.sample

    def spy(self: Surrogate, q: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        calls.append(q.shape[0])
        return real(self, q, rng)

    monkeypatch.setattr(Surrogate, "sample", spy)
    return calls


def test_batch_points_past_the_polished_ones_are_ranked_by_posterior_draws(
        monkeypatch: pytest.MonkeyPatch) -> None:
    draws = _spy_draws(monkeypatch)
    h = _random_history(SPACE_2D, 30, _quad, seed=2)
    TPESampler().suggest(SPACE_2D, h, 8, np.random.default_rng(0))
    assert len(draws) == 6  # points 3..8; the first two are polished on the mean
    draws.clear()
    TPESampler().suggest(SPACE_2D, h, 1, np.random.default_rng(0))  # sequential: never
    TPESampler(parallel_thompson=False).suggest(SPACE_2D, h, 8, np.random.default_rng(0))
    assert draws == []
    running = _random_history(SPACE_2D, 37, _quad, seed=2, pending=7)
    TPESampler().suggest(SPACE_2D, running, 1, np.random.default_rng(0))
    assert len(draws) == 1  # the eighth point of a worker pool's batch


def _two_category_model() -> tuple[Ranker, Any, np.ndarray, np.ndarray]:
    # Category 0 was tried 40 times, losses (x - 0.4)^2 + 0.05; category 1 once, at a poor x.
    groups = build_groups(MIXED, True)
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(0, 1, 40), [0.95]])
    c = np.concatenate([np.zeros(40), [1.0]])
    y = (x - 0.4) ** 2 + 0.05
    model = Surrogate(features(groups, {"x": x, "c": c}, np.arange(41)), y)
    ranker = Ranker(model, 16, groups, list(MIXED.labels))
    # Candidates: category 0 near its optimum, category 1 at the same x values.
    cn = np.tile(np.linspace(0.35, 0.45, 8), 2)[:, None]
    cc = np.repeat([0, 1], 8)[:, None].astype(np.intp)
    return ranker, groups[0], cn, cc


def test_a_posterior_draw_explores_a_barely_tried_category() -> None:
    ranker, g, cn, cc = _two_category_model()
    score = np.linspace(1.0, 0.0, 16)  # l / g prefers category 0's candidates
    by_mean = ranker.pick(g, _cands(cn, cc, score), 0, {})
    assert cc[by_mean, 0] == 0
    rng = np.random.default_rng(1)
    picks = [ranker.pick(g, _cands(cn, cc, score), 0, {}, rng=rng) for _ in range(200)]
    other = float(np.mean(cc[picks, 0] == 1))
    # One poor observation leaves category 1 near the prior: some draws favour it, most not.
    assert 0.02 < other < 0.6


def test_posterior_draws_centre_on_the_mean_and_shrink_near_data() -> None:
    ranker, _, _, _ = _two_category_model()
    model = ranker.model
    assert isinstance(model, Surrogate)
    groups = build_groups(MIXED, True)
    # Category 0 near many observations, category 1 at its one observation, category 2.
    q = features(groups, {"x": np.array([0.4, 0.95, 0.4]), "c": np.array([0.0, 1.0, 2.0])},
                 np.arange(3))
    rng = np.random.default_rng(2)
    draws = np.stack([model.sample(q, rng) for _ in range(4000)])
    np.testing.assert_allclose(draws.mean(axis=0), model.score(q), atol=0.05)
    sd = draws.std(axis=0)
    # Many observations < one (noisy) observation < none (the prior's standard deviation).
    assert sd[0] < sd[1] < 0.5
    assert sd[0] < 0.15
    assert sd[2] == pytest.approx(1.0, abs=0.05)
    # One joint draw: the same point twice gets the same value, up to the 1e-3 jitter (two
    # independent draws would differ by about sd[0] * sqrt(2)).
    twice = np.stack([model.sample(np.repeat(q[:1], 2, axis=0), rng) for _ in range(50)])
    assert np.abs(twice[:, 0] - twice[:, 1]).max() < 0.01


def test_a_worker_pool_asking_one_point_at_a_time_is_not_polished_every_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Seven trials running, one point asked for: as the eighth point of a batch, not the first.
    calls = _spy_polish(monkeypatch)
    h = _random_history(SPACE_2D, 37, _quad, seed=2, pending=7)
    TPESampler(local_every=0).suggest(SPACE_2D, h, 1, np.random.default_rng(0))
    assert calls == []
    one_running = _random_history(SPACE_2D, 31, _quad, seed=2, pending=1)
    TPESampler(local_every=0).suggest(SPACE_2D, one_running, 1, np.random.default_rng(0))
    assert calls == [31]
