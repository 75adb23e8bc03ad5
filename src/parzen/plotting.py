"""Figures of an experiment, for notebooks and ``parzen plot``; needs the ``plots`` extra.

Every function takes a ``Trials`` (any facade: local, parallel, Mongo) or a sequence of
``Trial`` and returns a ``matplotlib.figure.Figure`` drawn on the Agg canvas, without pyplot,
so nothing here touches global matplotlib state or needs a display::

    from parzen.plotting import plot_experiment
    plot_experiment(trials).savefig("run.png")

The exceptions are hyperopt's names, ``main_plot_history`` and ``main_plot_vars``: as in
hyperopt they draw on pyplot figures and call ``plt.show()`` (``do_show=False`` skips it).

Colour is the trial number throughout (early trials dark, late ones light), which shows where
the search went over time; the best trial is a red star, and failed trials are red crosses
along the top edge of a panel, at the value they were tried with.

The loss axis (``loss_scale``, ``parzen plot --log/--linear``) is chosen by
``choose_loss_scale`` unless given: logarithmic when every loss is positive and the losses
span a decade or more, or when the best quarter of the trials would get less than half the
height on a linear axis than on a log one (good trials squashed at the bottom); linear
otherwise, where a few losses far above the rest are cut off (and counted) so that they do
not flatten the others.
"""

from __future__ import annotations

import enum
import math
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from parzen.exceptions import ConfigError
from parzen.export import parameter_infos
from parzen.space.described import ParamInfo
from parzen.trial import Trial, TrialState
from parzen.trials import Trials

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

class LossScale(enum.Enum):
    """How the loss axis is drawn."""

    AUTO = "auto"  # choose_loss_scale decides from the losses
    LOG = "log"
    LINEAR = "linear"


# The automatic choice (choose_loss_scale): losses spanning this factor or more get a log
# axis, and so do losses whose best quarter a linear axis squeezes into at most this fraction
# of the height a log axis gives them.
LOG_SPAN = 10.0
SQUASHED = 0.5

CMAP = "viridis"
BEST_COLOR = "#d62728"
FAIL_COLOR = "#d62728"
LINE_COLOR = "#ff7f0e"
PRUNED_COLOR = "#b0b0b0"
PANEL_W, HISTORY_H, PANEL_H = 4.2, 3.4, 3.1
MakeFigure = Callable[[float, float], "Figure"]


@dataclass(frozen=True)
class _Data:
    trials: list[Trial]
    ok: list[Trial]          # finished with a loss
    failed: list[Trial]      # ERROR, or DONE with status fail
    best: Trial | None
    infos: dict[str, ParamInfo]
    log_loss: bool
    tid_range: tuple[float, float]


def plot_history(trials: Trials | Sequence[Trial], *, title: str | None = None,
                 loss_scale: LossScale | str = LossScale.AUTO) -> Figure:
    """Loss against trial number, with the best loss so far as a step line and failed trials
    marked; one panel. ``loss_scale``: ``"auto"`` (``choose_loss_scale``), ``"log"`` or
    ``"linear"``."""
    return _history(trials, title, _figure, loss_scale)


def _history(trials: Trials | Sequence[Trial], title: str | None, make: MakeFigure,
             loss_scale: LossScale | str = LossScale.AUTO) -> Figure:
    fig = make(PANEL_W * 2.4, HISTORY_H + 0.4)
    data = _data(trials, None, loss_scale)
    ax = fig.add_subplot(1, 1, 1)
    _draw_history(ax, data)
    _finish_loss_axis(ax, data)
    fig.suptitle(title or _title(trials, data), fontsize=11)
    return fig


def plot_params(trials: Trials | Sequence[Trial], *, space: Any = None,
                ncols: int = 3, loss_scale: LossScale | str = LossScale.AUTO) -> Figure:
    """One panel per parameter: loss against the value tried (log axis for log-scaled
    parameters, a jittered strip per option for choices).

    Args:
        space: the space's description (``parzen.space.describe``); by default the one the
            trials know (``attachments["space_description"]`` or the experiment document).
            Without one, every parameter is drawn as a plain number.
        loss_scale: ``"auto"`` (``choose_loss_scale``), ``"log"`` or ``"linear"``.
    """
    return _params(trials, space, ncols, _figure, loss_scale)


