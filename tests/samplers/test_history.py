"""``HistoryBuilder`` / ``History``: incremental rows, growth, pending flags, read-only views."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from parzen import hp
from parzen.samplers._history import History, HistoryBuilder
from parzen.space import compile_space
from parzen.trial import ErrorInfo, Trial, TrialState

SPACE = compile_space({"x": hp.uniform("x", 0, 1),
                       "c": hp.choice("c", [{"u": hp.uniform("u", 0, 1)}, "z"])})


def _trial(tid: int, state: TrialState, params: dict[str, float],
           result: dict[str, object] | None = None) -> Trial:
    return Trial(exp_key="e", tid=tid, state=state, params=params,
                 result=result if result is not None else {"status": "new"},
                 created=datetime.now(timezone.utc))


def test_rows_are_added_incrementally() -> None:
    b = HistoryBuilder(SPACE)
    assert len(b) == 0 and b.view().n == 0
    b.set_row(10, {"x": 0.5, "c": 0, "u": 0.25}, 1.5, False)
    b.set_row(11, {"x": 0.7, "c": 1}, None, True)
    h = b.view()
    assert h.n == 2 and len(b) == 2
    assert h.values["x"].tolist() == [0.5, 0.7]
    assert h.values["c"].tolist() == [0.0, 1.0]
    assert h.values["u"][0] == 0.25 and np.isnan(h.values["u"][1])  # inactive -> NaN
    assert h.losses[0] == 1.5 and np.isnan(h.losses[1])
    assert h.pending.tolist() == [False, True]
    assert h.completed.tolist() == [True, False] and h.n_completed == 1
    assert set(h.values) == set(SPACE.labels)
    assert all(v.dtype == np.float64 for v in h.values.values())


def test_updating_a_row_keeps_its_position_and_params() -> None:
    b = HistoryBuilder(SPACE)
    b.set_row(0, {"x": 0.1, "c": 1}, None, True)
    b.set_row(1, {"x": 0.2, "c": 1}, None, True)
    b.set_row(0, {"x": 0.9, "c": 1}, 0.3, False)  # the result arrives
    h = b.view()
    assert h.n == 2
    assert h.values["x"].tolist() == [0.1, 0.2]  # a trial's point never changes
    assert h.pending.tolist() == [False, True]
    assert h.losses[0] == 0.3
    b.set_row(0, {}, None, True)  # requeued: pending again, loss gone
    assert np.isnan(b.view().losses[0]) and b.view().pending[0]


@pytest.mark.parametrize("capacity", [0, 1, 2, 64])
def test_growth_preserves_rows(capacity: int) -> None:
    b = HistoryBuilder(SPACE, capacity=capacity)
    for i in range(150):
        b.set_row(i, {"x": i / 150, "c": i % 2, **({"u": 0.5} if i % 2 == 0 else {})},
                  float(i) if i % 3 else None, i % 5 == 0)
    h = b.view()
    assert h.n == 150
    np.testing.assert_allclose(h.values["x"], np.arange(150) / 150)
    assert h.values["c"].tolist() == [float(i % 2) for i in range(150)]
    assert np.isnan(h.values["u"]).tolist() == [i % 2 == 1 for i in range(150)]
    assert np.isnan(h.losses).tolist() == [i % 3 == 0 for i in range(150)]
    assert h.pending.tolist() == [i % 5 == 0 for i in range(150)]


def test_views_are_read_only_and_the_builder_stays_writable() -> None:
    b = HistoryBuilder(SPACE)
    b.set_row(0, {"x": 0.5, "c": 1}, 1.0, False)
    h = b.view()
    for arr in (h.losses, h.pending, h.values["x"]):
        assert not arr.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        h.losses[0] = 0.0
    with pytest.raises(ValueError, match="read-only"):
        h.values["x"][0] = 0.0
    with pytest.raises(ValueError, match="read-only"):
        h.pending[0] = True
    b.set_row(1, {"x": 0.25, "c": 1}, 2.0, False)  # the builder can still write
    assert b.view().losses.tolist() == [1.0, 2.0]
    assert h.n == 1  # an old view keeps its length


def test_add_maps_trial_states() -> None:
    b = HistoryBuilder(SPACE)
    b.add(_trial(0, TrialState.NEW, {"x": 0.1, "c": 1}))
    b.add(_trial(1, TrialState.RUNNING, {"x": 0.2, "c": 1}))
    b.add(_trial(2, TrialState.DONE, {"x": 0.3, "c": 1}, {"status": "ok", "loss": 0.5}))
    b.add(_trial(3, TrialState.DONE, {"x": 0.4, "c": 1}, {"status": "fail"}))
    b.add(Trial(exp_key="e", tid=4, state=TrialState.ERROR, params={"x": 0.5, "c": 1},
                result={"status": "fail"}, error=ErrorInfo("E", "m")))
    b.add(_trial(5, TrialState.CANCEL, {"x": 0.6, "c": 1}, {"status": "fail"}))
    h = b.view()
    assert h.pending.tolist() == [True, True, False, False, False, False]
    assert np.isnan(h.losses).tolist() == [True, True, False, True, True, True]
    assert h.losses[2] == 0.5
    b.add(_trial(0, TrialState.DONE, {"x": 0.1, "c": 1}, {"status": "ok", "loss": 0.25}))
    h = b.view()
    assert h.n == 6 and h.losses[0] == 0.25 and not h.pending[0]


def test_from_rows_and_empty() -> None:
    h = History.from_rows(SPACE, [({"x": 0.5, "c": 1}, 0.1, False),
                                  ({"x": 0.6, "c": 0, "u": 0.3}, None, True)])
    assert h.n == 2 and h.n_completed == 1 and h.pending.tolist() == [False, True]
    e = History.empty(SPACE)
    assert e.n == 0 and e.n_completed == 0 and set(e.values) == set(SPACE.labels)


# -- the memo: what samplers keep with a builder's rows ----------------------------------------


class _Kept:
    def __init__(self) -> None:
        self.rows: list[int] = []


def test_views_of_one_builder_share_its_memo_and_other_histories_do_not() -> None:
    b = HistoryBuilder(SPACE)
    first = b.view()
    b.set_row(0, {"x": 0.5, "c": 1}, 1.0, False)
    assert first.memo is not None and first.memo is b.view().memo  # kept as rows are added
    kept = first.memo.slot(_Kept)
    assert b.view().memo is not None and b.view().memo.slot(_Kept) is kept
    other = HistoryBuilder(SPACE).view()
    assert other.memo is not None and other.memo is not first.memo and len(other.memo) == 0
    # Histories not made by a builder may change in place: they carry no memo.
    assert History.empty(SPACE).memo is None
    assert History(dict(first.values), first.losses, first.pending).memo is None
    # The memo takes no part in comparisons or the repr.
    assert "memo" not in repr(first)


def test_memo_slots_are_made_once_and_can_be_dropped() -> None:
    import copy
    import pickle

    from parzen.samplers._history import Memo

    memo = Memo()
    kept = memo.slot(_Kept)
    kept.rows.append(1)
    assert memo.slot(_Kept) is kept and len(memo) == 1
    memo.drop(_Kept)
    assert len(memo) == 0 and memo.slot(_Kept) is not kept
    memo.drop(_Kept)
    memo.drop(int)  # dropping what is not there is fine
    # A copy or an unpickled memo starts empty: what it kept belongs to the original rows.
    assert len(copy.deepcopy(memo)) == 0 and len(pickle.loads(pickle.dumps(memo))) == 0


def test_trials_give_a_new_memo_when_the_space_changes() -> None:
    from parzen import Trials

    other = compile_space({"y": hp.uniform("y", 0, 1)})
    trials = Trials()
    a = trials.history(SPACE)
    assert a.memo is not None and trials.history(SPACE).memo is a.memo
    b = trials.history(other)
    assert b.memo is not None and b.memo is not a.memo
