"""The experiment tools that read: ``parzen experiments | trials | best | status | errors |
plot`` (the ones that change an experiment are in ``mutate.py``).

Each reads a MongoDB store (``--mongo``, default ``$PARZEN_MONGO_URL``) or a local run's file
(``--file``, written by ``fmin(..., trials_save_file=...)``). Tables go to people,
``--format json|csv`` to other programs.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from parzen.cli import _status
from parzen.cli._format import (
    add_format_argument,
    ago,
    cell,
    csv_text,
    duration,
    json_text,
    jsonable,
    number,
    out,
    render_table,
    table_text,
    terminal_width,
    timestamp,
)
from parzen.cli._registry import ALIAS_WORDS, STATE_WORDS, command, parse_states, setup
from parzen.cli._source import add_source_arguments, driver_state, experiment, opened
from parzen.exceptions import AllTrialsFailed, ConfigError, InvalidTrial
from parzen.export import Table, trial_table
from parzen.plotting import LossScale, plot_experiment
from parzen.space.described import evaluate
from parzen.store import TrialStore
from parzen.trial import STATUS_OK, Trial, TrialState

_NUMBER = re.compile(r"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?")


def _state_counts(counts: Mapping[TrialState, int]) -> dict[str, int]:
    """``{"new": 2, "running": 3, "done": 40, "error": 1, "cancel": 0}``: the counts under
    the states' own names, in lifecycle order (the keys of JSON and of table columns)."""
    return {s.word: counts.get(s, 0) for s in TrialState}


def _emit_table(table: Table, fmt: str, digits: dict[str, int] | None = None) -> None:
    if fmt == "json":
        out(json_text(list(table.rows)))
    elif fmt == "csv":
        sys.stdout.write(csv_text(table))
    else:
        out(table_text(table, digits=digits, width=terminal_width()))


# ---- experiments --------------------------------------------------------------------------

@command("experiments")
def _configure_experiments(p: argparse.ArgumentParser) -> None:
    add_source_arguments(p, experiment=False)
    add_format_argument(p)
    setup(p, run_experiments, "  parzen experiments --mongo mongodb://db.internal:27017/parzen\n"
                              "  parzen experiments --format json | jq '.[].exp_key'\n")


def run_experiments(args: argparse.Namespace) -> int:
    with opened(args) as src:
        store = src.store
        exps = ([experiment(src, None)] if src.trials is not None
                else store.list_experiments())
        now = store.now()
        rows: list[dict[str, Any]] = []
        for exp in exps:
            counts = store.count_by_state(exp.exp_key)
            best = next(iter(store.find(exp.exp_key, states=[TrialState.DONE], sort="loss",
                                        limit=1)), None)
            _, detail = driver_state(exp, now)
            rows.append({
                "exp_key": exp.exp_key, **_state_counts(counts),
                "max_evals": exp.max_evals,
                "best_loss": best.loss if best is not None else None,
                "last_activity": last_activity(store, exp.exp_key),
                "coordinator": detail.split(" ")[0],  # alive, dead, gone or none
                "coordinator_detail": detail,
            })
        # Read after the trials, and never before the newest time they hold (each process
        # estimates the store's clock): a last activity is never "in 0.19s" (see _status).
        now = max([store.now(), *(r["last_activity"] for r in rows if r["last_activity"])])
    if args.format == "json":
        out(json_text(rows))
    elif args.format == "csv":
        cols = tuple(rows[0]) if rows else ("exp_key",)
        sys.stdout.write(csv_text(Table(cols, tuple(jsonable(r) for r in rows))))
    elif not rows:
        out(f"no experiments in {src.where}")
    else:
        words = [s.word for s in TrialState]
        header = ["EXPERIMENT", *(w.upper() for w in words), "BEST LOSS", "LAST ACTIVITY",
                  "COORDINATOR"]
        text = [[r["exp_key"], *(str(r[w]) for w in words), number(r["best_loss"], 6),
                 ago(r["last_activity"], now), _short_driver(r)] for r in rows]
        out(render_table(header, text, right=header[1:1 + len(words)],
                         width=terminal_width()))
    return 0


def _short_driver(row: dict[str, Any]) -> str:
    """``alive (pid 1 on host)``, ``dead``, ``gone`` or ``none``; the details are for status."""
    detail: str = row["coordinator_detail"]
    return detail.split(",")[0] + ")" if row["coordinator"] == "alive" else row["coordinator"]


