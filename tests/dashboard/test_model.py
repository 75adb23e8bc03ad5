"""The dashboard's read model: one read of the whole experiment, then only what can have
changed; an operator's change to finished trials noticed; workers, errors as the CLI has them."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest

from parzen import processes
from parzen.cli import _status
from parzen.cli.dashboard.model import TrialView
from parzen.cli.tools import error_groups
from parzen.store import Experiment, InMemoryTrialStore
from parzen.trial import ErrorInfo, Owner, Trial, TrialState

KEY = "exp"


def _store(done: int = 40, failed: int = 3, running: int = 4, queued: int = 3
           ) -> InMemoryTrialStore:
    store = InMemoryTrialStore()
    store.put_experiment(Experiment(KEY, settings={"heartbeat_s": 10.0, "lease_s": 60.0}))
    n = done + failed + running + queued
    tids = store.allocate_tids(KEY, n)
    store.insert_new([Trial(KEY, t, TrialState.NEW, {"x": float(t)}) for t in tids])
    for i, tid in enumerate(tids[:done + failed + running]):
        t = store.claim(KEY, tid, Owner(f"w{i % 2}", f"node-{i % 2}", 10 + i % 2,
                                        slot=1 + i // 2), 60)
        assert t is not None and t.claim_token
        if i < done:
            store.finish(KEY, tid, t.claim_token, TrialState.DONE,
                         {"status": "ok", "loss": 100.0 - i})
        elif i < done + failed:
            store.finish(KEY, tid, t.claim_token, TrialState.ERROR, {"status": "fail"},
                         ErrorInfo("ValueError", f"diverged at lr={i}", "Traceback ..."))
    return store


def _finish(store: InMemoryTrialStore, tid: int, loss: float) -> None:
    t = store.get(KEY, tid)
    if t.state is TrialState.NEW:
        t = store.claim(KEY, tid, Owner("w9", "node-9", 99, slot=1), 60)
    assert t is not None and t.claim_token
    assert store.finish(KEY, tid, t.claim_token, TrialState.DONE, {"status": "ok", "loss": loss})


def _tids(changes: tuple[dict[str, Any], str]) -> list[int]:
    head, data = changes
    tids: list[int] = json.loads(data)[head["columns"].index("tid")]
    assert tids == sorted(tids), "rows travel in tid order"
    return tids


def test_after_the_first_read_only_trials_in_flight_and_new_tids_are_read() -> None:
    store = _store()
    view = TrialView(KEY)
    view.refresh(store, 0, None, force=True)
    assert view.reads.full == 1 and view.reads.trials_read == 50
    assert len(_tids(view.changes_since(0))) == 50
    seq = view.seq

    _finish(store, 45, loss=0.5)  # a running trial finishes
    new = store.allocate_tids(KEY, 1)[0]
    store.insert_new([Trial(KEY, new, TrialState.NEW, {"x": 1.0})])  # the coordinator queues
    view.refresh(store, 0, None, force=True)

    assert view.reads.full == 1, "a poll must not read the whole experiment"
    assert view.reads.trials_read == 50 + 7 + 1  # the 7 in flight and the new tid
    changes = view.changes_since(seq)
    assert _tids(changes) == [45, new]
    assert changes[0]["reset"] is False
    assert view.best() is not None and view.best().tid == 45  # type: ignore[union-attr]
    # Nothing changed: an empty answer.
    seq = view.seq
    view.refresh(store, 0, None, force=True)
    assert _tids(view.changes_since(seq)) == []


def test_an_operator_requeue_of_finished_trials_is_noticed_by_the_counts() -> None:
    store = _store()
    view = TrialView(KEY)
    view.refresh(store, 0, None, force=True)
    seq = view.seq
    assert store.requeue(KEY, [TrialState.ERROR]) == 3  # finished trials: not in flight
    view.refresh(store, 0, None, force=True)
    assert view.reads.full == 2
    assert _tids(view.changes_since(seq)) == [40, 41, 42]  # only the trials that changed
    assert view.counts()[TrialState.ERROR] == 0
    assert view.counts()[TrialState.NEW] == 6


def test_a_replaced_store_is_read_whole_and_compared() -> None:
    store = _store()
    view = TrialView(KEY)
    view.refresh(store, 0, None, force=True)
    seq = view.seq
    # The same trials in a new store object (a local run's file written again), one more
    # result.
    again = InMemoryTrialStore()
    again.put_experiment(Experiment(KEY))
    again.restore(store.find(KEY))
    _finish(again, 47, loss=7.0)
    view.refresh(again, 1, None)
    assert view.reads.full == 2
    assert _tids(view.changes_since(seq)) == [47]


def test_a_client_from_another_numbering_gets_everything() -> None:
    view = TrialView(KEY)
    view.refresh(_store(), 0, None, force=True)
    assert view.changes_since(view.seq + 5)[0]["reset"] is True


def test_workers_are_marked_by_the_rule_of_parzen_status() -> None:
    store = _store(done=2, failed=0, running=4, queued=0)
    view = TrialView(KEY)
    view.refresh(store, 0, None, force=True)
    now = store.now()
    fresh = {w["worker"]: w for w in view.workers(now)["workers"]}
    assert set(fresh) == {"w0", "w1"}  # one row per worker, whichever slots ran its trials
    assert fresh["w0"]["busy"] == 2 and [t["tid"] for t in fresh["w0"]["held"]] == [2, 4]
    assert [t["slot"] for t in fresh["w0"]["held"]] == [2, 3]
    assert fresh["w0"]["state"] == fresh["w1"]["state"] == "beating"
    # Silent for more than two heartbeat intervals (10 s each): stale, as parzen status says.
    later = now + timedelta(seconds=21)
    rows = {w["worker"]: w for w in view.workers(later)["workers"]}
    assert rows["w0"]["state"] == "stale" and rows["w0"]["silent_s"] > 20
    running = [t for t in view.trials.values() if t.state is TrialState.RUNNING]
    snap = _status.workers_seen(running, [], later, 10.0)
    assert {w.worker: w.state.value for w in snap} == {"w0": "stale", "w1": "stale"}
    assert view.workers(later)["stale_after_s"] == _status.STALE_BEATS * 10.0
    # A lease that ran out does not make a worker stale by itself (the reaper's business):
    # the trial is listed as expired, its worker still beating.
    lapsed = Owner("w2", "node-2", 12, slot=1)
    tid = store.allocate_tids(KEY, 1)[0]
    store.insert_new([Trial(KEY, tid, TrialState.NEW, {"x": 0.0})])
    assert store.claim(KEY, tid, lapsed, lease_s=-30) is not None
    view.refresh(store, 0, None, force=True)
    workers = view.workers(store.now())
    assert {w["worker"]: w["state"] for w in workers["workers"]}["w2"] == "beating"
    assert workers["expired"] == [tid]


@pytest.mark.skipif(not processes.pid_namespace(), reason="needs Linux /proc")
def test_a_worker_whose_process_is_seen_gone_is_dead() -> None:
    store = _store(done=0, failed=0, running=2, queued=0)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    gone = Owner("w7", "node-7", child.pid, slot=1, pid_ns=processes.pid_namespace(),
                 pid_start=processes.start_ticks(child.pid))
    child.kill()
    child.wait()
    store.restore([dataclasses.replace(store.get(KEY, 1), owner=gone)])
    view = TrialView(KEY)
    view.refresh(store, 0, None, force=True)
    states = {w["worker"]: w["state"] for w in view.workers(store.now())["workers"]}
    assert states == {"w0": "beating", "w7": "dead"}


def test_errors_are_the_groups_of_parzen_errors() -> None:
    store = _store()
    view = TrialView(KEY)
    view.refresh(store, 0, None, force=True)
    assert view.errors() == error_groups(store.find(KEY, states=[TrialState.ERROR]))
    (group,) = view.errors()
    assert group["type"] == "ValueError" and group["count"] == 3
    assert group["messages"][0]["pattern"] == "diverged at lr=#"


def test_trial_detail_has_the_traceback_and_rows_have_the_export_columns() -> None:
    store = _store()
    view = TrialView(KEY)
    view.refresh(store, 0, None, force=True)
    detail = view.trial(40)
    assert detail is not None and detail["error"]["traceback"] == "Traceback ..."
    cols = view.changes_since(0)[0]["columns"]
    assert cols[:7] == ["tid", "state", "loss", "step", "duration_s", "worker", "attempts"]
    assert view.trial(10_000) is None


def _answer(view: TrialView, seq: int = 0) -> dict[str, list[Any]]:
    """A view's answer as ``{column: cells}``."""
    head, data = view.changes_since(seq)
    return dict(zip(head["columns"], json.loads(data), strict=True))


