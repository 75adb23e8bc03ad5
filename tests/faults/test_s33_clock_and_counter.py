"""The store's clock and its tid counter (scenario 33, issue 15 item 10, two of its points).

- Inserted trials were stamped ``created`` with the coordinator's clock, not the store's:
  with a coordinator one hour ahead, ``parzen experiments`` showed activity "in 59m57s".
- A store whose ``next_tid`` is behind its trials (a database restored from a dump) handed
  out tids already used, and the insert, idempotent by tid, threw the new suggestions away
  without a word. The counter is now repaired, with one warning.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import parzen.trials as trials_module
from parzen.cli import main
from parzen.store._mongo import MongoTrialStore
from parzen.trial import Owner, Trial, TrialState
from parzen.trials import JOB_STATE_DONE, Trials
from tests.support import mongo as mf

pytestmark = [pytest.mark.integration]

AHEAD = timedelta(hours=1)


class _AheadClock(datetime):
    """``datetime`` on a coordinator whose clock runs an hour fast."""

    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return datetime.now(tz) + AHEAD


@pytest.fixture
def mongo(wire_server: Any, wire_client: Any) -> Iterator[tuple[str, MongoTrialStore]]:
    with mf.throwaway_database(wire_client) as db:
        url = wire_server.url.replace("/?", f"/{db.name}?", 1)
        store = MongoTrialStore.from_url(url)
        try:
            yield url, store
        finally:
            store.close()


def test_s33_inserted_trials_carry_the_store_clock_not_the_coordinators(
        mongo: tuple[str, MongoTrialStore], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    url, store = mongo
    monkeypatch.setattr(trials_module, "datetime", _AheadClock)
    trials = Trials(exp_key="s33-clock", store=store)
    tids = trials.new_trial_ids(3)
    docs = trials.docs_for_points(tids[:2], [{"x": 0.1, "k": 0}, {"x": 0.2, "k": 1}])
    warm = dict(trials.docs_for_points(tids[2:], [{"x": 0.3, "k": 0}])[0],
                state=JOB_STATE_DONE, result={"status": "ok", "loss": 0.5})
    trials.insert_trial_docs([*docs, warm])
    trials.insert_points(trials.new_trial_ids(1), [{"x": 0.4, "k": 1}], "tpe")
    now = store.now()
    stored = store.find("s33-clock")
    assert len(stored) == 4
    for t in stored:
        assert t.created is not None and abs(t.created - now) < timedelta(minutes=5), t
    warm_trial = store.get("s33-clock", tids[2])
    assert warm_trial.end_time is not None and warm_trial.end_time <= now + timedelta(seconds=5)

    assert main(["experiments", "--mongo", url, "--format", "json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    last = datetime.fromisoformat(row["last_activity"])
    assert last <= datetime.now(timezone.utc) + timedelta(seconds=5), row
    assert main(["experiments", "--mongo", url]) == 0
    assert " in " not in capsys.readouterr().out.splitlines()[1]


def test_s33_a_tid_counter_behind_the_trials_is_repaired_with_one_warning(
        mongo: tuple[str, MongoTrialStore], caplog: pytest.LogCaptureFixture) -> None:
    _, store = mongo
    key = "s33-counter"
    tids = store.allocate_tids(key, 5)
    store.insert_new([Trial(key, tid, TrialState.NEW, {"x": 0.1 * tid, "k": 0})
                      for tid in tids])
    for tid in tids:
        t = store.claim(key, tid, Owner("cpu-1/slot-1", "node-9", 7), 60)
        assert t is not None and t.claim_token
        store.finish(key, tid, t.claim_token, TrialState.DONE, {"status": "ok", "loss": 1.0})
    # A dump taken after tid 1 was handed out, restored under the newer trials.
    store._experiments.update_one({"_id": key}, {"$set": {"next_tid": 2}})

    caplog.set_level(logging.WARNING, logger="parzen")
    trials = Trials(exp_key=key, store=store)
    new = trials.new_trial_ids(2)
    assert new == [5, 6], "tids already used were handed out again"
    trials.insert_points(new, [{"x": 0.55, "k": 1}, {"x": 0.65, "k": 1}], "tpe")
    assert trials.new_trial_ids(1) == [7]
    warnings = [r.getMessage() for r in caplog.records if "next_tid" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert warnings[0] == (
        f"experiment {key!r}: its tid counter next_tid=2 is behind its trials (the highest "
        "tid is 4; a database restored from an older dump?); moved it to 5, so no tid is "
        "handed out twice")
    stored = {t.tid: t for t in store.find(key)}
    assert sorted(stored) == [0, 1, 2, 3, 4, 5, 6]
    assert stored[5].params == {"x": 0.55, "k": 1} and stored[5].state is TrialState.NEW