def last_activity(store: TrialStore, exp_key: str, recent: int = 50) -> datetime | None:
    """When a trial of ``exp_key`` last changed: the latest heartbeat of a running trial, or
    the latest end, claim or creation among the newest ``recent`` trials (the store cannot
    sort by time; newer tids are the ones that change last)."""
    times: list[datetime] = []
    for t in [*store.find(exp_key, states=[TrialState.RUNNING]),
              *store.find(exp_key, sort="tid", descending=True, limit=recent)]:
        times += [x for x in (t.end_time, t.heartbeat_time, t.book_time, t.created)
                  if x is not None]
    return max((_status.as_utc(x) for x in times), default=None)


# ---- trials -------------------------------------------------------------------------------

@command("trials")
def _configure_trials(p: argparse.ArgumentParser) -> None:
    add_source_arguments(p)
    p.add_argument("--state", action="append", metavar="STATE",
                   help=f"only trials in STATE: {STATE_WORDS} (repeat, or separate with "
                        f"commas; also accepted: {ALIAS_WORDS})")
    p.add_argument("--sort", choices=["tid", "loss"], default="tid",
                   help="order by tid (default) or by loss (trials without a loss last, "
                        "with --desc too)")
    p.add_argument("--desc", action="store_true", help="reverse the order")
    p.add_argument("--limit", type=int, metavar="N", help="at most N trials")
    p.add_argument("--worker", metavar="NAME",
                   help="only trials run (or running) by worker NAME (its --name)")
    add_format_argument(p)
    setup(p, run_trials, "  parzen trials mnist --sort loss --limit 10\n"
                         "  parzen trials mnist --state error,running\n"
                         "  parzen trials mnist --worker gpu-node-3 --state error\n"
                         "  parzen trials --file run.pkl --format csv > trials.csv\n")


