"""The dashboard's read model: each experiment's trials, kept current by reading only what can
have changed, and what the pages show, computed from them.

Reading follows the coordinator's rule (``Trials.refresh``): the whole experiment once, then
on each refresh only the trials in flight (queued or running) and the tids the counter has
handed out since (``Experiment.next_tid``; ``insert_new`` keeps the counter ahead of every
inserted tid). A finished trial changes only by an operator (``parzen requeue``, ``delete``)
or a program writing the database. ``count_by_state``, read after a refresh at most every
``COUNT_CHECK_S``, tells: when the store counts fewer trials in a finished state than this
view holds, or fewer trials in all, or more for ``MISMATCHES_BEFORE_READ`` checks in a row
(trials inserted under tids behind the counter), the experiment is read again whole, and only
the trials that differ are passed on to the pages.

Each change is numbered (``seq``); a page asks for the changes since the number it holds and
receives only those, so a poll costs what changed, not the experiment's size. Rows travel
column by column (one JSON array per column): a page's first answer, every trial, is then
encoded a block of ``BLOCK`` trials at a time and kept, so the next page's first answer joins
the blocks and encodes again only those whose trials changed since.
"""

from __future__ import annotations

import bisect
import json
import math
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import takewhile
from typing import Any

from parzen.cli import _status
from parzen.cli._source import driver_state
from parzen.cli.dashboard.importance import importances
from parzen.cli.tools import error_groups, last_activity
from parzen.export import trial_table
from parzen.space.described import ParamInfo, params_of
from parzen.store import Experiment, TrialStore, lease_ended, lease_seconds
from parzen.trial import Trial, TrialState

# A refresh reads the store at most this often per experiment, whoever asks (pages poll
# twice a second, so a result is on every page within about a second).
REFRESH_S = 0.25
# Trials that finished within this window count as a worker's recent activity (as in
# ``parzen status``'s default window).
WORKER_WINDOW_S = 600.0
MISMATCHES_BEFORE_READ = 3
# The counts are compared at most this often: they only reveal an operator's change to
# finished trials, and on a store without a covering index they cost a scan.
COUNT_CHECK_S = 5.0
# Tids handed out but not inserted (yet) are looked for this long, then left to the count.
GAP_PATIENCE_S = 60.0
# Beyond this many new tids at once, one read of the whole experiment is cheaper.
MAX_NEW_TIDS = 5000
# Trials per block of the encoded first answer (by tid): a result re-encodes its block only.
BLOCK = 1024
# From this many trials changed at once, the list of end times is sorted once, not inserted
# into trial by trial.
BULK = 64
FINISHED = tuple(s for s in TrialState if s.is_finished())
PENDING = frozenset(s for s in TrialState if s.is_pending())


def epoch(when: datetime | None) -> float | None:
    """Seconds since the epoch (what the page's clock speaks), or None."""
    return None if when is None else _status.as_utc(when).timestamp()


def learning_curve(t: Trial) -> list[list[float]] | None:
    """HOOK for issue 20 (pruning): the trial's intermediate values as ``[[step, value], ...]``.

    Trials carry no intermediate values until issue 20 stores them; this reads an attribute
    ``intermediate`` (a mapping step -> value, or a sequence of (step, value) pairs) when a
    trial has one, so the curves view fills in once they exist. Until then it returns None
    and the page says that no trial reported intermediate values.
    """
    values = getattr(t, "intermediate", None)
    if not values:
        return None
    pairs = values.items() if isinstance(values, Mapping) else values
    curve = [[float(step), float(v)] for step, v in pairs]
    return [p for p in curve if math.isfinite(p[0]) and math.isfinite(p[1])] or None


def param_meta(infos: Mapping[str, ParamInfo]) -> list[dict[str, Any]]:
    """What the page needs to draw each parameter: log axis, choice labels."""
    return [{"label": label, "kind": info.kind, "log": info.is_log, "choice": info.is_choice,
             "options": info.option_labels() if info.is_choice else []}
            for label, info in infos.items()]


def trial_rows(trials: Sequence[Trial], space: Any) -> tuple[list[str], list[dict[str, Any]]]:
    """The columns, and one row per trial: the columns of ``parzen trials --format csv``
    (``export``), which the table shows and exports, plus ``_curve`` (the learning-curve
    hook) when a trial has one. Everything else about a trial is one click away
    (``TrialView.trial``)."""
    table = trial_table(trials, space)
    columns, rows = list(table.columns), list(table.rows)
    for row, t in zip(rows, trials, strict=True):
        curve = learning_curve(t)
        if curve is not None:
            row["_curve"] = curve
    if any("_curve" in row for row in rows):
        columns.append("_curve")
    return columns, rows


