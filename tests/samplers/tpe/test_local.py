"""Local steps: the quadratic fit around the incumbent, and when the sampler takes one."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from parzen import hp
from parzen.exceptions import ConfigError
from parzen.samplers._history import History, HistoryBuilder
from parzen.samplers.rand import RandomSampler
from parzen.samplers.tpe import TPESampler
from parzen.samplers.tpe import _local as local_mod
from parzen.samplers.tpe import _sampler as sampler_mod
from parzen.samplers.tpe._probes import PROBE_REACH, probe_directions
from parzen.samplers.tpe._quadratic import quadratic_step
from parzen.space import compile_space

LO, HI = np.zeros(2), np.ones(2)
SPACE_2D = compile_space({"x": hp.uniform("x", -1, 1), "y": hp.uniform("y", -1, 1)})
OPT = np.array([0.3, -0.2])  # _bowl's minimum, in raw values


def _bowl(p: dict[str, Any]) -> float:
    return float(3.0 * (p["x"] - OPT[0]) ** 2 + (p["y"] - OPT[1]) ** 2)


def _history(space: Any, loss: Any, n: int, seed: int = 0, pending: int = 0,
             extra: list[dict[str, Any]] | None = None) -> History:
    pts = RandomSampler().suggest(space, History.empty(space), n, np.random.default_rng(seed))
    pts += extra or []
    k = len(pts)
    rows = [(p, None if i >= k - pending else loss(p), i >= k - pending)
            for i, p in enumerate(pts)]
    return History.from_rows(space, rows)


def _at_opt(p: dict[str, Any], tol: float = 1e-6) -> bool:
    return bool(np.hypot(p["x"] - OPT[0], p["y"] - OPT[1]) < tol)


# -- the fit ------------------------------------------------------------------------------------


def test_a_separable_quadratic_is_minimised_in_one_step() -> None:
    rng = np.random.default_rng(0)
    u = rng.uniform(size=(12, 2))  # 12 < 3 * 12: the separable fit (10 nearest points)
    y = 3.0 * (u[:, 0] - 0.4) ** 2 + 2.0 * (u[:, 1] - 0.6) ** 2 + 1.0
    got = quadratic_step(u, y, LO, HI)
    assert got is not None
    np.testing.assert_allclose(got[0], [0.4, 0.6], atol=1e-9)


def test_a_rotated_quadratic_needs_the_full_fit_and_gets_it_with_enough_trials() -> None:
    rng = np.random.default_rng(1)

    def f(u: np.ndarray) -> np.ndarray:
        d = u - np.array([0.55, 0.45])
        return np.asarray(2 * d[:, 0] ** 2 + 2 * d[:, 1] ** 2 + 3 * d[:, 0] * d[:, 1])

    few, many = rng.uniform(size=(20, 2)), rng.uniform(size=(40, 2))
    sep, full = quadratic_step(few, f(few), LO, HI), quadratic_step(many, f(many), LO, HI)
    assert sep is not None and full is not None
    np.testing.assert_allclose(full[0], [0.55, 0.45], atol=1e-9)  # 40 >= 3 * 12 trials
    assert np.linalg.norm(sep[0] - [0.55, 0.45]) > 1e-3  # no cross term: not exact


@pytest.mark.parametrize("sign", [-1.0, 0.0])
def test_no_step_without_a_minimum(sign: float) -> None:
    rng = np.random.default_rng(2)
    u = rng.uniform(size=(40, 2))
    y = (u[:, 0] - 0.5) ** 2 + sign * (u[:, 1] - 0.5) ** 2  # a saddle, or flat along y
    assert quadratic_step(u, y, LO, HI) is None
    assert quadratic_step(u[:, :1], -(u[:, 0] - 0.5) ** 2, LO[:1], HI[:1]) is None


def test_no_step_from_too_few_or_coinciding_trials_or_a_plateau() -> None:
    u = np.random.default_rng(3).uniform(size=(9, 2))
    assert quadratic_step(u, u.sum(axis=1) ** 2, LO, HI) is None  # 9 < 2 * 5
    same = np.full((12, 2), 0.5)
    assert quadratic_step(same, np.arange(12.0), LO, HI) is None
    plateau = np.random.default_rng(5).uniform(size=(40, 2))
    assert quadratic_step(plateau, np.full(40, 0.3), LO, HI) is None
    assert quadratic_step(np.zeros((12, 0)), np.arange(12.0), LO[:0], HI[:0]) is None


def test_the_step_stays_in_the_fitted_neighbourhood_and_the_bounds() -> None:
    rng = np.random.default_rng(4)
    u = 0.1 + 0.05 * rng.uniform(size=(10, 2))  # all trials near (0.125, 0.125)
    y = ((u - 0.9) ** 2).sum(axis=1)  # the minimum is far outside them
    got = quadratic_step(u, y, LO, HI)
    assert got is not None
    point, radius = got
    best = u[np.argmin(y)]
    assert np.linalg.norm(point - best) <= radius * (1 + 1e-9)
    assert np.linalg.norm(point - 0.9) < np.linalg.norm(best - 0.9)  # towards it
    edge = quadratic_step(u, ((u - 1.5) ** 2).sum(axis=1), LO, np.full(2, 0.13))
    assert edge is not None and np.all(edge[0] <= 0.13)


# -- when the sampler takes one ------------------------------------------------------------------


def test_sequentially_one_suggestion_in_local_every_is_a_local_step() -> None:
    # The bowl is a separable quadratic: a local step lands on its minimum exactly; a TPE
    # draw does not.
    for n, expect in ((30, True), (31, False), (32, True)):
        h = _history(SPACE_2D, _bowl, n)
        (p,) = TPESampler().suggest(SPACE_2D, h, 1, np.random.default_rng(0))
        assert _at_opt(p) is expect, n
    h = _history(SPACE_2D, _bowl, 30)
    (p,) = TPESampler(local_every=3).suggest(SPACE_2D, h, 1, np.random.default_rng(0))
    assert _at_opt(p)  # 30 % 3 == 0
    for s in (TPESampler(local_every=0), TPESampler(local_every=4)):
        (p,) = s.suggest(SPACE_2D, h, 1, np.random.default_rng(0))
        assert not _at_opt(p)


def test_a_batch_starts_with_local_points_none_of_them_a_duplicate() -> None:
    h = _history(SPACE_2D, _bowl, 40)
    batch = TPESampler().suggest(SPACE_2D, h, 8, np.random.default_rng(0))
    assert _at_opt(batch[0])
    assert sum(_at_opt(p) for p in batch) == 1
    u = np.array([[p["x"], p["y"]] for p in batch])
    gaps = np.linalg.norm(u[:, None] - u[None], axis=2)[np.triu_indices(8, 1)]
    assert gaps.min() > 0.01 * 2  # min_distance, in raw units (the range is 2)
    none = TPESampler(parallel_local=0).suggest(SPACE_2D, h, 8, np.random.default_rng(0))
    assert not any(_at_opt(p) for p in none)


def test_a_worker_pool_gets_a_new_local_step_only_when_none_is_running() -> None:
    s = TPESampler()
    idle = _history(SPACE_2D, _bowl, 41, pending=1)  # one random trial running
    (p,) = s.suggest(SPACE_2D, idle, 1, np.random.default_rng(0))
    assert _at_opt(p)
    # A pending trial next to the minimum (a local step still running, give or take its
    # rounding): the minimum is being evaluated already, so the next point is another.
    busy = _history(SPACE_2D, _bowl, 40, pending=1,
                    extra=[{"x": OPT[0] + 0.004, "y": OPT[1]}])
    (q,) = s.suggest(SPACE_2D, busy, 1, np.random.default_rng(0))
    assert not _at_opt(q)
    # Only while it runs: the same trial completed, the minimum is proposed again.
    pts = RandomSampler().suggest(SPACE_2D, History.empty(SPACE_2D), 41,
                                  np.random.default_rng(0))
    done = [{"x": OPT[0] + 0.004, "y": OPT[1]}, *pts[:40]]
    back = History.from_rows(SPACE_2D, [*[(p, _bowl(p), False) for p in done],
                                        (pts[40], None, True)])
    (q,) = s.suggest(SPACE_2D, back, 1, np.random.default_rng(0))
    assert _at_opt(q)


def test_a_local_step_never_repeats_a_trial() -> None:
    # The minimum was tried already: the local step would be that trial again, so TPE
    # chooses instead (a quantised parameter snapping back, or converged steps, do the same).
    h = _history(SPACE_2D, _bowl, 29, extra=[{"x": OPT[0], "y": OPT[1]}])
    (p,) = TPESampler().suggest(SPACE_2D, h, 1, np.random.default_rng(0))  # 30 rows: local
    assert not _at_opt(p, tol=1e-4)
    near = _history(SPACE_2D, _bowl, 29, extra=[{"x": OPT[0] + 0.01, "y": OPT[1]}])
    (p,) = TPESampler().suggest(SPACE_2D, near, 1, np.random.default_rng(0))
    assert _at_opt(p)  # a trial close by is no obstacle


def test_the_local_step_fits_the_trials_of_the_chosen_category_only() -> None:
    space = compile_space({"x": hp.uniform("x", 0, 1), "c": hp.choice("c", ["a", "b"])})
    centre = {0: 0.25, 1: 0.75}

    def loss(p: dict[str, Any]) -> float:
        return float(4 * (p["x"] - centre[p["c"]]) ** 2 + 0.5 * p["c"])

    h = _history(space, loss, 40, seed=5)
    points = [TPESampler().suggest(space, h, 1, np.random.default_rng(s))[0] for s in range(6)]
    for p in points:
        assert abs(p["x"] - centre[p["c"]]) < 1e-6


def test_a_focused_fit_is_the_core_s_when_the_neighbourhood_has_one() -> None:
    # A cubic term biases a quadratic fitted over a wide neighbourhood; with a core of trials
    # around the minimum (probes), the focused fit is made there and lands much closer.
    rng = np.random.default_rng(6)
    wide = 0.5 + 0.25 * (rng.uniform(size=(30, 2)) - 0.5)
    core = 0.5 + 0.004 * (rng.uniform(size=(8, 2)) - 0.5)  # 8 of the full fit's 12 points
    u = np.concatenate([wide, core])

    def f(v: np.ndarray) -> np.ndarray:
        d = v - 0.5
        return np.asarray((d ** 2).sum(axis=1) + 4.0 * d[:, 0] ** 3)

    plain = quadratic_step(u, f(u), LO, HI, focus=False)
    focused = quadratic_step(u, f(u), LO, HI)
    assert plain is not None and focused is not None
    err_plain = np.linalg.norm(plain[0] - 0.5)
    err_focused = np.linalg.norm(focused[0] - 0.5)
    assert err_focused < err_plain / 10
    # No core (the trials spread evenly): focus changes nothing.
    even = 0.5 + 0.25 * (rng.uniform(size=(60, 2)) - 0.5)
    spread = quadratic_step(even, f(even), LO, HI)
    same = quadratic_step(even, f(even), LO, HI, focus=False)
    assert spread is not None and same is not None
    np.testing.assert_array_equal(spread[0], same[0])


def test_probe_directions_are_the_axes_then_the_diagonals_up_to_three_dimensions() -> None:
    rng = np.random.default_rng(0)
    two, six = probe_directions(2, rng), probe_directions(6, rng)
    assert two.shape == (8, 2) and six.shape == (12, 6)
    for dirs in (two, six):
        assert set(np.abs(dirs).ravel()) == {0.0, 1.0}
        assert len({tuple(v) for v in dirs}) == dirs.shape[0]
    assert (np.count_nonzero(two[:4], axis=1) == 1).all()  # the axes come first
    assert (np.count_nonzero(two[4:], axis=1) == 2).all()  # then the square's corners
    # Every two offsets are at least one reach apart: probes are never near-duplicates.
    gaps = np.linalg.norm(two[:, None] - two[None], axis=2)[np.triu_indices(8, 1)]
    assert gaps.min() >= 1.0


def _converged_history(pending: int = 0) -> History:
    # Trials spread over the bowl plus a cloud close to its minimum: the step is short.
    rng = np.random.default_rng(7)
    cloud = [{"x": OPT[0] + 0.05 * a, "y": OPT[1] + 0.05 * b}
             for a, b in rng.uniform(-1, 1, size=(12, 2))]
    return _history(SPACE_2D, _bowl, 40, extra=cloud, pending=pending)


def _raw_u(p: dict[str, Any]) -> np.ndarray:
    return (np.array([p["x"], p["y"]]) + 1.0) / 2.0  # the unit encoding of [-1, 1]


def test_a_converging_batch_probes_around_its_step() -> None:
    h = _converged_history()
    batch = TPESampler().suggest(SPACE_2D, h, 8, np.random.default_rng(0))
    assert _at_opt(batch[0])
    reach = PROBE_REACH * 0.01 * np.sqrt(2)  # min_distance * sqrt(dim), in the unit encoding
    dist = np.array([np.linalg.norm(_raw_u(p) - _raw_u(batch[0])) for p in batch[1:]])
    # Seven probes: the four axes at the reach, three corners of the square at sqrt(2) of it.
    np.testing.assert_allclose(np.sort(dist), reach * np.array([1] * 4 + [np.sqrt(2)] * 3),
                               rtol=1e-9)
    u = np.array([_raw_u(p) for p in batch])
    gaps = np.linalg.norm(u[:, None] - u[None], axis=2)[np.triu_indices(8, 1)]
    assert gaps.min() >= 0.01 * np.sqrt(2)  # still no near-duplicates
    three = TPESampler(parallel_probes=3).suggest(SPACE_2D, h, 8, np.random.default_rng(0))
    dist = np.array([np.linalg.norm(_raw_u(p) - _raw_u(three[0])) for p in three[1:]])
    assert np.isclose(dist, reach).sum() == 3 and not np.isclose(dist, reach * np.sqrt(2)).any()
    off = TPESampler(parallel_probes=0).suggest(SPACE_2D, h, 8, np.random.default_rng(0))
    dist = np.array([np.linalg.norm(_raw_u(p) - _raw_u(off[0])) for p in off[1:]])
    assert not np.isclose(dist, reach).any()


def test_a_pool_takes_a_new_step_once_results_move_the_minimum_off_the_running_one() -> None:
    # A worker pool: an earlier step still runs, 1.5 duplicate distances from where the
    # results now put the minimum, well within a quarter of the neighbourhood's radius. The
    # step is short, so only a near-duplicate blocks it: a new step, not a probe around the
    # running one (which a pool would otherwise go on doing until that one came back).
    rng = np.random.default_rng(9)
    cloud = [{"x": OPT[0] + 0.03 * a, "y": OPT[1] + 0.03 * b}
             for a, b in rng.uniform(-1, 1, size=(5, 2))]
    running = {"x": OPT[0] + 2 * 1.5 * 0.01 * np.sqrt(2), "y": OPT[1]}  # raw = 2 x unit
    h = _history(SPACE_2D, _bowl, 40, extra=[*cloud, running], pending=1)
    (p,) = TPESampler().suggest(SPACE_2D, h, 1, np.random.default_rng(0))
    assert _at_opt(p)
    # The running trial closer than the duplicate distance: it is the step; probe around it.
    near = {"x": OPT[0] + 2 * 0.5 * 0.01 * np.sqrt(2), "y": OPT[1]}
    h = _history(SPACE_2D, _bowl, 40, extra=[*cloud, near], pending=1)
    (q,) = TPESampler().suggest(SPACE_2D, h, 1, np.random.default_rng(0))
    reach = PROBE_REACH * 0.01 * np.sqrt(2)
    assert np.isclose(np.linalg.norm(_raw_u(q) - _raw_u(near)), reach) or np.isclose(
        np.linalg.norm(_raw_u(q) - _raw_u(near)), reach * np.sqrt(2))


def test_a_batch_far_from_the_minimum_does_not_probe() -> None:
    # All trials in a corner, the minimum far outside them: the step is as long as the
    # neighbourhood allows, and the batch's other points stay with the TPE.
    rng = np.random.default_rng(8)
    corner = [{"x": -0.9 + 0.2 * a, "y": -0.9 + 0.2 * b} for a, b in rng.uniform(size=(40, 2))]
    h = History.from_rows(SPACE_2D, [(p, _bowl(p), False) for p in corner])
    batch = TPESampler().suggest(SPACE_2D, h, 8, np.random.default_rng(0))
    reach = PROBE_REACH * 0.01 * np.sqrt(2)
    dist = np.array([np.linalg.norm(_raw_u(p) - _raw_u(batch[0])) for p in batch[1:]])
    assert not np.isclose(dist, reach).any()


@pytest.mark.parametrize("name,value", [("local_every", -1), ("parallel_local", 5),
                                        ("parallel_local", 1.5), ("parallel_probes", -1)])
def test_bad_local_settings_name_the_value(name: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=f"{name}={value!r}"):
        TPESampler(**{name: value})


def test_a_worker_pool_takes_local_steps_now_and_then_not_every_time(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Eight trials always running, results back one at a time, one point asked for each, on
    # a curved valley (on a quadratic one step would end it: the next ones repeat a trial).
    def valley(p: dict[str, Any]) -> float:
        return float(5 * (p["y"] - p["x"] ** 2) ** 2 + (p["x"] - 0.3) ** 2)

    taken: list[bool] = []
    probes: list[bool] = []
    real, real_probe = sampler_mod.local_step, local_mod.probe

    def spy(*args: Any) -> Any:
        out = real(*args)
        taken.append(out is not None)
        return out

    def spy_probe(*args: Any) -> Any:
        out = real_probe(*args)
        probes.append(out is not None)
        return out

    monkeypatch.setattr(sampler_mod, "local_step", spy)
    monkeypatch.setattr(local_mod, "probe", spy_probe)
    sampler, b, rng = TPESampler(), HistoryBuilder(SPACE_2D), np.random.default_rng(0)
    running: list[tuple[int, dict[str, Any]]] = []
    for tid in range(80):
        if len(running) == 8:
            done, p = running.pop(0)
            b.set_row(done, p, valley(p), False)
        (p,) = sampler.suggest(SPACE_2D, b.view(), 1, rng)
        b.set_row(tid, p, None, True)
        running.append((tid, p))
    assert len(taken) > 50  # the model ranks from the third completed trial on
    steps = sum(taken) - sum(probes)
    assert 3 <= steps <= len(taken) // 3
    # While a short step runs, the pool probes around it, a few at a time (parallel_probes).
    assert 0 < sum(probes) <= 7 * steps
