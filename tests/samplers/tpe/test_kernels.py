"""The density estimators against a direct, kernel-by-kernel computation, and the encoded rows
kept between suggestions against encoding afresh."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy.stats import truncnorm

from parzen import hp
from parzen.samplers._history import History, HistoryBuilder
from parzen.samplers.rand import RandomSampler
from parzen.samplers.tpe import TPESampler
from parzen.samplers.tpe import _state as state_mod
from parzen.samplers.tpe._encode import Group, build_groups, encode_group
from parzen.samplers.tpe._parzen import Bandwidth, ParzenEstimator, fit
from parzen.samplers.tpe._scratch import Scratch
from parzen.samplers.tpe._state import TPEState, state_of
from parzen.samplers.tpe._surrogate import design_features, features
from parzen.space import Space, compile_space

MIXED = compile_space({
    "u": hp.uniform("u", -2, 3),
    "lr": hp.loguniform("lr", -7, 0),
    "n": hp.quniform("n", 10, 200, 10),
    "z": hp.normal("z", 1.0, 2.0),
    "act": hp.choice("act", ["a", "b", "c"]),
    "one": hp.choice("one", ["only"]),
    "k": hp.randint("k", 4),
})

COND = compile_space({
    "m": hp.choice("m", [
        {"x": hp.uniform("x", 0, 1)},
        {"y": hp.loguniform("y", -3, 0), "c": hp.choice("c", [0, 1, 2, 3])},
    ]),
})


def _builder(space: Space, n: int, seed: int = 0) -> HistoryBuilder:
    b = HistoryBuilder(space, capacity=8)
    pts = RandomSampler().suggest(space, b.view(), n, np.random.default_rng(seed))
    for i, p in enumerate(pts):
        b.set_row(i, p, float(i % 7), False)
    return b


def _direct_logpdf(est: ParzenEstimator, xn: np.ndarray, xc: np.ndarray) -> np.ndarray:
    """The mixture density, one kernel and one dimension at a time."""
    g = est.group
    out = np.empty(xn.shape[0] if xn.shape[1] else xc.shape[0])
    for p in range(out.shape[0]):
        prior = 1.0
        for j, d in enumerate(g.numeric):
            prior *= np.exp(d.prior_logpdf(np.array([xn[p, j]]))[0])
        for j, c in enumerate(g.categorical):
            prior *= c.prior[xc[p, j]]
        total = est.weights[-1] * prior
        for k in range(est.m):
            dens = 1.0
            for j in range(len(g.numeric)):
                mu, w = est.mu[k, j], est.width[j]
                a, b = (est.lo[j] - mu) / w, (est.hi[j] - mu) / w
                dens *= truncnorm.pdf(xn[p, j], a, b, loc=mu, scale=w)
            for j, c in enumerate(g.categorical):
                if c.k == 1:
                    continue
                same = xc[p, j] == est.codes[k, j]
                dens *= (1.0 - est.eps[j]) if same else est.eps[j] / (c.k - 1)
            total += est.weights[k] * dens
        out[p] = np.log(total)
    return out


@pytest.mark.parametrize("m", [0, 1, 7, 40])
@pytest.mark.parametrize("factor", [0.2, 3.0])
def test_logpdf_matches_the_mixture_kernel_by_kernel(m: int, factor: float) -> None:
    # factor 3 makes kernels wider than a twelfth of the range: both tails truncated.
    (g,) = build_groups(MIXED, True)
    b = _builder(MIXED, max(m, 1), seed=m)
    xd, xc = encode_group(g, b.view().values, slice(0, m))
    w = np.random.default_rng(1).uniform(0.2, 2.0, size=m)
    est = fit(g, xd, xc, w, 1.0, Bandwidth(factor=factor))
    cand = RandomSampler().suggest(MIXED, b.view(), 30, np.random.default_rng(5))
    cb = HistoryBuilder(MIXED)
    for i, p in enumerate(cand):
        cb.set_row(i, p, None, False)
    cd, cc = encode_group(g, cb.view().values, slice(0, 30))
    cn = cd[:, :len(g.numeric)]
    np.testing.assert_allclose(est.logpdf(cn, cc), _direct_logpdf(est, cn, cc),
                               rtol=1e-6, atol=1e-6)


def test_weighted_spread_from_the_design_matches_numpy() -> None:
    (g,) = build_groups(MIXED, True)
    b = _builder(MIXED, 50)
    xd, xc = encode_group(g, b.view().values, slice(0, 50))
    w = np.random.default_rng(2).uniform(0.1, 1.0, size=50)
    est = fit(g, xd, xc, w, 1.0, Bandwidth(min_width=1e-6))
    u = xd[:, :len(g.numeric)]
    wd = w / w.sum()
    std = np.sqrt(np.average((u - np.average(u, axis=0, weights=wd)) ** 2, axis=0,
                             weights=wd))
    a = 50 / (50 + Bandwidth().shrink_count)
    shrink = 50 ** (-1.0 / (g.dim + 4))
    expected = np.maximum(Bandwidth().factor * (a * std + (1 - a)) * shrink, g.q_floor)
    np.testing.assert_allclose(est.width, np.minimum(expected, 1.0), rtol=1e-9)


def _spy_encodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    seen: list[int] = []
    real = state_mod.encode_group

    def spy(group: Group, values: Any, rows: Any) -> Any:
        out = real(group, values, rows)
        seen.append(out[0].shape[0])
        return out

    monkeypatch.setattr(state_mod, "encode_group", spy)
    return seen


def _kept_rows(space: Space, b: HistoryBuilder, g: Group, n: int) -> tuple[Any, Any]:
    h = b.view()
    return state_of(h).layout(space, True).rows(g, h.values, n)


@pytest.mark.parametrize("space", [MIXED, COND], ids=["mixed", "conditional"])
def test_kept_rows_equal_fresh_encoding_and_only_new_rows_are_encoded(
        space: Space, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _spy_encodes(monkeypatch)
    b = _builder(space, 8)  # capacity 8: full, the next row regrows every buffer
    groups = state_of(b.view()).layout(space, True).groups
    for g in groups:
        xd, xc = _kept_rows(space, b, g, 8)
        fresh = encode_group(g, b.view().values, slice(0, 8))
        np.testing.assert_array_equal(xd, fresh[0])
        np.testing.assert_array_equal(xc, fresh[1])
    assert seen == [8] * len(groups)
    seen.clear()
    pts = RandomSampler().suggest(space, b.view(), 120, np.random.default_rng(9))
    for i, p in enumerate(pts):
        b.set_row(8 + i, p, 1.0, False)
        for g in groups:
            xd, xc = _kept_rows(space, b, g, 9 + i)
            fresh = encode_group(g, b.view().values, slice(0, 9 + i))
            np.testing.assert_array_equal(xd, fresh[0])
            np.testing.assert_array_equal(xc, fresh[1])
    # Only the new row each time, also when the builder's buffers regrow (rows 8, 16, 32,
    # 64) and when the kept encoding itself outgrows its room (past 64 and 128 rows).
    assert seen == [1] * (120 * len(groups))
    # An older, shorter view reads the same rows and encodes nothing.
    (g0, *_) = groups
    np.testing.assert_array_equal(_kept_rows(space, b, g0, 5)[0],
                                  encode_group(g0, b.view().values, slice(0, 5))[0])
    assert seen == [1] * (120 * len(groups))


def test_histories_built_by_hand_are_encoded_afresh_every_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _spy_encodes(monkeypatch)
    view = _builder(MIXED, 10).view()
    h = History({lab: np.array(v) for lab, v in view.values.items()}, np.array(view.losses),
                np.array(view.pending))
    assert h.memo is None and state_of(h) is not state_of(h)
    (g,) = build_groups(MIXED, True)
    first = state_of(h).layout(MIXED, True).rows(g, h.values, 10)
    h.values["u"][0] = 2.5  # a writable array may change: it must not be kept
    second = state_of(h).layout(MIXED, True).rows(g, h.values, 10)
    assert seen == [10, 10]
    assert first[0][0, 0] != second[0][0, 0]
    seen.clear()
    for _ in range(2):
        TPESampler().suggest(MIXED, h, 1, np.random.default_rng(0))
    assert seen == [10, 10]


def test_surrogate_features_from_the_design_equal_encoding_the_values() -> None:
    b = _builder(COND, 30, seed=4)
    groups = build_groups(COND, True)
    values = b.view().values
    rows = np.arange(3, 30, 2)
    designs = [encode_group(g, values, slice(0, 30))[0] for g in groups]
    np.testing.assert_allclose(design_features(groups, designs, values, rows),
                               features(groups, values, rows), rtol=0, atol=1e-15)


def test_suggestions_are_the_same_with_kept_rows_and_without() -> None:
    b = _builder(MIXED, 60, seed=3)
    s = TPESampler()
    kept = s.suggest(MIXED, b.view(), 4, np.random.default_rng(1))
    again = s.suggest(MIXED, b.view(), 4, np.random.default_rng(1))
    copied = s.suggest(MIXED, type(b.view())(
        {lab: np.array(v) for lab, v in b.view().values.items()},
        np.array(b.view().losses), np.array(b.view().pending)), 4, np.random.default_rng(1))
    assert kept == again == copied


def test_scratch_buffers_are_reused_per_name_and_thread() -> None:
    import threading

    scratch = Scratch()
    a = scratch.get("t1", (10, 4))
    b = scratch.get("t1", (8, 5))  # fits: the same memory
    assert np.shares_memory(a, b) and b.shape == (8, 5)
    assert not np.shares_memory(a, scratch.get("t2", (10, 4)))
    assert scratch.get("t1", (2, 3), np.float32).dtype == np.float32
    big = scratch.get("t1", (1000, 4))  # grows
    assert big.shape == (1000, 4)
    other: list[np.ndarray] = []
    t = threading.Thread(target=lambda: other.append(scratch.get("t1", (10, 4))))
    t.start()
    t.join()
    assert not np.shares_memory(other[0], scratch.get("t1", (10, 4)))
    # Another owner's buffers are its own.
    assert not np.shares_memory(Scratch().get("t1", (10, 4)), scratch.get("t1", (10, 4)))


def test_densities_do_not_depend_on_evaluation_order() -> None:
    # logpdf works in shared scratch buffers: one estimator's call must not leak into
    # another's result.
    (g,) = build_groups(MIXED, True)
    b = _builder(MIXED, 300, seed=7)
    xd, xc = encode_group(g, b.view().values, slice(0, 300))
    small = fit(g, xd[:20], xc[:20], np.ones(20), 1.0, Bandwidth())
    large = fit(g, xd[20:], xc[20:], np.ones(280), 1.0, Bandwidth())
    cd, cc = encode_group(g, b.view().values, slice(0, 24))
    cn = cd[:, :len(g.numeric)]
    first = small.logpdf(cn, cc)
    big = large.logpdf(cn, cc)
    np.testing.assert_array_equal(small.logpdf(cn, cc), first)
    np.testing.assert_array_equal(large.logpdf(cn, cc), big)
    np.testing.assert_allclose(big, _direct_logpdf(large, cn, cc), rtol=1e-6, atol=1e-6)


def test_reset_caches_drops_kept_rows_and_changes_no_result() -> None:
    from parzen.samplers import tpe

    b = _builder(MIXED, 80, seed=5)
    before = TPESampler().suggest(MIXED, b.view(), 1, np.random.default_rng(2))
    memo = b.view().memo
    assert memo is not None and len(memo) == 1
    kept = memo.slot(TPEState)
    tpe.reset_caches(b.view())
    assert len(memo) == 0
    assert TPESampler().suggest(MIXED, b.view(), 1, np.random.default_rng(2)) == before
    assert memo.slot(TPEState) is not kept
    hand = History({lab: np.array(v) for lab, v in b.view().values.items()},
                   np.array(b.view().losses), np.array(b.view().pending))
    tpe.reset_caches(hand)  # nothing kept, nothing to drop


def test_two_histories_share_no_state_and_views_of_one_do() -> None:
    one, two = _builder(MIXED, 40, seed=1), _builder(MIXED, 40, seed=1)
    a = TPESampler().suggest(MIXED, one.view(), 2, np.random.default_rng(3))
    memo = two.view().memo
    assert memo is not None and len(memo) == 0  # the first history's suggestion left none
    assert state_of(one.view()) is state_of(one.view())
    assert state_of(one.view()) is not state_of(two.view())
    # Equal rows, separate state: the same answer.
    assert TPESampler().suggest(MIXED, two.view(), 2, np.random.default_rng(3)) == a
    assert state_of(one.view()).scratch is not state_of(two.view()).scratch


def test_no_module_of_the_tpe_keeps_mutable_state() -> None:
    # What is kept between suggestions lives in the history's memo (_state.py), never at
    # module level, where it would outlive the history and be shared between histories.
    import importlib
    import pkgutil
    import threading

    from parzen.samplers import tpe

    mutable = (dict, list, set, bytearray, np.ndarray, threading.local)
    for info in pkgutil.iter_modules(tpe.__path__):
        mod = importlib.import_module(f"{tpe.__name__}.{info.name}")
        for name, value in vars(mod).items():
            if name.startswith("__") or isinstance(value, type):
                continue
            assert not isinstance(value, mutable), f"{mod.__name__}.{name}"