def _same_as_fresh(view: TrialView, store: InMemoryTrialStore) -> dict[str, list[Any]]:
    fresh = TrialView(KEY)
    fresh.refresh(store, 0, None, force=True)
    kept = _answer(view)
    assert kept == _answer(fresh)
    return kept


def test_a_first_answer_after_changes_is_the_one_a_fresh_view_gives() -> None:
    # Blocks of the first answer are kept encoded: a change must re-encode its block.
    store = _store(done=40, failed=3, running=4, queued=3)
    view = TrialView(KEY)
    view.refresh(store, 0, None, force=True)
    _answer(view)  # encoded and kept

    _finish(store, 44, loss=0.25)  # a running trial finishes
    view.refresh(store, 0, None, force=True)
    assert _same_as_fresh(view, store)["loss"][44] == 0.25

    # New trials, one with a parameter no trial had: a column after the others.
    new = store.allocate_tids(KEY, 2)
    store.insert_new([Trial(KEY, new[0], TrialState.NEW, {"x": 1.0, "y": 2.0}),
                      Trial(KEY, new[1], TrialState.NEW, {"x": 3.0})])
    view.refresh(store, 0, None, force=True)
    assert _same_as_fresh(view, store)["y"] == [None] * 50 + [2.0, None]

    # Trials gone (the store, replaced, no longer has them): gone from the answer too.
    seq = view.seq
    again = InMemoryTrialStore()
    again.put_experiment(Experiment(KEY))
    again.restore([t for t in store.find(KEY) if t.tid not in (3, new[1])])
    view.refresh(again, 1, None)
    assert 3 not in _same_as_fresh(view, again)["tid"]
    head, _ = view.changes_since(seq)
    assert sorted(head["removed"]) == [3, new[1]]


