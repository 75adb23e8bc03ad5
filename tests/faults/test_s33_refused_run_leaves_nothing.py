"""A refused run leaves nothing behind: ``MongoTrials`` with ``trials_save_file`` (scenario 33,
issue 15, item 10).

``MongoTrials`` cannot be pickled (its trials live in MongoDB), so the run failed with a
``TypeError`` at its first save: after the experiment document was written, its driver lease
taken and two trials inserted, published and cancelled. fmin now refuses the combination
before any runner is built.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from parzen import fmin, tpe
from parzen.exceptions import ConfigError
from parzen.mongoexp import MongoTrials
from tests.support.fault_objectives import sleepy, space
from tests.support.faults import FaultCluster

pytestmark = [pytest.mark.integration]


@pytest.mark.timeout(60)
def test_s33_mongo_trials_with_a_save_file_is_refused_before_anything_is_written(
        cluster: FaultCluster, tmp_path: Path) -> None:
    save = tmp_path / "run.pkl"
    trials = MongoTrials(cluster.mongo_url, exp_key="s33-save", parallelism=2,
                         **cluster.kwargs())
    try:
        with pytest.raises(ConfigError) as info:
            fmin(sleepy, space(0.0), algo=tpe.suggest, max_evals=4, trials=trials,
                 show_progressbar=False, rstate=np.random.default_rng(0),
                 trials_save_file=str(save))
    finally:
        trials.close()
    msg = str(info.value)
    assert f"trials_save_file={str(save)!r}" in msg and "MongoTrials" in msg, msg
    assert "exp_key='s33-save'" in msg and "leave trials_save_file out" in msg, msg

    assert cluster.store.get_experiment("s33-save") is None, "the experiment was written"
    assert sum(cluster.counts("s33-save").values()) == 0, "trials were inserted"
    assert cluster.redis.queue_length(cluster.queue) == 0, "messages were published"
    assert not save.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".parzen-")] == [], \
        "a temporary save file was left behind"
