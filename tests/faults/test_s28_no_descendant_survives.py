"""No process the objective starts outlives its trial (scenario 28, issue 15 item 5).

An objective that started a process of its own (``subprocess.Popen``: a data loader, a
training job holding a GPU) and then hung left that process running after the trial's time
limit and after a worker's SIGTERM: ``Sandbox.kill()`` signalled the evaluation child's pid
only, and the grandchild, re-parented to PID 1, ran on. The child leads a process group of
its own (it is started in a new session), so the supervisor now kills the whole group, on
every path that ends a child: time limit, abort, shutdown, crash, and the end of a run. When
the worker itself is SIGKILLed, the child's supervisor watch kills its own group before it
exits.

A descendant that leaves the group on purpose (``setsid``, ``start_new_session=True``, a
daemon) is out of reach of a process-group kill; SECURITY.md says so.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pytest

from parzen import fmin, hp, tpe
from parzen.execution.messages import ObjectiveRef
from parzen.execution.sandbox import EvaluationCrashed, EvaluationTimeout, Sandbox
from parzen.mongoexp import MongoTrials
from parzen.parallel import ParallelTrials
from parzen.trial import TrialState
from tests.support.cluster import REPO
from tests.support.descendants import HANG_FLAG, alive, grandchildren, spawns, survivors
from tests.support.faults import Background, FaultCluster, assert_clean_end, wait_for

pytestmark = [pytest.mark.integration]

GONE_S = 30  # generous: the machine is shared and loaded


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Path]:
    """Where the objective records its grandchildren; any left running at the end (a failed
    test) are killed, so a failure does not leave ``sleep`` processes for ten minutes."""
    where = tmp_path / "descendants"
    where.mkdir()
    try:
        yield where
    finally:
        for pid in survivors(where):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def space(where: Path, then: str = "hang") -> dict[str, Any]:
    return {"x": hp.uniform("x", -1, 1), "dir": str(where), "then": then}


def ref(where: Path, then: str) -> ObjectiveRef:
    return ObjectiveRef(key=f"spawns-{then}", import_path="tests.support.descendants:spawns",
                        space_pickle=cloudpickle.dumps({"x": 0.5, "dir": str(where),
                                                        "then": then}))


def sandbox_pids(where: Path) -> list[int]:
    """The evaluation children that started the recorded grandchildren."""
    return [int(f.read_text()) for f in where.glob("grandchild-*")]


def process_gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def all_gone(where: Path) -> bool:
    return not survivors(where) and all(process_gone(p) for p in sandbox_pids(where))


# ---- the sandbox on its own ------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_s28_time_limit_kills_the_objectives_children(box: Path) -> None:
    (box / HANG_FLAG).touch()
    sandbox = Sandbox(sys_path=[str(REPO)])
    try:
        with pytest.raises(EvaluationTimeout):
            sandbox.evaluate(ref(box, "hang"), {"x": 0.5}, 0, timeout_s=3.0)
        assert grandchildren(box), "the objective started no process"
        wait_for(lambda: all_gone(box), GONE_S, "the objective's sleep to be killed")
    finally:
        sandbox.close()


@pytest.mark.timeout(60)
def test_s28_closing_the_sandbox_kills_what_the_objective_left_running(box: Path) -> None:
    sandbox = Sandbox(sys_path=[str(REPO)])
    try:
        assert sandbox.evaluate(ref(box, "return"), {"x": 0.5}, 0)["loss"] == 0.25
        pid, = grandchildren(box)
        assert alive(pid), "between trials the objective's processes are left alone"
    finally:
        sandbox.close()
    wait_for(lambda: all_gone(box), GONE_S, "the objective's sleep to be killed on close")


@pytest.mark.timeout(60)
def test_s28_a_crashed_child_takes_its_children_with_it_and_its_exit_code_is_kept(
        box: Path) -> None:
    sandbox = Sandbox(sys_path=[str(REPO)])
    try:
        with pytest.raises(EvaluationCrashed, match="exited with code 3"):
            sandbox.evaluate(ref(box, "exit"), {"x": 0.5}, 0)
        assert grandchildren(box)
        wait_for(lambda: all_gone(box), GONE_S, "the crashed objective's sleep to be killed")
    finally:
        sandbox.close()


# ---- ParallelTrials --------------------------------------------------------------------------

@pytest.mark.timeout(120)
def test_s28_parallel_trials_timeout_leaves_no_descendant(box: Path) -> None:
    (box / HANG_FLAG).touch()
    trials = ParallelTrials(parallelism=1, trial_timeout=3.0)
    run = Background(fmin, spawns, space(box), algo=tpe.suggest, max_evals=2, trials=trials,
                     show_progressbar=False, rstate=np.random.default_rng(0))
    wait_for(lambda: grandchildren(box), GONE_S, "the objective to start its sleep")
    (box / HANG_FLAG).unlink()  # the next trial returns at once
    run.join(90)
    counts = trials.state_counts()
    assert counts[TrialState.ERROR] == 1 and counts[TrialState.DONE] == 1, counts
    wait_for(lambda: all_gone(box), GONE_S, "the timed-out objective's sleep to be killed")


@pytest.mark.timeout(120)
def test_s28_killed_coordinator_leaves_no_descendant(box: Path, tmp_path: Path) -> None:
    """fmin with ParallelTrials in a process that is SIGKILLed: its slot children notice
    that their supervisor died and take their process groups with them."""
    script = tmp_path / "coordinator.py"
    script.write_text(
        "import sys\n"
        "import numpy as np\n"
        "from parzen import fmin, hp, tpe\n"
        "from parzen.parallel import ParallelTrials\n"
        "from tests.support.descendants import spawns\n"
        "fmin(spawns, {'x': hp.uniform('x', -1, 1), 'dir': sys.argv[1], 'then': 'hang'},\n"
        "     algo=tpe.suggest, max_evals=1, trials=ParallelTrials(parallelism=1),\n"
        "     show_progressbar=False, rstate=np.random.default_rng(0))\n")
    (box / HANG_FLAG).touch()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO),
                                                         os.environ.get("PYTHONPATH", "")])}
    coordinator = subprocess.Popen([sys.executable, str(script), str(box)], env=env)
    try:
        wait_for(lambda: grandchildren(box), 60, "the objective to start its sleep")
        coordinator.kill()
        coordinator.wait(10)
        wait_for(lambda: all_gone(box), GONE_S,
                 "the sandbox child and its sleep to go with the coordinator")
    finally:
        if coordinator.poll() is None:
            coordinator.kill()
            coordinator.wait(10)


# ---- a real `parzen worker` ------------------------------------------------------------------

def start_fmin(cluster: FaultCluster, exp_key: str, where: Path) -> Background:
    trials = MongoTrials(cluster.mongo_url, exp_key=exp_key, parallelism=1, **cluster.kwargs())

    def run() -> None:
        try:
            fmin(spawns, space(where), algo=tpe.suggest, max_evals=1, trials=trials,
                 show_progressbar=False, rstate=np.random.default_rng(0))
        finally:
            trials.close()

    return Background(run)


@pytest.mark.timeout(150)
def test_s28_worker_sigterm_leaves_no_descendant(cluster: FaultCluster, box: Path) -> None:
    (box / HANG_FLAG).touch()
    worker, = cluster.start_ready(1)
    run = start_fmin(cluster, "s28-term", box)
    wait_for(lambda: grandchildren(box), 60, "the objective to start its sleep")
    (box / HANG_FLAG).unlink()  # the rerun elsewhere returns at once
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(30) == 0, cluster.log_of(worker)
    wait_for(lambda: all_gone(box), GONE_S,
             "the stopped worker's sandbox child and its sleep to be killed")
    cluster.start_ready(1)
    run.join(90)
    t, = assert_clean_end(cluster, "s28-term", done=1)
    assert [a.outcome for a in t.history] == ["released: worker shutting down"]


@pytest.mark.timeout(150)
def test_s28_worker_kill9_leaves_no_descendant(cluster: FaultCluster, box: Path) -> None:
    (box / HANG_FLAG).touch()
    victim, = cluster.start_ready(1)
    run = start_fmin(cluster, "s28-kill", box)
    wait_for(lambda: grandchildren(box), 60, "the objective to start its sleep")
    (box / HANG_FLAG).unlink()
    cluster.kill9(victim)
    wait_for(lambda: all_gone(box), GONE_S,
             "the killed worker's sandbox child and its sleep to go with it")
    cluster.start_ready(1)
    run.join(90)
    t, = assert_clean_end(cluster, "s28-kill", done=1)
    assert [a.outcome for a in t.history] == ["worker died"]
