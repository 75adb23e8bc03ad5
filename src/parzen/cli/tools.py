"""The experiment tools: ``parzen experiments | trials | best | status | errors | plot |
cancel | requeue | delete``.

Each reads a MongoDB store (``--mongo``, default ``$PARZEN_MONGO_URL``) or a local run's file
(``--file``, written by ``fmin(..., trials_save_file=...)``). Read-only commands work on
both; ``cancel`` and ``requeue`` on a file re-save it atomically; ``delete`` refuses a file
(remove the file instead). Tables go to people, ``--format json|csv`` to other programs.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
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
from parzen.cli._registry import command
from parzen.cli._source import Source, add_source_arguments, driver_state, experiment, opened
from parzen.exceptions import AllTrialsFailed, ConfigError, InvalidTrial
from parzen.export import Table, trial_table
from parzen.plotting import plot_experiment
from parzen.runners.celery.driver import Driver
from parzen.settings import TrialSettings
from parzen.space.described import evaluate
from parzen.store import Experiment, TrialStore, lease_seconds
from parzen.trial import STATUS_OK, Trial, TrialState

_NUMBER = re.compile(r"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?")
STATE_NAMES = {"new": TrialState.NEW, "queued": TrialState.NEW,
               "running": TrialState.RUNNING, "done": TrialState.DONE,
               "error": TrialState.ERROR, "failed": TrialState.ERROR,
               "cancel": TrialState.CANCEL, "cancelled": TrialState.CANCEL,
               "pruned": TrialState.PRUNED}
Run = Callable[[argparse.Namespace], int]


def _setup(p: argparse.ArgumentParser, run: Run, examples: str) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = "examples:\n" + examples
    p.set_defaults(run=_pipe_safe(run))


def _pipe_safe(run: Run) -> Run:
    """``parzen trials EXP | head`` closes the pipe early; that is not an error."""

    @functools.wraps(run)
    def wrapped(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except BrokenPipeError:
            try:  # silence the interpreter's own flush of stdout at exit
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            except (OSError, ValueError):
                pass
            return 0

    return wrapped


def _states(values: Sequence[str] | None) -> list[TrialState] | None:
    if not values:
        return None
    states = []
    for v in values:
        for name in v.split(","):
            name = name.strip().lower()
            if name not in STATE_NAMES:
                raise ConfigError(f"--state {name!r}: use one of {', '.join(STATE_NAMES)}")
            states.append(STATE_NAMES[name])
    return sorted(set(states))


def _emit_table(table: Table, fmt: str, digits: dict[str, int] | None = None) -> None:
    if fmt == "json":
        out(json_text(list(table.rows)))
    elif fmt == "csv":
        sys.stdout.write(csv_text(table))
    else:
        out(table_text(table, digits=digits, width=terminal_width()))


# ---- experiments --------------------------------------------------------------------------

@command("experiments", "list experiments: trial counts, best loss, last activity, coordinator")
def _configure_experiments(p: argparse.ArgumentParser) -> None:
    add_source_arguments(p, experiment=False)
    add_format_argument(p)
    _setup(p, run_experiments, "  parzen experiments --mongo mongodb://db.internal:27017/parzen\n"
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
                "exp_key": exp.exp_key, "done": counts[TrialState.DONE],
                "running": counts[TrialState.RUNNING], "queued": counts[TrialState.NEW],
                "failed": counts[TrialState.ERROR], "cancelled": counts[TrialState.CANCEL],
                "max_evals": exp.max_evals,
                "best_loss": best.loss if best is not None else None,
                "last_activity": last_activity(store, exp.exp_key),
                "coordinator": detail.split(" ")[0],  # alive, dead, gone or none
                "coordinator_detail": detail,
            })
    if args.format == "json":
        out(json_text(rows))
    elif args.format == "csv":
        cols = tuple(rows[0]) if rows else ("exp_key",)
        sys.stdout.write(csv_text(Table(cols, tuple(jsonable(r) for r in rows))))
    elif not rows:
        out(f"no experiments in {src.where}")
    else:
        header = ["EXPERIMENT", "DONE", "RUNNING", "QUEUED", "FAILED", "CANCELLED", "BEST LOSS",
                "LAST ACTIVITY", "COORDINATOR"]
        text = [[r["exp_key"], str(r["done"]), str(r["running"]), str(r["queued"]),
                 str(r["failed"]), str(r["cancelled"]), number(r["best_loss"], 6),
                 ago(r["last_activity"], now), _short_driver(r)] for r in rows]
        out(render_table(header, text, right=header[1:7], width=terminal_width()))
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

@command("trials", "list the trials of an experiment: state, loss, duration, worker, parameters")
def _configure_trials(p: argparse.ArgumentParser) -> None:
    add_source_arguments(p)
    p.add_argument("--state", action="append", metavar="STATE",
                   help="only trials in STATE: queued, running, done, failed, cancelled, pruned "
                        "(repeat, or separate with commas)")
    p.add_argument("--sort", choices=["tid", "loss"], default="tid",
                   help="order by tid (default) or by loss (trials without a loss last, "
                        "with --desc too)")
    p.add_argument("--desc", action="store_true", help="reverse the order")
    p.add_argument("--limit", type=int, metavar="N", help="at most N trials")
    add_format_argument(p)
    _setup(p, run_trials, "  parzen trials mnist --sort loss --limit 10\n"
                          "  parzen trials mnist --state failed,running\n"
                          "  parzen trials --file run.pkl --format csv > trials.csv\n")


def run_trials(args: argparse.Namespace) -> int:
    if args.limit is not None and args.limit < 0:
        raise ConfigError(f"--limit must be >= 0, got {args.limit}")
    states = _states(args.state)
    with opened(args) as src:
        exp = experiment(src, args.exp)
        rows = src.store.find(exp.exp_key, states=states, limit=args.limit, sort=args.sort,
                              descending=args.desc)
        table = trial_table(rows, src.space(exp))
        if args.format == "table":
            counts = src.store.count_by_state(exp.exp_key)
            total = sum(n for s, n in counts.items() if states is None or s in states)
    _emit_table(table, args.format, {"loss": 6, "duration_s": 3})
    if args.format == "table":
        if not rows:
            out(f"(no trials{' in state ' + ', '.join(args.state) if args.state else ''})")
        elif len(rows) < total:
            out(f"({len(rows)} of {total} trials shown)")
    return 0


# ---- best ---------------------------------------------------------------------------------

@command("best", "show the best trial: loss, raw parameters, and their space_eval values")
def _configure_best(p: argparse.ArgumentParser) -> None:
    add_source_arguments(p)
    add_format_argument(p, ("table", "json"))
    _setup(p, run_best, "  parzen best mnist\n"
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
                f"({counts[TrialState.ERROR]} failed, {counts[TrialState.RUNNING]} running, "
                f"{counts[TrialState.NEW]} queued); see parzen errors / parzen status")
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

@command("status", "show progress: counts, throughput, workers, running trials, leases, ETA")
def _configure_status(p: argparse.ArgumentParser) -> None:
    add_source_arguments(p)
    p.add_argument("--watch", action="store_true",
                   help="refresh until the run ends (nothing queued or running and no "
                        "coordinator), or Ctrl-C")
    p.add_argument("--interval", type=float, default=2.0, metavar="S",
                   help="seconds between refreshes with --watch (default 2)")
    p.add_argument("--window", type=float, default=10.0, metavar="MIN",
                   help="minutes of history for throughput and workers (default 10)")
    add_format_argument(p, ("table", "json"))
    _setup(p, run_status, "  parzen status mnist\n"
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
                f"{snap.counts[TrialState.ERROR]} failed")
    return 0


def _sleep(seconds: float) -> None:  # a seam for the tests
    time.sleep(seconds)


def _compact_json(obj: Any) -> str:
    return json.dumps(jsonable(obj), allow_nan=False, separators=(",", ":"))


# ---- errors -------------------------------------------------------------------------------

@command("errors", "group failed trials by exception type, with one traceback per group")
def _configure_errors(p: argparse.ArgumentParser) -> None:
    add_source_arguments(p)
    add_format_argument(p, ("table", "json"))
    _setup(p, run_errors, "  parzen errors mnist\n"
                          "  parzen errors mnist --format json | jq '.[].count'\n")


def run_errors(args: argparse.Namespace) -> int:
    with opened(args) as src:
        exp = experiment(src, args.exp)
        failed = src.store.find(exp.exp_key, states=[TrialState.ERROR])
        status_fail = sum(1 for t in src.store.find(exp.exp_key, states=[TrialState.DONE])
                          if t.result.get("status") != STATUS_OK)
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
    if args.format == "json":
        out(json_text(docs))
        return 0
    if not docs:
        out(f"no failed trials in {exp.exp_key!r}"
            + (f" ({status_fail} returned status fail)" if status_fail else ""))
        return 0
    lines = [f"{len(failed)} failed trials of {exp.exp_key!r} in {len(docs)} "
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


# ---- plot ---------------------------------------------------------------------------------

@command("plot", "plot loss by trial and loss against each parameter to an image file")
def _configure_plot(p: argparse.ArgumentParser) -> None:
    add_source_arguments(p)
    p.add_argument("--out", required=True, metavar="FILE",
                   help="the image to write: .png (or .svg, .pdf)")
    p.add_argument("--dpi", type=int, default=110, help="resolution of a .png (default 110)")
    _setup(p, run_plot, "  parzen plot mnist --out mnist.png\n"
                        "  parzen plot --file run.pkl --out run.svg\n"
                        "needs matplotlib: pip install 'parzen[plots]'\n")


def run_plot(args: argparse.Namespace) -> int:
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # font cache chatter
    with opened(args) as src:
        exp = experiment(src, args.exp)
        rows = src.store.find(exp.exp_key)
        space = src.space(exp)
    fig = plot_experiment(rows, space=space, title=None)
    try:
        fig.savefig(args.out, dpi=args.dpi)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--out {args.out}: {exc}") from None
    out(f"wrote {args.out}: {len(fig.axes)} panels, {len(rows)} trials")
    return 0


# ---- cancel / requeue / delete ------------------------------------------------------------

@command("cancel", "cancel the queued trials of an experiment (and, with no coordinator, "
                   "the running ones whose worker died)")
def _configure_cancel(p: argparse.ArgumentParser) -> None:
    add_source_arguments(p)
    _setup(p, run_cancel, "  parzen cancel mnist\n")


def run_cancel(args: argparse.Namespace) -> int:
    with opened(args) as src:
        exp = experiment(src, args.exp)
        alive, detail = driver_state(exp, src.store.now())
        expired: list[Trial] = []
        max_attempts = TrialSettings.from_dict(exp.settings).max_attempts
        if not alive:
            # A running trial whose worker died (by the reaper's rule) is as good as queued:
            # the next coordinator requeues it first thing, so it is cancelled with the
            # queue. A live coordinator's reaper requeues (and runs) such trials itself.
            expired = src.store.requeue_expired(exp.exp_key, max_attempts, lease_seconds(exp))
        n = src.store.cancel(exp.exp_key, (TrialState.NEW,))
        src.save()
        was_running = sum(1 for t in expired if t.state is TrialState.NEW)
        out(f"cancelled {n} queued trial{'s' if n != 1 else ''} of {exp.exp_key!r}"
            + (f" ({was_running} of them were running on workers whose lease had expired)"
               if was_running else "")
            + (f"; {len(expired) - was_running} expired trials failed for good after "
               f"{max_attempts} attempts" if len(expired) > was_running else ""))
        if alive:
            print(f"note: its coordinator is still running ({detail}) and queues new trials; "
                  "stop that fmin to end the run", file=sys.stderr)
    return 0


@command("requeue", "give finished trials (failed ones by default) another try")
def _configure_requeue(p: argparse.ArgumentParser) -> None:
    add_source_arguments(p)
    p.add_argument("--state", action="append", metavar="STATE",
                   help="requeue trials in STATE: failed (default), cancelled or done "
                        "(repeat, or separate with commas)")
    p.add_argument("--expired", action="store_true",
                   help="instead, put running trials whose lease expired (their worker died) "
                        "back in the queue, as a live coordinator would")
    _setup(p, run_requeue, "  parzen requeue mnist --state error\n"
                           "  parzen requeue mnist --expired\n"
                           "  parzen requeue --file run.pkl   # then resume the fmin\n")


def run_requeue(args: argparse.Namespace) -> int:
    states = _states(args.state) or [TrialState.ERROR]
    bad = [s.name.lower() for s in states if not s.is_finished()]
    if bad:
        raise ConfigError(f"--state {', '.join(bad)}: only finished trials (failed, cancelled, "
                          "done) can be requeued")
    with opened(args) as src:
        exp = experiment(src, args.exp)
        if args.expired:
            if args.state:
                raise ConfigError("--expired requeues running trials; leave out --state")
            max_attempts = TrialSettings.from_dict(exp.settings).max_attempts
            changed = src.store.requeue_expired(exp.exp_key, max_attempts, lease_seconds(exp))
            src.save()
            n = sum(1 for t in changed if t.state is TrialState.NEW)
            out(f"requeued {n} trials of {exp.exp_key!r} whose lease expired"
                + (f"; {len(changed) - n} failed for good after {max_attempts} attempts"
                   if len(changed) > n else ""))
        else:
            n = _requeue_finished(src, exp, states)
            src.save()
            words = "/".join(s.name.lower() for s in states)
            out(f"requeued {n} {words} trial{'s' if n != 1 else ''} of {exp.exp_key!r}")
        alive, _ = driver_state(exp, src.store.now())
        if n and not alive:
            # Only a coordinator publishes trials: without one they wait in the store.
            how = (f"fmin(..., trials_save_file={src.file!r})" if src.file else
                   f"fmin with MongoTrials(..., exp_key={exp.exp_key!r})")
            print(f"note: no coordinator is running; the trials run when you resume {how}",
                  file=sys.stderr)
    return 0


def _requeue_finished(src: Source, exp: Experiment, states: Sequence[TrialState]) -> int:
    """Requeue ``exp``'s trials in ``states``, refused while a coordinator drives it.

    A live coordinator reads back only the trials it queued itself and cancels every NEW
    trial when it ends: trials requeued under it would never run, and their results would be
    lost. The driver lease is held while requeueing, so no coordinator starts (and reads the
    experiment) halfway through.

    Raises:
        ConfigError: a live coordinator drives the experiment.
        ExperimentLocked: a coordinator took the experiment since it was read.
    """
    key = exp.exp_key
    alive, detail = driver_state(exp, src.store.now())
    if alive:
        raise ConfigError(
            f"{key!r} has a live coordinator ({detail}); stop its fmin first, then requeue "
            "and resume it: a running coordinator never runs trials requeued under it and "
            f"cancels them when it ends. (parzen requeue {key} --expired is safe meanwhile; "
            "the coordinator requeues expired leases itself)")
    if src.file is not None:
        # A local run has no driver lease; save() refuses a file an fmin changed meanwhile.
        return src.store.requeue(key, states)
    driver = Driver(src.store, key)
    driver.acquire()
    try:
        return src.store.requeue(key, states)
    finally:
        driver.release()


@command("delete", "delete an experiment: its trials, its document and its GridFS payload")
def _configure_delete(p: argparse.ArgumentParser) -> None:
    add_source_arguments(p)
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _setup(p, run_delete, "  parzen delete old-mnist\n  parzen delete old-mnist --yes\n")


def run_delete(args: argparse.Namespace) -> int:
    if args.file:
        raise ConfigError(f"a local run is just its file: remove {args.file} to delete it")
    if args.exp is None:
        raise ConfigError("name the experiment to delete (EXP is required here)")
    with opened(args) as src:
        exp = experiment(src, args.exp)
        alive, detail = driver_state(exp, src.store.now())
        if alive:
            raise ConfigError(f"{exp.exp_key!r} has a live coordinator ({detail}); stop its "
                              "fmin first")
        n = sum(src.store.count_by_state(exp.exp_key).values())
        pid = exp.objective.payload_id if exp.objective is not None else None
        payloads = [str(pid)] if pid else []
        what = (f"experiment {exp.exp_key!r} in {src.where} ({n} trials"
                + (f", {len(payloads)} objective payload)" if payloads else ")"))
        if not args.yes and not _confirm(f"delete {what}?"):
            print("nothing deleted", file=sys.stderr)
            return 1
        for pid in payloads:
            src.store.delete_payload(pid)
        removed = src.store.delete_experiment(exp.exp_key)
        out(f"deleted {exp.exp_key!r}: {removed} trials"
            + (f", {len(payloads)} payload" if payloads else ""))
    return 0


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        raise ConfigError(f"refusing to {question.rstrip('?')} without confirmation: stdin is "
                          "not a terminal; pass --yes")
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")