def run_trials(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 0:
        raise ConfigError(f"--limit must be >= 0, got {args.limit}")
    states = parse_states(args.state)
    with opened(args) as src:
        exp = experiment(src, args.exp)
        if args.worker is None:
            rows = src.store.find(exp.exp_key, states=states, limit=args.limit,
                                  sort=args.sort, descending=args.desc)
            if args.format == "table":
                counts = src.store.count_by_state(exp.exp_key)
                total = sum(n for s, n in counts.items() if states is None or s in states)
        else:  # the store filters by state only: the worker's trials are picked here
            rows = []
            workers: set[str] = set()
            for t in src.store.find(exp.exp_key, states=states, sort=args.sort,
                                    descending=args.desc):
                workers.add(t.owner.worker if t.owner is not None else "")
                if t.owner is not None and t.owner.worker == args.worker:
                    rows.append(t)
            total = len(rows)
            rows = rows[:args.limit]
            if not rows and args.format == "table":
                names = ", ".join(sorted(w for w in workers if w)) or "none"
                print(f"note: no trial has worker {args.worker!r}; the workers of these "
                      f"trials: {names}", file=sys.stderr)
        table = trial_table(rows, src.space(exp))
    if args.format == "table" and not any(r["step"] is not None for r in table.rows):
        # People read the table: a column of dashes for objectives that never call
        # parzen.report is noise. json and csv keep every column, for scripts.
        table = Table(tuple(c for c in table.columns if c != "step"), table.rows)
    _emit_table(table, args.format, {"loss": 6, "duration_s": 3})
    if args.format == "table":
        if not rows:
            shown = ", ".join(s.word for s in states) if states else ""
            out(f"(no trials{' in state ' + shown if shown else ''}"
                f"{f' of worker {args.worker!r}' if args.worker else ''})")
        elif len(rows) < total:
            out(f"({len(rows)} of {total} trials shown)")
    return 0


# ---- best ---------------------------------------------------------------------------------

@command("best")
def _configure_best(p: argparse.ArgumentParser) -> None:
    add_source_arguments(p)
    add_format_argument(p, ("table", "json"))
    setup(p, run_best, "  parzen best mnist\n"
                       "  parzen best --file run.pkl --format json | jq .value\n")


def run_best(args: argparse.Namespace) -> int:
    with opened(args) as src:
        exp = experiment(src, args.exp)
        found = src.store.find(exp.exp_key, states=[TrialState.DONE], sort="loss", limit=1)
        best = found[0] if found and found[0].loss is not None else None
        if best is None:
            counts = src.store.count_by_state(exp.exp_key)
            raise AllTrialsFailed(
                f"no trial of {exp.exp_key!r} has finished with a loss yet "
                f"({counts[TrialState.ERROR]} error, {counts[TrialState.RUNNING]} running, "
                f"{counts[TrialState.NEW]} new); see parzen errors / parzen status")
        space = src.space(exp)
    value: Any = None
    why = ""
    if space:
        try:
            value = evaluate(space, best.params)
        except InvalidTrial as exc:
            why = f"space_eval failed: {exc}"
    else:
        why = ("unavailable: no space description is stored for this experiment (a file "
               "written before parzen stored it, or an experiment created outside fmin)")
    extra = {k: v for k, v in best.result.items() if k not in ("loss", "status")}
    doc = {"exp_key": exp.exp_key, "tid": best.tid, "loss": best.loss,
           "duration_s": best.duration, "worker": best.owner.worker if best.owner else None,
           "end_time": best.end_time, "params": dict(best.params),
           "value": value if not why else None, "result": extra}
    if args.format == "json":
        out(json_text(doc))
        return 0
    lines = [f"best trial of {exp.exp_key!r}: tid {best.tid}, loss {number(best.loss, 8)}",
             f"  finished {timestamp(best.end_time)} after {duration(best.duration)}"
             + (f" on worker {best.owner.worker}" if best.owner else ""), "",
             "parameters (raw trial values; a choice is its option index):"]
    width = max(len(k) for k in best.params) if best.params else 0
    lines += [f"  {k.ljust(width)}  {cell(v, 8)}" for k, v in best.params.items()]
    lines += ["", "value (space_eval: what the objective was called with):"]
    lines += ["  " + line for line in
              (json_text(value).splitlines() if not why else [why])]
    if extra:
        lines += ["", "other result keys:"]
        lines += ["  " + line for line in json_text(extra).splitlines()]
    out("\n".join(lines))
    return 0


# ---- status -------------------------------------------------------------------------------

@command("status")
def _configure_status(p: argparse.ArgumentParser) -> None:
    add_source_arguments(p)
    p.add_argument("--watch", action="store_true",
                   help="refresh until the run ends (nothing new or running and no "
                        "coordinator), or Ctrl-C")
    p.add_argument("--interval", type=float, default=2.0, metavar="S",
                   help="seconds between refreshes with --watch (default 2)")
    p.add_argument("--window", type=float, default=10.0, metavar="MIN",
                   help="minutes of history for throughput and workers (default 10)")
    add_format_argument(p, ("table", "json"))
    setup(p, run_status, "  parzen status mnist\n"
                         "  parzen status mnist --watch --interval 5\n"
                         "  parzen status mnist --format json | jq .eta_s\n")


def run_status(args: argparse.Namespace) -> int:
    if not args.interval > 0 or not args.window > 0:
        raise ConfigError("--interval and --window must be > 0")
    tty = sys.stdout.isatty()
    with opened(args) as src:
        exp = experiment(src, args.exp)

        def read() -> _status.Snapshot:
            return _status.gather(src.store, exp, 60.0 * args.window)

        def show(snap: _status.Snapshot) -> None:
            if args.format == "json":
                out(json_text(snap.to_dict()) if not args.watch else
                    _compact_json(snap.to_dict()))
            elif args.watch and tty:
                # Home the cursor and clear, so the screen redraws in place.
                out("\x1b[H\x1b[2J" + _status.render(snap, terminal_width())
                    + f"\n\nrefreshing every {args.interval:g}s; Ctrl-C to stop")
            else:
                out(_status.render(snap, terminal_width()) + ("\n" if args.watch else ""))

        if not args.watch:
            show(read())
            return 0
        try:
            snap = _status.watch(read, show, _sleep, args.interval)
        except KeyboardInterrupt:
            return 0
        if args.format != "json":
            out(f"run ended: {snap.counts[TrialState.DONE]} done, "
                f"{snap.counts[TrialState.ERROR]} error")
    return 0


def _sleep(seconds: float) -> None:  # a seam for the tests
    time.sleep(seconds)


def _compact_json(obj: Any) -> str:
    return json.dumps(jsonable(obj), allow_nan=False, separators=(",", ":"))


# ---- errors -------------------------------------------------------------------------------

@command("errors")
def _configure_errors(p: argparse.ArgumentParser) -> None:
    add_source_arguments(p)
    add_format_argument(p, ("table", "json"))
    setup(p, run_errors, "  parzen errors mnist\n"
                         "  parzen errors mnist --format json | jq '.[].count'\n")


def run_errors(args: argparse.Namespace) -> int:
    with opened(args) as src:
        exp = experiment(src, args.exp)
        failed = src.store.find(exp.exp_key, states=[TrialState.ERROR])
        status_fail = sum(1 for t in src.store.find(exp.exp_key, states=[TrialState.DONE])
                          if t.result.get("status") != STATUS_OK)
    docs = error_groups(failed)
    if args.format == "json":
        out(json_text(docs))
        return 0
    if not docs:
        out(f"no error trials in {exp.exp_key!r}"
            + (f" ({status_fail} returned status fail)" if status_fail else ""))
        return 0
    lines = [f"{len(failed)} error trials of {exp.exp_key!r} in {len(docs)} "
             f"group{'s' if len(docs) > 1 else ''}"]
    for d in docs:
        tids = ", ".join(str(t) for t in d["tids"][:12]) + (" ..." if d["count"] > 12 else "")
        lines += ["", f"== {d['type']}: {d['count']} trial{'s' if d['count'] > 1 else ''} "
                      f"(tids {tids})"]
        for m in d["messages"][:3]:
            similar = " (and similar)" if m["distinct"] > 1 else ""
            lines.append(f"   {m['count']:>4} x  {m['message'] or '(no message)'}{similar}")
        if len(d["messages"]) > 3:
            lines.append(f"        ... {len(d['messages']) - 3} other messages")
        if d["traceback"]:
            lines.append(f"   traceback of trial {d['example_tid']}:")
            lines += ["     " + line for line in d["traceback"].rstrip().splitlines()]
        else:
            lines.append("   (no traceback recorded: the worker died or its lease expired)")
    if status_fail:
        lines += ["", f"also: {status_fail} trials returned status fail (done, without a loss)"]
    out("\n".join(lines))
    return 0


def error_groups(failed: Sequence[Trial]) -> list[dict[str, Any]]:
    """Failed trials grouped by exception type, most frequent first, each with its messages
    (those differing only in numbers counted as one) and one traceback: ``parzen errors
    --format json``, and the dashboard's errors view."""
    groups: dict[str, list[Trial]] = {}
    for t in failed:
        groups.setdefault(t.error.type if t.error else "unknown", []).append(t)
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    docs: list[dict[str, Any]] = []
    for etype, ts in ordered:
        # Messages that differ only in numbers ("nan at lr=0.05") are one kind of failure.
        shapes: dict[str, list[str]] = {}
        for t in ts:
            message = t.error.message if t.error else ""
            shapes.setdefault(_NUMBER.sub("#", message), []).append(message)
        messages = sorted(shapes.items(), key=lambda kv: -len(kv[1]))
        example = next((t for t in ts if t.error and t.error.traceback), ts[0])
        docs.append({"type": etype, "count": len(ts), "tids": [t.tid for t in ts],
                     "messages": [{"message": ms[0], "count": len(ms), "pattern": shape,
                                   "distinct": len(set(ms))} for shape, ms in messages],
                     "example_tid": example.tid,
                     "traceback": example.error.traceback if example.error else ""})
    return docs


# ---- plot ---------------------------------------------------------------------------------

@command("plot")
def _configure_plot(p: argparse.ArgumentParser) -> None:
    add_source_arguments(p)
    p.add_argument("--out", required=True, metavar="FILE",
                   help="the image to write: .png (or .svg, .pdf)")
    p.add_argument("--dpi", type=int, default=110, help="resolution of a .png (default 110)")
    scale = p.add_mutually_exclusive_group()
    scale.add_argument("--log", dest="loss_scale", action="store_const",
                       const=LossScale.LOG.value, default=LossScale.AUTO.value,
                       help="a logarithmic loss axis (every loss must be positive)")
    scale.add_argument("--linear", dest="loss_scale", action="store_const",
                       const=LossScale.LINEAR.value,
                       help="a linear loss axis. Default: log when every loss is positive and "
                            "they span a decade or more, or when a linear axis would squash "
                            "the best quarter of the trials at the bottom; else linear")
    setup(p, run_plot, "  parzen plot mnist --out mnist.png\n"
                       "  parzen plot --file run.pkl --out run.svg --linear\n"
                       "needs matplotlib (the plots extra): pip install matplotlib\n")


def run_plot(args: argparse.Namespace) -> int:
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # font cache chatter
    with opened(args) as src:
        exp = experiment(src, args.exp)
        rows = src.store.find(exp.exp_key)
        space = src.space(exp)
    fig = plot_experiment(rows, space=space, title=None, loss_scale=args.loss_scale)
    try:
        fig.savefig(args.out, dpi=args.dpi)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--out {args.out}: {exc}") from None
    out(f"wrote {args.out}: {len(fig.axes)} panels, {len(rows)} trials")
    return 0