def test_a_poll_gets_the_changed_rows_column_by_column_in_tid_order() -> None:
    store = _store()
    view = TrialView(KEY)
    view.refresh(store, 0, None, force=True)
    seq = view.seq
    _finish(store, 46, loss=3.0)
    _finish(store, 44, loss=2.0)
    view.refresh(store, 0, None, force=True)
    changed = _answer(view, seq)
    assert changed["tid"] == [44, 46] and changed["loss"] == [2.0, 3.0]
    assert changed["state"] == ["done", "done"]
    assert _answer(view, view.seq)["tid"] == []


def test_rows_name_each_choice_option_as_the_export_does() -> None:
    """The rows' choice values, worked out once per option where the option is a constant,
    are ``space_eval``'s answer per trial: a nested option evaluated with the trial's
    values, an index out of range or not a number left empty, as ``parzen trials`` has it."""
    import numpy as np

    from parzen import hp
    from parzen.cli.dashboard.model import trial_rows
    from parzen.space import describe

    space = describe({"act": hp.choice("act", ["relu", {"kind": "leaky",
                                                        "slope": hp.uniform("slope", 0, 1)}]),
                      "bs": hp.choice("bs", [16, 32]), "lr": hp.uniform("lr", 0, 1)})
    params: list[dict[str, Any]] = [
        {"act": 0, "bs": 1, "lr": 0.5}, {"act": 1, "slope": 0.25, "bs": np.int64(0)},
        {"act": 5, "bs": True, "lr": float("nan")}, {"act": "x"}, {}]
    trials = [Trial(KEY, tid, TrialState.DONE, p, result={"status": "ok", "loss": 1.0})
              for tid, p in enumerate(params)]
    columns, rows = trial_rows(trials, space)
    assert columns[7:] == ["act", "act_value", "slope", "bs", "bs_value", "lr"]
    assert all(list(row) == columns for row in rows)
    assert [(r["act_value"], r["bs_value"], r["lr"]) for r in rows] == [
        ("relu", 32, 0.5), ({"kind": "leaky", "slope": 0.25}, 16, None),
        (None, 32, None), (None, None, None), (None, None, None)]
    assert type(rows[1]["bs"]) is int  # a numpy index is a plain int in the row