def _params(trials: Trials | Sequence[Trial], space: Any, ncols: int,
            make: MakeFigure, loss_scale: LossScale | str = LossScale.AUTO) -> Figure:
    data = _data(trials, space, loss_scale)
    n = max(1, len(data.infos))
    cols = max(1, min(ncols, n))
    rows = math.ceil(n / cols)
    fig = make(PANEL_W * cols, PANEL_H * rows)
    first: Axes | None = None
    for i, info in enumerate(data.infos.values()):
        ax = fig.add_subplot(rows, cols, i + 1, sharey=first)
        first = first or ax
        _draw_param(ax, data, info, first_col=i % cols == 0)
    if first is not None:
        _finish_loss_axis(first, data)
    return fig


def plot_experiment(trials: Trials | Sequence[Trial], *, space: Any = None,
                    title: str | None = None, ncols: int = 3,
                    loss_scale: LossScale | str = LossScale.AUTO) -> Figure:
    """The history panel across the top, the learning curves under it when trials reported
    any (``parzen.report``), then one panel per parameter: ``1 + n_params`` axes (one more
    with curves). ``space`` and ``loss_scale`` as in ``plot_params``."""
    data = _data(trials, space, loss_scale)
    n = len(data.infos)
    cols = max(1, min(ncols, n))
    rows = math.ceil(n / cols)
    top = 2 if any(t.intermediate for t in data.trials) else 1
    fig = _figure(max(PANEL_W * cols, 9.0), HISTORY_H * top + PANEL_H * rows + 0.5)
    grid = fig.add_gridspec(top + rows, cols,
                            height_ratios=[HISTORY_H] * top + [PANEL_H] * rows)
    history = fig.add_subplot(grid[0, :])
    _draw_history(history, data)
    if top == 2:
        _draw_curves(fig.add_subplot(grid[1, :]), data)
    for i, info in enumerate(data.infos.values()):
        r, c = divmod(i, cols)
        # One loss scale in every panel, so heights compare across parameters.
        _draw_param(fig.add_subplot(grid[top + r, c], sharey=history), data, info,
                    first_col=c == 0)
    _finish_loss_axis(history, data)
    fig.suptitle(title or _title(trials, data), fontsize=12, fontweight="bold")
    return fig


def plot_learning_curves(trials: Trials | Sequence[Trial], *, title: str | None = None,
                         loss_scale: LossScale | str = LossScale.AUTO) -> Figure:
    """Loss against step for every trial that reported (``parzen.report``): completed ones
    coloured by trial number, pruned ones grey, the best trial red. ``loss_scale`` as in
    ``plot_params``."""
    data = _data(trials, None, loss_scale)
    fig = _figure(9.0, HISTORY_H + 0.5)
    _draw_curves(fig.add_subplot(), data)
    fig.suptitle(title or _title(trials, data), fontsize=12, fontweight="bold")
    return fig


def _draw_curves(ax: Axes, d: _Data) -> None:
    _style(ax)
    ax.set_title("learning curves (parzen.report)", fontsize=10, loc="left")
    ax.set_title("grey: pruned, ending at x; colour = trial number; red: best", fontsize=8,
                 loc="right", color="#666666")
    ax.set_xlabel("step", fontsize=9)
    _loss_axis(ax, d, label=True)
    reported = [t for t in d.trials if t.intermediate]
    colors = list(_colors(d, reported)) if reported else []
    for t, color in zip(reported, colors, strict=True):
        curve = t.curve()
        steps, losses = [r.step for r in curve], [r.loss for r in curve]
        if t.state is TrialState.PRUNED:
            ax.plot(steps, losses, color=PRUNED_COLOR, linewidth=0.8, zorder=2)
            ax.scatter(steps[-1:], losses[-1:], marker="x", s=14, color=PRUNED_COLOR,
                       zorder=2)
        elif d.best is not None and t.tid == d.best.tid:
            ax.plot(steps, losses, color=BEST_COLOR, linewidth=2.0, zorder=4)
        else:
            ax.plot(steps, losses, color=color, linewidth=1.1, zorder=3)
    if not reported:
        ax.text(0.5, 0.5, "no trial has reported intermediate losses", ha="center",
                va="center", transform=ax.transAxes, color="#777777")


# ---- hyperopt's names ---------------------------------------------------------------------

