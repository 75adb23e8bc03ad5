"""``parzen.plotting``: figures with the expected panels, and a clear error without
matplotlib."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import pytest

from parzen import Trials
from parzen.exceptions import ConfigError
from parzen.plotting import (
    choose_loss_scale,
    main_plot_history,
    main_plot_vars,
    plot_experiment,
    plot_history,
    plot_params,
)
from parzen.trial import Trial, TrialState
from tests.support.cli import LABELS


@pytest.fixture(scope="module")
def trials(local_file: str) -> Trials:
    with open(local_file, "rb") as f:
        loaded = pickle.load(f)
    assert isinstance(loaded, Trials)
    return loaded


def test_experiment_figure_has_history_plus_one_panel_per_parameter(trials: Trials,
                                                                     tmp_path: Path) -> None:
    fig = plot_experiment(trials)
    assert len(fig.axes) == 1 + len(LABELS)
    history, *params = fig.axes
    assert history.get_xlabel() == "trial (tid)"
    assert [ax.get_title(loc="left") for ax in params] == [
        "lr (loguniform)", "layers (quniform)", "act (choice)", "slope (uniform)"]
    assert params[0].get_xscale() == "log"  # a loguniform parameter
    assert [t.get_text() for t in params[2].get_xticklabels()][:2] == ["relu", "tanh"]
    losses = [v for v in trials.losses() if v is not None]
    assert history.get_yscale() == choose_loss_scale(losses).value
    legend = [t.get_text() for t in history.get_legend().get_texts()]
    n_failed = trials.state_counts()[TrialState.ERROR]
    assert "best so far" in legend and f"failed ({n_failed})" in legend
    assert fig._suptitle is not None and "default:" in fig._suptitle.get_text()
    out = tmp_path / "fig.png"
    fig.savefig(out, dpi=40)
    assert out.stat().st_size > 5000


def test_history_and_params_alone(trials: Trials) -> None:
    assert len(plot_history(trials).axes) == 1
    assert len(plot_params(trials).axes) == len(LABELS)
    rows = trials.all_trials()
    # Without a space description every parameter is drawn as a number.
    fig = plot_params(rows)
    assert [ax.get_title(loc="left") for ax in fig.axes] == LABELS


def test_linear_losses_with_outliers_are_clipped_to_a_readable_range() -> None:
    rows = [Trial("e", i, TrialState.DONE, {"x": float(i)}, {"status": "ok", "loss": -1.0 + i},
                  end_time=None) for i in range(12)]
    rows.append(Trial("e", 12, TrialState.DONE, {"x": 12.0}, {"status": "ok", "loss": 1e4}))
    fig = plot_experiment(rows)
    history = fig.axes[0]
    assert history.get_yscale() == "linear" and history.get_ylim()[1] < 100
    assert any("off the scale" in t.get_text() for t in history.texts)


def test_a_run_without_results_still_plots() -> None:
    rows = [Trial("e", 0, TrialState.RUNNING, {"x": 1.0}),
            Trial("e", 1, TrialState.ERROR, {"x": 2.0}, {"status": "fail"})]
    fig = plot_experiment(rows)
    assert len(fig.axes) == 2
    assert any("no trial has finished" in t.get_text() for t in fig.axes[0].texts)


def test_without_matplotlib_the_error_names_the_extra(trials: Trials,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ConfigError, match=r"needs matplotlib.*pip install matplotlib"):
        plot_experiment(trials)


def test_hyperopt_names_draw_on_pyplot_and_show(trials: Trials,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown: list[int] = []
    monkeypatch.setattr(plt, "show", lambda *a, **k: shown.append(1))
    try:
        fig = main_plot_history(trials)
        assert plt.fignum_exists(fig.number) and len(fig.axes) == 1 and shown == [1]
        assert fig._suptitle is not None and fig._suptitle.get_text() == "Loss History"
        fig = main_plot_vars(trials, do_show=False, columns=2)
        assert plt.fignum_exists(fig.number) and shown == [1]
        assert [ax.get_title(loc="left") for ax in fig.axes][:2] == [
            "lr (loguniform)", "layers (quniform)"]
        assert fig.axes[2].get_subplotspec().rowspan.start == 1  # two panels a row
    finally:
        plt.close("all")

