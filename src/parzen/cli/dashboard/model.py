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
receives only those, so a poll costs what changed, not the experiment's size.
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
from typing import Any

from parzen.cli import _status
from parzen.cli._source import driver_state
from parzen.cli.dashboard.importance import importances
from parzen.cli.tools import error_groups, last_activity
from parzen.export import trial_table
from parzen.settings import TrialSettings
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
# A worker is stale when its newest heartbeat is older than this many heartbeat intervals.
STALE_INTERVALS = 2.0
FINISHED = tuple(s for s in TrialState if s.is_finished())


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


def trial_rows(trials: Sequence[Trial], space: Any) -> list[dict[str, Any]]:
    """One row per trial: the columns of ``parzen trials --format csv`` (``export``), which
    the table shows and exports, plus ``_curve`` (the learning-curve hook) when a trial has
    one. Everything else about a trial is one click away (``TrialView.trial``)."""
    rows = list(trial_table(trials, space).rows)
    for row, t in zip(rows, trials, strict=True):
        curve = learning_curve(t)
        if curve is not None:
            row["_curve"] = curve
    return rows


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
    # Each row as JSON text, its cells in ``_columns`` order, encoded once per trial version:
    # a page's first poll of 20,000 trials is then a join, not 20,000 encodings. Columns are
    # only ever appended, so a row encoded earlier is a prefix of the current layout.
    _encoded: dict[int, str] = field(default_factory=dict)
    _columns: list[str] = field(default_factory=list)
    _changed: dict[int, int] = field(default_factory=dict)
    _removed: dict[int, int] = field(default_factory=dict)
    _reset_seq: int = 0
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
            self._encoded.pop(tid, None)
            self._changed.pop(tid, None)
            self._in_flight.discard(tid)
            self._removed[tid] = self.seq
        for t, row in zip(changed, trial_rows(changed, self.space), strict=True):
            self.trials[t.tid] = t
            self._rows[t.tid] = row
            self._columns += [c for c in row if c not in self._columns]
            self._encoded[t.tid] = json.dumps([row.get(c) for c in self._columns],
                                              allow_nan=False, separators=(",", ":"))
            self._changed[t.tid] = self.seq
            self._removed.pop(t.tid, None)
            if t.state.is_pending():
                self._in_flight.add(t.tid)
            else:
                self._in_flight.discard(t.tid)
            self._top = max(self._top, t.tid)
            self._counts[t.state] += 1
            self._labels.update(dict.fromkeys(t.params))
            if t.state is TrialState.RUNNING:
                self._running.add(t.tid)
            else:
                self._running.discard(t.tid)
            if t.state.is_finished() and t.end_time is not None:
                bisect.insort(self._ended, (-_status.as_utc(t.end_time).timestamp(), t.tid))
            loss = t.loss
            if loss is not None and math.isfinite(loss) and (
                    self._best is None or (loss, t.tid) < (self._best.loss, self._best.tid)):
                self._best = t
        if rescan:  # the best trial changed (an operator's requeue): look again
            ok = [t for t in self.trials.values() if t.loss is not None and math.isfinite(t.loss)]
            self._best = min(ok, key=lambda t: (t.loss, t.tid), default=None)
        if len(self._ended) > 2 * len(self.trials) + 1000:
            self._ended = [e for e in self._ended if self._ended_entry(e) is not None]

    # ---- what the pages get ---------------------------------------------------------------

    def changes_since(self, seq: int) -> tuple[dict[str, Any], list[str]]:
        """The rows changed since ``seq`` (all of them for 0, or a ``seq`` this view never
        gave out) as JSON texts of their cells in ``columns`` order (a row may stop short of
        a column added after it), and the tids removed."""
        reset = seq <= self._reset_seq or seq > self.seq
        if reset:
            rows = list(self._encoded.values())
            removed: list[int] = []
        else:
            rows = [self._encoded[tid] for tid, s in self._changed.items() if s > seq]
            removed = [tid for tid, s in self._removed.items() if s > seq]
        return {"seq": self.seq, "reset": reset, "columns": list(self._columns),
                "removed": removed}, rows

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
        settings = TrialSettings.from_dict(exp.settings)
        return {
            "exp_key": self.exp_key, "where": where, "now": epoch(now),
            "counts": {s.name.lower(): n for s, n in self._counts.items()},
            "max_evals": exp.max_evals,
            "best": None if best is None else {"tid": best.tid, "loss": best.loss},
            "coordinator": {"alive": alive, "detail": detail},
            "heartbeat_s": settings.heartbeat_s, "lease_s": lease_seconds(exp),
            "params": self._memo("params", self._param_meta),
        }

    def _param_meta(self) -> list[dict[str, Any]]:
        infos = params_of(self.space) if self.space else {}
        for label in self._labels:  # labels only the trials know
            infos.setdefault(label, ParamInfo(label))
        return param_meta(infos)

    def workers(self, now: datetime) -> dict[str, Any]:
        """The workers that hold trials or finished one in the last ``WORKER_WINDOW_S``: slots
        busy, trials held, last heartbeat, and stale when their heartbeats stopped."""
        exp = self.experiment or Experiment(self.exp_key)
        heartbeat_s = TrialSettings.from_dict(exp.settings).heartbeat_s
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
                held.setdefault((t.owner.worker.split("/", 1)[0], t.owner.host), []).append(t)
        rows = []
        for w in _status._workers(running, recent):  # the grouping of ``parzen status``
            mine = sorted(held.get((w.worker, w.host), []), key=lambda t: t.tid)
            beats = [_status.as_utc(b) for t in mine
                     if (b := t.heartbeat_time or t.book_time) is not None]
            last_beat = max(beats, default=None)
            silent = None if last_beat is None else (now - last_beat).total_seconds()
            # TODO(issue 18): use the stale mark ``parzen status`` gains there, one rule.
            stale = bool(mine) and (silent is None or silent > STALE_INTERVALS * heartbeat_s
                                    or all(lease_ended(t, now, lease_s) for t in mine))
            rows.append({"worker": w.worker, "host": w.host, "busy": w.running,
                         "held": [{"tid": t.tid,
                                   "slot": t.owner.worker if t.owner else None,
                                   "attempt": t.attempts,
                                   "expired": lease_ended(t, now, lease_s)} for t in mine],
                         "finished_recently": w.finished, "last_beat": epoch(last_beat),
                         "last_seen": epoch(w.last_seen), "silent_s": silent,
                         "stale": stale})
        expired = sorted(t.tid for t in running if lease_ended(t, now, lease_s))
        return {"workers": rows, "expired": expired, "heartbeat_s": heartbeat_s,
                "window_s": WORKER_WINDOW_S, "stale_after_s": STALE_INTERVALS * heartbeat_s}

    def errors(self) -> list[dict[str, Any]]:
        """Failed trials grouped as ``parzen errors`` groups them."""
        def compute() -> list[dict[str, Any]]:
            failed = sorted((t for t in self.trials.values() if t.state is TrialState.ERROR),
                            key=lambda t: t.tid)
            return error_groups(failed)
        groups: list[dict[str, Any]] = self._memo("errors", compute)
        return groups

    def importance(self) -> list[dict[str, Any]]:
        """Each parameter's importance (``importance.py``), over the trials with a loss."""
        def compute() -> list[dict[str, Any]]:
            ok = [t for t in self.trials.values() if t.loss is not None and math.isfinite(t.loss)]
            infos = params_of(self.space) if self.space else {}
            labels = list(dict.fromkeys([*infos, *(k for t in ok for k in t.params)]))
            choices = frozenset(k for k, i in infos.items() if i.is_choice)
            found = importances([t.loss for t in ok if t.loss is not None],
                                [t.params for t in ok], labels, choices)
            return [{"label": i.label, "score": i.score, "trials": i.trials,
                     "groups": i.groups} for i in found]
        scores: list[dict[str, Any]] = self._memo("importance", compute)
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
    return {"exp_key": exp.exp_key, "counts": {s.name.lower(): n for s, n in counts.items()},
            "max_evals": exp.max_evals,
            "best_loss": best.loss if best is not None else None,
            "last_activity": epoch(last_activity(store, exp.exp_key)),
            "coordinator": {"alive": alive, "detail": detail}}