def main_plot_history(trials: Trials | Sequence[Trial], do_show: bool = True,
                      status_colors: Any = None, title: str = "Loss History") -> Figure:
    """hyperopt's ``plotting.main_plot_history``: ``plot_history`` on a pyplot figure, shown
    with ``plt.show()`` unless ``do_show=False``. ``status_colors`` is accepted and ignored:
    failed trials are red crosses here."""
    return _shown(_history(trials, title, _pyplot_figure), do_show)


def main_plot_vars(trials: Trials | Sequence[Trial], do_show: bool = True,
                   fontsize: float = 10, colorize_best: Any = None, columns: int = 5,
                   arrange_by_loss: bool = False) -> Figure:
    """hyperopt's ``plotting.main_plot_vars``: ``plot_params`` on a pyplot figure with
    ``columns`` panels a row, shown unless ``do_show=False``. ``fontsize``,
    ``colorize_best`` and ``arrange_by_loss`` are accepted and ignored."""
    return _shown(_params(trials, None, columns, _pyplot_figure), do_show)


def main_plot_histogram(trials: Trials | Sequence[Trial], do_show: bool = True,
                        title: str = "Loss Histogram") -> Figure:
    """hyperopt's ``plotting.main_plot_histogram``: a histogram of the losses of the trials
    that succeeded, on a pyplot figure, shown unless ``do_show=False``."""
    data = _data(trials, None)
    fig = _pyplot_figure(PANEL_W * 1.6, HISTORY_H)
    ax = fig.add_subplot(1, 1, 1)
    _style(ax)
    losses = [float(t.loss) for t in data.ok if t.loss is not None and math.isfinite(t.loss)]
    if losses:
        ax.hist(losses, bins=min(50, max(5, int(math.sqrt(len(losses))))), color=LINE_COLOR,
                edgecolor="white")
    ax.set_xlabel("loss")
    ax.set_ylabel("trials")
    ax.set_title(f"{title} ({len(losses)} of {len(data.trials)} trials succeeded)",
                 fontsize=10)
    return _shown(fig, do_show)


def main_plot_1D_attachment(trials: Trials, attachment_name: str, do_show: bool = True,  # noqa: N802
                            colorize_by_loss: bool = True, max_darkness: float = 0.5,
                            num_trials: int | None = None,
                            preprocessing_fn: Callable[[Any], Any] = lambda x: x) -> Figure:
    """hyperopt's ``plotting.main_plot_1D_attachment``: for each trial with the attachment
    ``attachment_name`` (``trials.trial_attachments(trial)[name]``), the 1-D series
    ``preprocessing_fn(value)`` as a line, darker for lower losses when
    ``colorize_by_loss``; the first ``num_trials`` trials when given."""
    fig = _pyplot_figure(PANEL_W * 1.6, HISTORY_H)
    ax = fig.add_subplot(1, 1, 1)
    _style(ax)
    docs = list(trials.trials)[:num_trials]
    series = []
    for doc in docs:
        att = trials.trial_attachments(doc)
        if attachment_name in att:
            series.append((doc["result"].get("loss"),
                           np.asarray(preprocessing_fn(att[attachment_name]), dtype=float)))
    losses = [float(lo) for lo, _ in series if lo is not None]
    lo, hi = (min(losses), max(losses)) if losses else (0.0, 0.0)
    for loss, ys in series:
        shade = 0.0
        if colorize_by_loss and loss is not None and hi > lo:
            shade = max_darkness * (float(loss) - lo) / (hi - lo)
        ax.plot(np.arange(len(ys)), ys, color=(shade, shade, shade), linewidth=1)
    ax.set_title(f"{attachment_name} ({len(series)} trials)", fontsize=10)
    return _shown(fig, do_show)


def _shown(fig: Figure, do_show: bool) -> Figure:
    if do_show:
        import matplotlib.pyplot as plt

        plt.show()
    return fig


# ---- data ---------------------------------------------------------------------------------

