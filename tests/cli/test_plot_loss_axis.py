"""The loss axis of the figures: ``choose_loss_scale`` (the default), ``loss_scale=`` and
``parzen plot --log/--linear``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from parzen import fmin, hp, rand
from parzen.exceptions import ConfigError
from parzen.plotting import LossScale, choose_loss_scale, plot_experiment, plot_history
from parzen.trial import Trial, TrialState
from tests.support.cli import Cli

LOG, LINEAR = LossScale.LOG, LossScale.LINEAR


def _trials(losses: list[float]) -> list[Trial]:
    return [Trial("axis", tid, TrialState.DONE, {"x": float(tid)},
                  result={"status": "ok", "loss": loss})
            for tid, loss in enumerate(losses)]


@pytest.mark.parametrize(("losses", "scale"), [
    # classification error from 2% to 90%: 45x, more than a decade
    ([0.02, 0.021, 0.025, 0.04, 0.1, 0.3, 0.9], LOG),
    ([1e-3, 1e-1, 10.0, 1e3], LOG),
    # within a decade, but the best quarter sits in a thin band at the bottom of a linear
    # axis: 20 trials, 5 of them within 0.0005 of the best, the rest up to 7.5x as high
    ([0.020, 0.0201, 0.0202, 0.0203, 0.0205] + [0.05 + 0.1 * i / 14 for i in range(15)],
     LOG),
    # narrow and even: a log axis would look the same
    ([100.0, 101.0, 102.0, 103.0, 104.0, 105.0], LINEAR),
    ([1.0, 2.0, 3.0, 4.0, 5.0], LINEAR),
    # a loss <= 0 cannot go on a log axis (-accuracy, a log-likelihood)
    ([-0.98, -0.97, -0.9, -0.5, -0.1], LINEAR),
    ([0.0, 0.01, 1.0, 100.0], LINEAR),
    # too few to judge, or all alike
    ([0.5], LINEAR),
    ([], LINEAR),
    ([2.0, 2.0, 2.0, 2.0], LINEAR),
])
def test_choose_loss_scale(losses: list[float], scale: LossScale) -> None:
    assert choose_loss_scale(losses) is scale


def test_non_finite_losses_are_left_out_of_the_choice() -> None:
    assert choose_loss_scale([0.02, 0.5, float("inf"), float("nan")]) is LOG
    assert choose_loss_scale([1.0, 1.1, float("inf")]) is LINEAR


def test_a_decade_of_losses_gets_a_log_axis_by_default() -> None:
    # The old rule wanted two decades: losses from 2% to 90% were drawn linear, the good
    # trials pressed into the bottom tenth of the axis.
    rows = _trials([0.02, 0.021, 0.025, 0.04, 0.1, 0.3, 0.9])
    assert plot_history(rows).axes[0].get_yscale() == "log"
    fig = plot_experiment(rows)
    assert {ax.get_yscale() for ax in fig.axes} == {"log"}
    assert "log scale" in fig.axes[0].get_ylabel()


def test_the_scale_can_be_forced_either_way() -> None:
    spread = _trials([0.02, 0.021, 0.025, 0.04, 0.1, 0.3, 0.9])
    assert plot_experiment(spread, loss_scale="linear").axes[0].get_yscale() == "linear"
    narrow = _trials([100.0, 101.0, 102.0, 103.0, 104.0, 105.0])
    assert plot_experiment(narrow).axes[0].get_yscale() == "linear"
    assert plot_experiment(narrow, loss_scale=LossScale.LOG).axes[0].get_yscale() == "log"


def test_a_log_axis_is_refused_for_losses_that_are_not_positive() -> None:
    rows = _trials([-0.98, -0.9, -0.5])
    with pytest.raises(ConfigError, match=r"3 of 3 are \(the lowest is -0.98\).*--linear"):
        plot_experiment(rows, loss_scale="log")
    with pytest.raises(ConfigError, match=r"loss_scale='logarithmic': use one of 'auto'"):
        plot_experiment(rows, loss_scale="logarithmic")


def test_a_run_without_losses_plots_on_either_scale() -> None:
    rows = [Trial("axis", 0, TrialState.NEW, {"x": 0.0})]
    for scale in LossScale:
        assert len(plot_experiment(rows, loss_scale=scale).axes) == 2


@pytest.fixture
def negative_run(tmp_path: Path) -> str:
    """A local run file whose losses are all negative (-accuracy)."""
    path = str(tmp_path / "neg.pkl")

    def objective(p: dict[str, Any]) -> float:
        return -0.9 - p["x"] / 100

    fmin(objective, {"x": hp.uniform("x", 0, 1)}, algo=rand.suggest, max_evals=4,
         show_progressbar=False, trials_save_file=path)
    return path


def test_cli_log_and_linear(cli: Cli, negative_run: str, tmp_path: Path) -> None:
    out = tmp_path / "neg.png"
    assert "wrote" in cli("plot", "--file", negative_run, "--out", str(out), "--linear")
    assert out.stat().st_size > 1000
    err = cli("plot", "--file", negative_run, "--out", str(out), "--log", code=2)
    assert "parzen plot: a log loss axis cannot show losses <= 0" in err and "--linear" in err
    with pytest.raises(SystemExit):
        cli("plot", "--file", negative_run, "--out", str(out), "--log", "--linear")
    assert "not allowed with argument" in cli.capsys.readouterr().err