def encode_columns(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> list[str]:
    """Each column of ``rows`` as the inside of a JSON array (``1,2.5,null``): one encoding
    per column, not one per cell."""
    return [json.dumps([row.get(c) for row in rows], allow_nan=False,
                       separators=(",", ":"))[1:-1] for c in columns]


@dataclass
class Reads:
    """What a view asked the store, for the tests and the benchmark: a full read per
    experiment, then incremental ones."""

    full: int = 0
    incremental: int = 0
    trials_read: int = 0


@dataclass
class TrialView:
    """One experiment's trials as the pages see them, kept current by ``refresh``."""

    exp_key: str
    trials: dict[int, Trial] = field(default_factory=dict)
    experiment: Experiment | None = None
    space: Any = None
    seq: int = 0
    reads: Reads = field(default_factory=Reads)
    _rows: dict[int, dict[str, Any]] = field(default_factory=dict)
    # Columns are only ever appended: a page keeps its numbering of them across polls.
    _columns: list[str] = field(default_factory=list)
    # tid // BLOCK -> (the columns encoded, each column of the block's rows in tid order as
    # ``encode_columns`` gives it); dropped when a trial of the block changes.
    _blocks: dict[int, tuple[int, list[str]]] = field(default_factory=dict)
    # tid -> the change that last touched it, in that order (the newest last).
    _changed: dict[int, int] = field(default_factory=dict)
    _removed: dict[int, int] = field(default_factory=dict)
    _in_flight: set[int] = field(default_factory=set)
    _top: int = -1
    _gaps: dict[int, float] = field(default_factory=dict)
    _mismatches: int = 0
    _loaded_generation: int = -1
    _last_refresh: float = -math.inf
    _last_count: float = -math.inf
    _derived: dict[str, tuple[int, Any]] = field(default_factory=dict)
    # Kept up to date trial by trial, so a change costs what changed, not the experiment:
    _counts: dict[TrialState, int] = field(default_factory=lambda: dict.fromkeys(TrialState, 0))
    _labels: dict[str, None] = field(default_factory=dict)
    _best: Trial | None = None
    _running: set[int] = field(default_factory=set)
    # (-end as epoch seconds, tid) of finished trials, newest first; entries of trials that
    # changed since are skipped when read and dropped when the list is rebuilt.
    _ended: list[tuple[float, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # ---- reading --------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        """Whether the experiment has been read whole once."""
        return self._loaded_generation >= 0

    def refresh(self, store: TrialStore, generation: int, space: Any,
                force: bool = False) -> None:
        """Bring the view up to date, reading at most every ``REFRESH_S`` (``force``: now).

        ``generation`` changes when the store object is replaced (a local run's file was
        written again): the new store is read whole and compared.
        """
        mono = time.monotonic()
        if not force and mono - self._last_refresh < REFRESH_S \
                and generation == self._loaded_generation:
            return
        self._last_refresh = mono
        self.space = space
        exp = store.get_experiment(self.exp_key)
        self.experiment = exp
        if generation != self._loaded_generation:
            self._read_whole(store)
            self._loaded_generation = generation
            return
        next_tid = exp.next_tid if exp is not None else self._top + 1
        if next_tid - self._top - 1 > MAX_NEW_TIDS:
            self._read_whole(store)
            return
        new = set(range(self._top + 1, next_tid))
        wanted = self._in_flight | set(self._gaps) | new
        fresh = store.get_many(self.exp_key, wanted) if wanted else []
        self.reads.incremental += 1
        self.reads.trials_read += len(fresh)
        got = {t.tid for t in fresh}
        self._apply(fresh, gone=self._in_flight - got)
        for tid in (new | set(self._gaps)) - got:
            self._gaps.setdefault(tid, mono)
        for tid in got:
            self._gaps.pop(tid, None)
        self._gaps = {t: s for t, s in self._gaps.items() if mono - s < GAP_PATIENCE_S}
        if force or mono - self._last_count >= COUNT_CHECK_S:
            self._last_count = mono
            self._check_counts(store)

    def _check_counts(self, store: TrialStore) -> None:
        counts = store.count_by_state(self.exp_key)
        mine = self.counts()
        total, held = sum(counts.values()), len(self.trials)
        if held > total or any(mine[s] > counts[s] for s in FINISHED):
            self._read_whole(store)  # an operator requeued or deleted trials
        elif total > held:
            self._mismatches += 1
            if self._mismatches >= MISMATCHES_BEFORE_READ:
                self._read_whole(store)  # trials inserted behind the counter
        else:
            self._mismatches = 0

    def _read_whole(self, store: TrialStore) -> None:
        fresh = store.find(self.exp_key)
        self.reads.full += 1
        self.reads.trials_read += len(fresh)
        self._mismatches = 0
        self._gaps.clear()
        self._apply(fresh, gone=set(self.trials) - {t.tid for t in fresh})

    def _apply(self, fresh: Iterable[Trial], gone: set[int]) -> None:
        changed = [t for t in fresh if self.trials.get(t.tid) != t]
        if not changed and not gone:
            return
        self.seq += 1
        seq = self.seq
        rescan = False
        for t in [*changed, *(self.trials[tid] for tid in gone if tid in self.trials)]:
            old = self.trials.get(t.tid)
            if old is not None:
                self._counts[old.state] -= 1
                rescan = rescan or (self._best is not None and old.tid == self._best.tid)
        for tid in gone:
            self._running.discard(tid)
            self.trials.pop(tid, None)
            self._rows.pop(tid, None)
            self._changed.pop(tid, None)
            self._blocks.pop(tid // BLOCK, None)
            self._in_flight.discard(tid)
            self._removed.pop(tid, None)
            self._removed[tid] = seq
        columns, rows = trial_rows(changed, self.space)
        known = set(self._columns)
        self._columns += [c for c in columns if c not in known]
        bulk = len(changed) >= BULK
        # (When the best trial itself changed, ``rescan`` looks for the best again below.)
        best_key = None if self._best is None or rescan \
            else (self._rows[self._best.tid]["loss"], self._best.tid)
        # The loop runs once per trial of a whole read (20,000 at start): names looked up
        # once, and the state tests are set lookups rather than method calls.
        trials, view_rows, changed_seq, removed = self.trials, self._rows, self._changed, \
            self._removed
        blocks, in_flight, running, counts = self._blocks, self._in_flight, self._running, \
            self._counts
        ended, labels, as_utc = self._ended, self._labels, _status.as_utc
        top = self._top
        for t, row in zip(changed, rows, strict=True):
            tid, state = t.tid, t.state
            trials[tid] = t
            view_rows[tid] = row
            # Re-inserted: ``_changed`` stays in the order of change, newest last.
            changed_seq.pop(tid, None)
            changed_seq[tid] = seq
            removed.pop(tid, None)
            blocks.pop(tid // BLOCK, None)
            if state in PENDING:
                in_flight.add(tid)
            else:
                in_flight.discard(tid)
            if tid > top:
                top = tid
            counts[state] += 1
            if not labels.keys() >= t.params.keys():
                labels.update(dict.fromkeys(t.params))
            if state is TrialState.RUNNING:
                running.add(tid)
            else:
                running.discard(tid)
            end = t.end_time
            if end is not None and state in FINISHED:
                entry = (-as_utc(end).timestamp(), tid)
                if bulk:
                    ended.append(entry)
                else:
                    bisect.insort(ended, entry)
            loss = row["loss"]  # the trial's loss when finite, else None (``export``)
            if loss is not None and (best_key is None or (loss, tid) < best_key):
                self._best, best_key = t, (loss, tid)
        self._top = top
        if bulk:
            self._ended.sort()
        if rescan:  # the best trial changed (an operator's requeue): look again
            ok = [(row["loss"], tid) for tid, row in self._rows.items()
                  if row["loss"] is not None]
            self._best = self.trials[min(ok)[1]] if ok else None
        if len(self._ended) > 2 * len(self.trials) + 1000:
            self._ended = [e for e in self._ended if self._ended_entry(e) is not None]

    # ---- what the pages get ---------------------------------------------------------------

    def changes_since(self, seq: int) -> tuple[dict[str, Any], str]:
        """The trials changed since ``seq`` (all of them for 0, or a ``seq`` this view never
        gave out), and the tids removed.

        Returns:
            The answer's head (``seq``, ``reset``, ``columns``, ``removed``), and the rows as
            the JSON text of one array per column of ``columns``, each with a cell per row
            (every trial in tid order for a reset).
        """
        reset = seq <= 0 or seq > self.seq
        removed: list[int] = []
        if reset:
            data = self._all_rows()
        else:
            tids = list(takewhile(lambda tid: self._changed[tid] > seq,
                                  reversed(self._changed)))
            rows = [self._rows[tid] for tid in sorted(tids)]
            data = "[" + ",".join(f"[{c}]" for c in encode_columns(rows, self._columns)) + "]"
            removed = list(takewhile(lambda tid: self._removed[tid] > seq,
                                     reversed(self._removed)))
        return {"seq": self.seq, "reset": reset, "columns": list(self._columns),
                "removed": removed}, data

    def _all_rows(self) -> str:
        """Every row, column by column, from the blocks kept (encoding the ones missing)."""
        width = len(self._columns)
        if any(self._blocks.get(tid // BLOCK, (-1,))[0] != width for tid in self._rows):
            by_block: dict[int, list[int]] = {}
            for tid in sorted(self._rows):
                by_block.setdefault(tid // BLOCK, []).append(tid)
            for b, tids in by_block.items():
                if self._blocks.get(b, (-1,))[0] != width:
                    self._blocks[b] = (width, encode_columns([self._rows[t] for t in tids],
                                                             self._columns))
            for b in set(self._blocks) - set(by_block):
                del self._blocks[b]
        blocks = [self._blocks[b][1] for b in sorted(self._blocks)]
        return "[" + ",".join("[" + ",".join(block[i] for block in blocks) + "]"
                              for i in range(width)) + "]"

    def counts(self) -> dict[TrialState, int]:
        return dict(self._counts)

    def _ended_entry(self, entry: tuple[float, int]) -> Trial | None:
        """The trial of an ``_ended`` entry, unless it changed since the entry was made."""
        t = self.trials.get(entry[1])
        if t is None or t.end_time is None or not t.state.is_finished() \
                or -_status.as_utc(t.end_time).timestamp() != entry[0]:
            return None
        return t

    def _memo(self, name: str, compute: Any) -> Any:
        """``compute()``, recomputed only when the trials changed."""
        hit = self._derived.get(name)
        if hit is not None and hit[0] == self.seq:
            return hit[1]
        value = compute()
        self._derived[name] = (self.seq, value)
        return value

    def best(self) -> Trial | None:
        return self._best

    def summary(self, now: datetime, where: str) -> dict[str, Any]:
        """The experiment's header: counts, best, coordinator, settings the page needs."""
        exp = self.experiment or Experiment(self.exp_key)
        alive, detail = driver_state(exp, now)
        best = self.best()
        return {
            "exp_key": self.exp_key, "where": where, "now": epoch(now),
            "counts": {s.word: n for s, n in self._counts.items()},
            "max_evals": exp.max_evals,
            "best": None if best is None else {"tid": best.tid, "loss": best.loss},
            "coordinator": {"alive": alive, "detail": detail},
            "heartbeat_s": _status.heartbeat_seconds(exp), "lease_s": lease_seconds(exp),
            "params": self._memo("params", self._param_meta),
        }

    def _param_meta(self) -> list[dict[str, Any]]:
        infos = params_of(self.space) if self.space else {}
        for label in self._labels:  # labels only the trials know
            infos.setdefault(label, ParamInfo(label))
        return param_meta(infos)

    def workers(self, now: datetime) -> dict[str, Any]:
        """The workers that hold trials or finished one in the last ``WORKER_WINDOW_S``: slots
        busy, trials held, last heartbeat, and their state by ``parzen status``'s rule
        (``_status.workers_seen``: stale after ``STALE_BEATS`` silent heartbeat intervals,
        dead when its process is seen to have ended)."""
        exp = self.experiment or Experiment(self.exp_key)
        heartbeat_s = _status.heartbeat_seconds(exp)
        lease_s = lease_seconds(exp)
        since = now - timedelta(seconds=WORKER_WINDOW_S)
        running = [self.trials[tid] for tid in sorted(self._running)]
        recent = []
        cutoff = -since.timestamp()
        for entry in self._ended:  # newest first: stop at the window's start
            if entry[0] > cutoff:
                break
            t = self._ended_entry(entry)
            if t is not None:
                recent.append(t)
        held: dict[tuple[str, str], list[Trial]] = {}
        for t in running:
            if t.owner is not None:
                held.setdefault((t.owner.worker, t.owner.host), []).append(t)
        rows = []
        for w in _status.workers_seen(running, recent, now, heartbeat_s):
            mine = sorted(held.get((w.worker, w.host), []), key=lambda t: t.tid)
            beats = [_status.as_utc(b) for t in mine
                     if (b := t.heartbeat_time or t.book_time) is not None]
            last_beat = max(beats, default=None)
            silent = None if w.last_seen is None else (now - w.last_seen).total_seconds()
            rows.append({"worker": w.worker, "host": w.host, "busy": w.running,
                         "held": [{"tid": t.tid,
                                   "slot": t.owner.slot if t.owner else None,
                                   "attempt": t.attempts,
                                   "expired": lease_ended(t, now, lease_s)} for t in mine],
                         "finished_recently": w.finished, "last_beat": epoch(last_beat),
                         "last_seen": epoch(w.last_seen), "silent_s": silent,
                         "state": w.state.value})
        expired = sorted(t.tid for t in running if lease_ended(t, now, lease_s))
        return {"workers": rows, "expired": expired, "heartbeat_s": heartbeat_s,
                "window_s": WORKER_WINDOW_S,
                "stale_after_s": _status.STALE_BEATS * heartbeat_s}

    def errors(self) -> list[dict[str, Any]]:
        """Failed trials grouped as ``parzen errors`` groups them."""
        def compute() -> list[dict[str, Any]]:
            failed = sorted((t for t in self.trials.values() if t.state is TrialState.ERROR),
                            key=lambda t: t.tid)
            return error_groups(failed)
        groups: list[dict[str, Any]] = self._memo("errors", compute)
        return groups

    def importance(self) -> list[dict[str, Any]]:
        """Each parameter's importance (``importance.py``), over the trials with a loss.

        Unlike the other reads, it takes the view's lock itself, and only to copy what it
        needs: at 20,000 trials the scores take a while, and polls must not wait for them.
        """
        with self.lock:
            hit = self._derived.get("importance")
            if hit is not None and hit[0] == self.seq:
                cached: list[dict[str, Any]] = hit[1]
                return cached
            seq = self.seq
            ok = [(row["loss"], self.trials[tid].params) for tid, row in self._rows.items()
                  if row["loss"] is not None]  # (the loss when finite)
            infos = params_of(self.space) if self.space else {}
        params = [p for _, p in ok]
        labels = list(dict.fromkeys([*infos, *(k for p in params for k in p)]))
        choices = frozenset(k for k, i in infos.items() if i.is_choice)
        scores = [{"label": i.label, "score": i.score, "trials": i.trials, "groups": i.groups}
                  for i in importances([loss for loss, _ in ok], params, labels, choices)]
        with self.lock:
            if self._derived.get("importance", (-1,))[0] < seq:
                self._derived["importance"] = (seq, scores)
        return scores

    def trial(self, tid: int) -> dict[str, Any] | None:
        """Everything the page shows about one trial (its row, result, error, history)."""
        t = self.trials.get(tid)
        if t is None:
            return None
        return {"row": self._rows[tid], "result": dict(t.result),
                "params": dict(t.params),
                "error": None if t.error is None else {"type": t.error.type,
                                                        "message": t.error.message,
                                                        "traceback": t.error.traceback},
                "owner": None if t.owner is None else {"worker": t.owner.worker,
                                                        "slot": t.owner.slot,
                                                        "host": t.owner.host,
                                                        "pid": t.owner.pid},
                "lease_expires": epoch(t.lease_expires),
                "history": [{"attempt": a.attempt, "outcome": a.outcome,
                             "worker": a.owner.worker if a.owner else None,
                             "start": epoch(a.book_time), "end": epoch(a.end_time)}
                            for a in t.history]}


def experiment_row(store: TrialStore, exp: Experiment, now: datetime) -> dict[str, Any]:
    """One line of the experiment list, read as ``parzen experiments`` reads it: counts, best
    loss, last activity, coordinator (a few small queries, never the trials)."""
    counts = store.count_by_state(exp.exp_key)
    best = next(iter(store.find(exp.exp_key, states=[TrialState.DONE], sort="loss", limit=1)),
                None)
    alive, detail = driver_state(exp, now)
    return {"exp_key": exp.exp_key, "counts": {s.word: n for s, n in counts.items()},
            "max_evals": exp.max_evals,
            "best_loss": best.loss if best is not None else None,
            "last_activity": epoch(last_activity(store, exp.exp_key)),
            "coordinator": {"alive": alive, "detail": detail}}