def choose_loss_scale(losses: Sequence[float]) -> LossScale:
    """The loss axis ``"auto"`` draws, ``LOG`` or ``LINEAR``, from the finite losses.

    Log when every loss is positive and either they span a decade or more
    (``max / min >= LOG_SPAN``), or the best quarter of the trials is squashed: on the linear
    axis (whose top leaves out a few far-off losses, see ``_linear_top``) it would get at most
    ``SQUASHED`` times the height a log axis gives it. A log axis cannot show a loss <= 0, so
    any such loss means linear.
    """
    xs = sorted(x for x in losses if math.isfinite(x))
    if len(xs) < 2 or xs[0] <= 0:
        return LossScale.LINEAR
    lo, hi = xs[0], xs[-1]
    if hi / lo >= LOG_SPAN:
        return LossScale.LOG
    if len(xs) < 4 or hi == lo:
        return LossScale.LINEAR
    q25 = float(np.quantile(xs, 0.25))
    linear_share = (q25 - lo) / (_linear_top(xs) - lo)
    log_share = math.log(q25 / lo) / math.log(hi / lo)
    return LossScale.LOG if linear_share <= SQUASHED * log_share else LossScale.LINEAR


def _linear_top(losses: Sequence[float]) -> float:
    """The top of a linear loss axis: the highest loss, unless a few losses lie far above the
    rest (the highest is more than 5 times as far from the lowest as the 90th percentile),
    which then stay off the scale above the 90th percentile plus half its distance to the
    lowest."""
    lo, hi = min(losses), max(losses)
    if len(losses) < 10:
        return hi
    q90 = float(np.quantile(losses, 0.9))
    return q90 + 0.5 * (q90 - lo) if hi - lo > 5 * (q90 - lo) > 0 else hi


def _scale(value: LossScale | str, losses: Sequence[float]) -> LossScale:
    """The scale asked for, ``AUTO`` resolved; a log axis is refused for losses <= 0."""
    try:
        scale = LossScale(value)
    except ValueError:
        raise ConfigError(f"loss_scale={value!r}: use one of "
                          f"{', '.join(repr(s.value) for s in LossScale)}") from None
    if scale is LossScale.AUTO:
        return choose_loss_scale(losses)
    bad = [x for x in losses if x <= 0]
    if scale is LossScale.LOG and bad:
        raise ConfigError(
            f"a log loss axis cannot show losses <= 0, and {len(bad)} of {len(losses)} are "
            f"(the lowest is {min(bad):.4g}): draw it linear (parzen plot --linear, "
            "loss_scale='linear'), or make the objective return a positive loss (1 - accuracy "
            "rather than -accuracy)")
    return scale


def _data(trials: Trials | Sequence[Trial], space: Any,
          loss_scale: LossScale | str = LossScale.AUTO) -> _Data:
    if isinstance(trials, Trials):
        trials.refresh()
        if space is None:
            space = trials.space_description()
        rows = trials.all_trials()
    else:
        rows = sorted(trials, key=lambda t: t.tid)
    ok = [t for t in rows if t.loss is not None and math.isfinite(t.loss)]
    failed = [t for t in rows if t.state is TrialState.ERROR
              or (t.state is TrialState.DONE and t.loss is None)]
    best = min(ok, key=lambda t: (t.loss or 0.0, t.tid)) if ok else None
    losses = [float(t.loss) for t in ok if t.loss is not None]
    log_loss = _scale(loss_scale, losses) is LossScale.LOG
    tids = [t.tid for t in rows] or [0]
    return _Data(rows, ok, failed, best, parameter_infos(rows, space), log_loss,
                 (float(min(tids)), float(max(tids))))


def _title(trials: Trials | Sequence[Trial], d: _Data) -> str:
    key = trials.exp_key if isinstance(trials, Trials) else (
        d.trials[0].exp_key if d.trials else "")
    parts = [f"{len(d.ok)} done"]
    if d.failed:
        parts.append(f"{len(d.failed)} failed")
    pruned = sum(t.state is TrialState.PRUNED for t in d.trials)
    if pruned:
        parts.append(f"{pruned} pruned")
    if d.best is not None:
        parts.append(f"best loss {d.best.loss:.4g} (trial {d.best.tid})")
    return f"{key}: " + ", ".join(parts)


# ---- drawing ------------------------------------------------------------------------------

def _pyplot_figure(w: float, h: float) -> Figure:
    """A figure pyplot manages, for hyperopt's names, whose callers expect ``plt.show()``."""
    _figure(1, 1)  # the same error as everywhere without matplotlib
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(w, h), dpi=100, layout="constrained")


def _figure(w: float, h: float) -> Figure:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError("plotting needs matplotlib (parzen's plots extra): "
                          "pip install matplotlib") from None
    fig = Figure(figsize=(w, h), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _style(ax: Axes) -> None:
    ax.grid(True, color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8)


def _loss_axis(ax: Axes, d: _Data, label: bool) -> None:
    if d.log_loss:
        ax.set_yscale("log")
    if label:
        ax.set_ylabel("loss" + (" (log scale)" if d.log_loss else ""), fontsize=9)


def _colors(d: _Data, trials: Sequence[Trial]) -> Any:
    from matplotlib import colormaps

    lo, hi = d.tid_range
    span = hi - lo if hi > lo else 1.0
    return colormaps[CMAP]([0.05 + 0.85 * (t.tid - lo) / span for t in trials])


def _mark_failed(ax: Axes, xs: Sequence[float], label: str | None) -> None:
    if xs:
        ax.scatter(xs, [0.97] * len(xs), marker="x", s=28, linewidths=1.4, color=FAIL_COLOR,
                   transform=ax.get_xaxis_transform(), clip_on=False, zorder=4, label=label)


def _draw_history(ax: Axes, d: _Data) -> None:
    _style(ax)
    ax.set_title("loss by trial", fontsize=10, loc="left")
    ax.set_title("colour = trial number (dark: early, light: late), in every panel",
                 fontsize=8, loc="right", color="#666666")
    ax.set_xlabel("trial (tid)", fontsize=9)
    _loss_axis(ax, d, label=True)
    if not d.ok:
        ax.text(0.5, 0.5, "no trial has finished with a loss yet", ha="center",
                va="center", transform=ax.transAxes, color="#777777")
    else:
        tids = [t.tid for t in d.ok]
        losses = [float(t.loss or 0.0) for t in d.ok]
        ax.scatter(tids, losses, s=22, c=_colors(d, d.ok), edgecolors="white",
                   linewidths=0.4, zorder=3, label="trial")
        best_so_far = np.minimum.accumulate(losses)
        end = max(d.tid_range[1], tids[-1])
        ax.step([*tids, end], [*best_so_far, best_so_far[-1]], where="post",
                color=LINE_COLOR, linewidth=2, zorder=2, label="best so far")
    _mark_failed(ax, [t.tid for t in d.failed], f"failed ({len(d.failed)})")
    if d.best is not None:
        ax.scatter([d.best.tid], [float(d.best.loss or 0.0)], marker="*", s=180, color=BEST_COLOR,
                   edgecolors="white", linewidths=0.6, zorder=5,
                   label=f"best {d.best.loss:.4g} (trial {d.best.tid})")
    lo, hi = d.tid_range
    pad = max(1.0, 0.02 * (hi - lo))
    ax.set_xlim(lo - pad, hi + pad)
    if d.ok or d.failed:
        ax.legend(fontsize=8, loc="best", framealpha=0.9)


def _finish_loss_axis(ax: Axes, d: _Data) -> None:
    """Set the (shared) loss axis limits once every panel is drawn: on a linear axis, keep a
    few huge losses from flattening the rest; leave a band at the top for failed trials."""
    losses = [float(t.loss or 0.0) for t in d.ok]
    if not d.log_loss and losses:
        lo, top = min(losses), _linear_top(losses)
        if top < max(losses):
            ax.set_ylim(lo - 0.05 * (top - lo), top)
            n_out = sum(1 for v in losses if v > top)
            ax.text(0.01, 0.85 if d.failed else 0.97,
                    f"{n_out} losses above {top:.3g} are off the scale",
                    transform=ax.transAxes, fontsize=7, color="#777777", va="top")
    if d.failed and losses:
        lo, hi = ax.get_ylim()
        if d.log_loss:
            ax.set_ylim(lo, hi * (hi / lo) ** 0.14)
        else:
            ax.set_ylim(lo, hi + 0.14 * (hi - lo))


def _fit_x(ax: Axes, xs: Sequence[float], log: bool) -> None:
    """x limits covering every point, failed ones included (they are drawn in axes
    coordinates, which autoscaling ignores)."""
    if not xs:
        return
    lo, hi = min(xs), max(xs)
    if log:
        pad = (hi / lo) ** 0.05 if hi > lo else 2.0
        ax.set_xlim(lo / pad, hi * pad)
    else:
        pad = 0.05 * (hi - lo) if hi > lo else max(0.5, abs(lo) * 0.1)
        ax.set_xlim(lo - pad, hi + pad)


def _draw_param(ax: Axes, d: _Data, info: ParamInfo, first_col: bool) -> None:
    _style(ax)
    kind = f" ({info.kind})" if info.kind else ""
    ax.set_title(f"{info.label}{kind}", fontsize=10, loc="left")
    _loss_axis(ax, d, label=first_col)
    ok = [t for t in d.ok if t.params.get(info.label) is not None]
    failed = [t for t in d.failed if t.params.get(info.label) is not None]
    values = [t.params[info.label] for t in [*ok, *failed]]
    categorical = info.is_choice or any(isinstance(v, str) for v in values)
    rng = np.random.default_rng(0)  # fixed jitter: the same trials give the same picture
    if categorical:
        names = _categories(info, values)
        index = {v: i for i, v in enumerate(names)} if not info.is_choice else None

        def pos(v: Any) -> float:
            return float(int(v)) if index is None else float(index[v])

        x_ok = [pos(t.params[info.label]) + rng.uniform(-0.22, 0.22) for t in ok]
        x_failed = [pos(t.params[info.label]) + rng.uniform(-0.22, 0.22) for t in failed]
        labels = info.option_labels(40) if info.options else [str(n) for n in names]
        wrap = max(8, 48 // max(1, len(labels)))
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels([textwrap.fill(s, wrap, max_lines=3, placeholder="…")
                            for s in labels], fontsize=8)
        ax.set_xlim(-0.6, len(labels) - 0.4)
        for i in range(1, len(labels)):
            ax.axvline(i - 0.5, color="#e6e6e6", linewidth=0.8, zorder=1)
        ax.grid(False, axis="x")
        best_x = pos(d.best.params[info.label]) if d.best and _has(d.best, info) else None
    else:
        x_ok = [float(t.params[info.label]) for t in ok]
        x_failed = [float(t.params[info.label]) for t in failed]
        jitter = _jitter_width(info, [*x_ok, *x_failed])
        if jitter:
            x_ok = [x + rng.uniform(-jitter, jitter) for x in x_ok]
            x_failed = [x + rng.uniform(-jitter, jitter) for x in x_failed]
        log = info.is_log and all(x > 0 for x in [*x_ok, *x_failed])
        if log and x_ok + x_failed:
            ax.set_xscale("log")
        _fit_x(ax, [*x_ok, *x_failed], log)
        best_x = float(d.best.params[info.label]) if d.best and _has(d.best, info) else None
    if ok:
        ax.scatter(x_ok, [float(t.loss or 0.0) for t in ok], s=20, c=_colors(d, ok),
                   edgecolors="white", linewidths=0.4, alpha=0.9, zorder=3)
    else:
        ax.text(0.5, 0.5, "no finished trial uses it", ha="center", va="center",
                transform=ax.transAxes, color="#777777", fontsize=8)
    _mark_failed(ax, x_failed, None)
    if best_x is not None and d.best is not None:
        ax.scatter([best_x], [float(d.best.loss or 0.0)], marker="*", s=160, color=BEST_COLOR,
                   edgecolors="white", linewidths=0.6, zorder=5)


def _has(t: Trial | None, info: ParamInfo) -> bool:
    return t is not None and t.params.get(info.label) is not None


def _categories(info: ParamInfo, values: Sequence[Any]) -> list[Any]:
    if info.is_choice:
        n = len(info.options) or (max((int(v) for v in values), default=0) + 1)
        if not info.options:
            return list(range(n))
        return list(info.options)
    return sorted({v for v in values}, key=str)


def _jitter_width(info: ParamInfo, xs: Sequence[float]) -> float:
    """Half-width of the jitter for a quantised parameter (points on a grid overlap);
    zero for continuous ones and for log axes."""
    if info.is_log or len(xs) < 2:
        return 0.0
    grid = sorted(set(xs))
    if not info.is_quantized and len(grid) > len(xs) / 2:
        return 0.0
    steps = [b - a for a, b in zip(grid, grid[1:], strict=False) if b > a]
    return 0.12 * min(steps) if steps else 0.0
