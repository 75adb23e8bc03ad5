"""``parzen status``: a snapshot of a running experiment, rendered once or refreshed.

Everything comes from the store contract. The counts and the running trials come from one
read (``census``), so the header and the table of running trials agree. The store has no
query for "trials finished since T", so the recent trials are read newest tid first, in
growing pages, until one ended before the window; finishing order follows tid order closely
enough for a throughput estimate.

Times: every time in a trial is on the store's clock, as each writer estimated it, and so is
the snapshot's ``now``, read after the trials. Estimates by two processes differ by up to
half their round trips to the server, so a heartbeat can read as a few milliseconds "in the
future"; ``now`` is then moved up to the newest time read, and a larger gap (a file from a
machine whose clock runs ahead) is reported as ``clock_ahead_s``, never shown as a time to
come.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from parzen.cli._format import ago, duration, number, render_table, timestamp
from parzen.cli._source import driver_state
from parzen.exceptions import ConfigError
from parzen.settings import TrialSettings
from parzen.store import Experiment, Refusal, TrialStore, lease_ended, lease_seconds
from parzen.trial import Trial, TrialState
from parzen.worker.refusals import objective_id

# A pruned trial finished too: it counts toward max_evals, and its slot is free again.
FINISHED = (TrialState.DONE, TrialState.ERROR, TrialState.PRUNED)
_FIRST_PAGE = 200
_MAX_RECENT = 20_000
_MAX_RUNNING_SHOWN = 15
# How far the newest trial time may run ahead of the store's clock as read here before it is
# reported: two processes' estimates of the server's clock differ by milliseconds.
CLOCK_TOLERANCE_S = 1.0


class WorkerState(enum.Enum):
    """What a worker seen in the window is doing, as far as the trials tell."""

    BEATING = "beating"  # runs trials, and heartbeated within STALE_BEATS intervals
    IDLE = "idle"  # runs none of this experiment's trials (nothing to heartbeat)
    STALE = "stale"  # runs trials, but its heartbeats stopped STALE_BEATS intervals ago
    DEAD = "dead"  # runs trials, and its process is seen to have ended (this host only)


# A worker that runs trials but has not heartbeated for more than this many heartbeat
# intervals is stale: one late heartbeat is noise, two in a row are not.
STALE_BEATS = 2


@dataclass(frozen=True)
class WorkerSeen:
    """A worker that ran or finished a trial recently."""

    worker: str
    host: str
    running: int
    finished: int
    last_seen: datetime | None
    state: WorkerState = WorkerState.IDLE

    @property
    def lost(self) -> bool:
        """Stale or dead: its running trials will not finish at the usual pace."""
        return self.state in (WorkerState.STALE, WorkerState.DEAD)


@dataclass(frozen=True)
class Snapshot:
    """What ``parzen status`` shows, read at ``now`` (the store's clock)."""

    exp: Experiment
    now: datetime
    counts: dict[TrialState, int]
    running: list[Trial]
    recent: list[Trial]
    last_finished: datetime | None
    window_s: float
    span_s: float
    workers: list[WorkerSeen]
    best: Trial | None
    coordinator_alive: bool
    coordinator: str
    lease_s: float = 60.0
    heartbeat_s: float = 10.0
    unreadable: int = 0
    clock_ahead_s: float = 0.0
    refusals: tuple[Refusal, ...] = ()

    @property
    def finished(self) -> int:
        return sum(self.counts.get(state, 0) for state in FINISHED)

    @property
    def in_flight(self) -> int:
        return self.counts[TrialState.NEW] + self.counts[TrialState.RUNNING]

    @property
    def ended(self) -> bool:
        """Nothing is queued or running, and no coordinator will queue more."""
        return self.in_flight == 0 and not self.coordinator_alive

    @property
    def expired(self) -> list[Trial]:
        """Running trials whose worker is presumed dead, by the reaper's own rule (a trial
        without a lease date is judged by its last heartbeat)."""
        return [t for t in self.running if lease_ended(t, self.now, self.lease_s)]

    @property
    def per_minute(self) -> float:
        """Trials finished (done, failed or pruned) per minute over the window."""
        return 60.0 * len(self.recent) / self.span_s if self.span_s > 0 else 0.0

    @property
    def remaining(self) -> int | None:
        if self.exp.max_evals is None:
            return None
        return max(0, self.exp.max_evals - self.finished)

    @property
    def held(self) -> list[Trial]:
        """Running trials of stale or dead workers: they finish only after the reaper
        requeues them (when their lease expires, or at once for a worker seen dead) and
        another worker runs them again."""
        lost = {(w.worker, w.host) for w in self.workers if w.lost}
        return [t for t in self.running
                if t.owner is not None and (t.owner.worker, t.owner.host) in lost]

    @property
    def held_s(self) -> float:
        """The soonest the ``held`` trials can all finish: the longest wait for a lease to
        run out (none for a worker seen dead, whose trials are requeued on the reaper's next
        pass), plus a typical trial's duration (the median of the window's; 0 if none)."""
        if not self.held:
            return 0.0
        durations = sorted(d for t in self.recent if (d := t.duration) is not None)
        typical = durations[len(durations) // 2] if durations else 0.0
        return max(self._lease_left(t) for t in self.held) + typical

    def _lease_left(self, t: Trial) -> float:
        if t.owner is not None and t.owner.known_dead():
            return 0.0
        if t.lease_expires is not None:
            end = as_utc(t.lease_expires)
        else:  # no lease date: judged by its last sign of life, as lease_ended does
            alive = t.heartbeat_time or t.book_time
            if alive is None:
                return 0.0
            end = as_utc(alive) + timedelta(seconds=self.lease_s)
        return max(0.0, (end - self.now).total_seconds())

    @property
    def eta_s(self) -> float | None:
        """The remaining trials at the window's pace, but never sooner than the trials held
        by stale or dead workers can finish (``held_s``): those do not finish at the pace."""
        left = self.remaining
        if left is None or not self.coordinator_alive or self.per_minute <= 0:
            return None
        return max(60.0 * left / self.per_minute, self.held_s)

    def to_dict(self) -> dict[str, Any]:
        return {
            "exp_key": self.exp.exp_key, "now": self.now,
            "coordinator": {"alive": self.coordinator_alive, "detail": self.coordinator},
            **{state.word: self.counts.get(state, 0) for state in TrialState},
            "max_evals": self.exp.max_evals,
            "remaining": self.remaining, "window_s": self.window_s,
            "finished_per_minute": round(self.per_minute, 4), "eta_s": self.eta_s,
            "best": None if self.best is None else {"tid": self.best.tid,
                                                    "loss": self.best.loss},
            "workers": [{"worker": w.worker, "host": w.host, "running": w.running,
                         "finished_recently": w.finished, "last_seen": w.last_seen,
                         "state": w.state.value} for w in self.workers],
            "held_by_lost_workers": [t.tid for t in self.held],
            "running_trials": [_running_row(t, self.now) for t in self.running],
            "expired_leases": [t.tid for t in self.expired],
            "unreadable": self.unreadable,
            "clock_ahead_s": self.clock_ahead_s,
            "refusals": [{"worker": r.worker, "host": r.host, "pid": r.pid, "reason": r.reason,
                          "at": r.at} for r in self.refusals],
            "ended": self.ended,
        }


def gather(store: TrialStore, exp: Experiment, window_s: float) -> Snapshot:
    """Read a ``Snapshot`` of ``exp``."""
    key = exp.exp_key
    exp = store.get_experiment(key) or exp  # fresh driver lease, for --watch
    since = as_utc(store.now()) - timedelta(seconds=window_s)
    counts, running = store.census(key, [TrialState.RUNNING])
    recent, last_finished = _recent_finished(store, key, since)
    best = next(iter(store.find(key, states=[TrialState.DONE], sort="loss", limit=1)), None)
    if best is not None and best.loss is None:
        best = None
    # After the reads: a trial that changed while they ran changed before "now".
    now = as_utc(store.now())
    newest = max((as_utc(x) for t in [*running, *recent]
                  for x in (t.book_time, t.heartbeat_time, t.end_time) if x is not None),
                 default=now)
    ahead = (newest - now).total_seconds()
    now = max(now, newest)
    start = as_utc(exp.created) if exp.created is not None else None
    span = window_s if start is None else min(window_s, (now - start).total_seconds())
    alive, detail = driver_state(exp, now)
    unreadable = sum(1 for d in store.unreadable() if d.exp_key == key)
    beat = heartbeat_seconds(exp)
    return Snapshot(exp=exp, now=now, counts=counts, running=running, recent=recent,
                    last_finished=last_finished, window_s=window_s, span_s=max(span, 1.0),
                    workers=workers_seen(running, recent, now, beat), best=best,
                    coordinator_alive=alive, coordinator=detail, lease_s=lease_seconds(exp),
                    heartbeat_s=beat, unreadable=unreadable,
                    clock_ahead_s=ahead if ahead > CLOCK_TOLERANCE_S else 0.0,
                    # Only those about this payload: an older refusal (another key, another
                    # objective) says nothing of the workers now.
                    refusals=tuple(r for r in exp.refusals if r.objective == objective_id(exp)))


def _recent_finished(store: TrialStore, key: str, since: datetime
                     ) -> tuple[list[Trial], datetime | None]:
    """Trials that finished after ``since``, and when the last one finished."""
    limit = _FIRST_PAGE
    while True:
        page = store.find(key, states=FINISHED, sort="tid", descending=True, limit=limit)
        ends = [as_utc(t.end_time) for t in page if t.end_time is not None]
        exhausted = len(page) < limit or limit >= _MAX_RECENT
        if exhausted or (ends and min(ends) < since):
            recent = [t for t in page if t.end_time is not None and as_utc(t.end_time) >= since]
            return recent, max(ends, default=None)
        limit *= 4


def heartbeat_seconds(exp: Experiment) -> float:
    """The heartbeat interval of ``exp``'s run (its ``settings.heartbeat_s``), or the
    default when it records none or an unusable one."""
    try:
        return TrialSettings.from_dict(exp.settings).heartbeat_s
    except (ConfigError, TypeError):
        return TrialSettings().heartbeat_s


def workers_seen(running: list[Trial], recent: list[Trial], now: datetime,
                 heartbeat_s: float) -> list[WorkerSeen]:
    """The workers that own ``running`` or ``recent`` trials, newest seen first, each with its
    state (``WorkerState``): the one rule ``parzen status`` and the dashboard mark workers by."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for t in [*running, *recent]:
        if t.owner is None:
            continue
        w = seen.setdefault((t.owner.worker, t.owner.host),
                            {"running": 0, "finished": 0, "last": None, "dead": False})
        if t.state is TrialState.RUNNING:
            w["running"] += 1
            w["dead"] = w["dead"] or t.owner.known_dead()
            when = t.heartbeat_time or t.book_time
        else:
            w["finished"] += 1
            when = t.end_time
        if when is not None and (w["last"] is None or as_utc(when) > w["last"]):
            w["last"] = as_utc(when)
    out = [WorkerSeen(name, host, w["running"], w["finished"], w["last"],
                      _state(w["running"], w["dead"], w["last"], now, heartbeat_s))
           for (name, host), w in seen.items()]
    epoch = datetime.min.replace(tzinfo=timezone.utc)
    return sorted(out, key=lambda w: (w.last_seen or epoch, w.worker), reverse=True)


def _state(running: int, dead: bool, last: datetime | None, now: datetime,
           heartbeat_s: float) -> WorkerState:
    if not running:
        return WorkerState.IDLE
    if dead:
        return WorkerState.DEAD
    if last is None or (now - last).total_seconds() > STALE_BEATS * heartbeat_s:
        return WorkerState.STALE
    return WorkerState.BEATING


def _running_row(t: Trial, now: datetime) -> dict[str, Any]:
    return {"tid": t.tid, "worker": t.owner.worker if t.owner else None,
            "slot": t.owner.slot if t.owner else None,
            "host": t.owner.host if t.owner else None, "attempt": t.attempts,
            "age_s": None if t.book_time is None else (now - as_utc(t.book_time)).total_seconds(),
            "heartbeat_time": t.heartbeat_time, "lease_expires": t.lease_expires}


# Refusing workers listed in the table; the rest are counted (all are in --format json).
_MAX_REFUSALS_SHOWN = 10


def render(s: Snapshot, width: int | None = None) -> str:
    """The snapshot as text for a terminal."""
    c = s.counts
    win = duration(s.window_s)
    lines = [f"experiment {s.exp.exp_key!r}  (as of {timestamp(s.now)})",
             f"coordinator  {s.coordinator}"]
    if s.clock_ahead_s:
        lines.append(f"clock        the newest trial time is {duration(s.clock_ahead_s)} ahead "
                     "of the store's clock (a writer's clock runs ahead?); times are shown "
                     "from it")
    total = f" of max_evals {s.exp.max_evals}" if s.exp.max_evals is not None else ""
    by_state = "  ".join(f"{state.word} {c.get(state, 0)}" for state in TrialState)
    lines.append(f"trials       {by_state}   ({s.finished} finished{total})")
    if s.best is not None:
        lines.append(f"best loss    {number(s.best.loss, 6)} (trial {s.best.tid})")
    if s.recent:
        lines.append(f"throughput   {s.per_minute:.3g} trials/min over the last "
                     f"{duration(s.span_s)}")
    else:
        last = f"; last finished {ago(s.last_finished, s.now)}" if s.last_finished else ""
        lines.append(f"throughput   no trial finished in the last {win}{last}")
    if s.ended:
        lines.append("eta          - (the run is not active)")
    elif not s.coordinator_alive:
        lines.append("eta          - (no coordinator is running it; resume its fmin)")
    elif s.eta_s is not None:
        held = s.held
        why = "" if not held or s.held_s < 60.0 * (s.remaining or 0) / s.per_minute else (
            f"; {len(held)} of them held by stale or dead workers finish no sooner: "
            "requeued when their lease runs out, then run again")
        lines.append(f"eta          {duration(s.eta_s)} ({s.remaining} trials left{why})")
    elif s.remaining is not None:
        lines.append(f"eta          unknown ({s.remaining} trials left, none finished "
                     f"in the last {win})")
    else:
        lines.append("eta          unknown (the experiment records no max_evals)")

    lines.append("")
    if s.workers:
        lines.append(f"workers seen in the last {win}:")
        rows = [[w.worker, w.host, str(w.running), str(w.finished), ago(w.last_seen, s.now),
                 w.state.value.upper() if w.lost else w.state.value] for w in s.workers]
        lines.append(render_table(["WORKER", "HOST", "RUNNING", "FINISHED", "LAST SEEN",
                                   "STATE"], rows, right=["RUNNING", "FINISHED"], width=width,
                                  indent="  "))
        lines += _lost_lines(s)
    else:
        lines.append(f"workers seen in the last {win}: none")
    if s.refusals:
        lines.append(f"workers that cannot load this objective ({len(s.refusals)}): they pass "
                     "its trials on to the others, and run none")
        latest = s.refusals[-_MAX_REFUSALS_SHOWN:]
        lines.append(render_table(
            ["WORKER", "HOST", "SINCE", "REASON"],
            [[r.worker, r.host, ago(r.at, s.now), r.reason] for r in latest],
            width=width, indent="  "))
        if len(s.refusals) > len(latest):
            lines.append(f"  ... and {len(s.refusals) - len(latest)} more (--format json)")

    lines.append("")
    if s.running:
        lines.append(f"running trials ({len(s.running)}):")
        shown = sorted(s.running, key=lambda t: t.tid)[:_MAX_RUNNING_SHOWN]
        rows = []
        for t in shown:
            slot = t.owner.slot if t.owner is not None else None
            rows.append([str(t.tid), t.owner.worker if t.owner else "-",
                         "-" if slot is None else str(slot), str(t.attempts),
                         duration(_age(t.book_time, s.now)), ago(_opt(t.heartbeat_time), s.now),
                         _lease(t, s)])
        lines.append(render_table(["TID", "WORKER", "SLOT", "ATTEMPT", "AGE", "HEARTBEAT",
                                   "LEASE"], rows, right=["TID", "SLOT", "ATTEMPT", "AGE"],
                                  width=width, indent="  "))
        if len(s.running) > len(shown):
            lines.append(f"  ... and {len(s.running) - len(shown)} more")
    else:
        lines.append("running trials: none")
    expired = s.expired
    if expired:
        tids = ", ".join(str(t.tid) for t in expired[:20]) + (" ..." if len(expired) > 20 else "")
        fix = ("the coordinator requeues them on its next pass" if s.coordinator_alive else
               f"no coordinator is alive to requeue them: parzen requeue "
               f"{s.exp.exp_key} --expired")
        lines.append(f"expired leases: {len(expired)} (trials {tids}): their workers stopped "
                     f"heartbeating; {fix}")
    else:
        lines.append("expired leases: none")
    if s.unreadable:
        lines.append(f"unreadable   {s.unreadable} trial documents skipped; their _ids and the "
                     "fix follow on stderr")
    return "\n".join(lines)


def _lost_lines(s: Snapshot) -> list[str]:
    """One line per stale or dead worker: what it holds and when that moves on."""
    out = []
    for w in s.workers:
        if not w.lost:
            continue
        held = [t for t in s.held if t.owner is not None
                and (t.owner.worker, t.owner.host) == (w.worker, w.host)]
        tids = ", ".join(str(t.tid) for t in held[:10]) + (" ..." if len(held) > 10 else "")
        if w.state is WorkerState.DEAD:
            what = (f"{w.worker} is DEAD: its process on {w.host} has exited; its trials "
                    f"({tids}) are requeued without waiting for their lease")
        else:
            silent = None if w.last_seen is None else (s.now - w.last_seen).total_seconds()
            wait = max(s._lease_left(t) for t in held) if held else 0.0
            what = (f"{w.worker} is STALE: no heartbeat for {duration(silent)}, over "
                    f"{STALE_BEATS} heartbeat intervals of {duration(s.heartbeat_s)} (killed, "
                    f"paused, or cut off from the store?); its trials ({tids}) are requeued "
                    + (f"when their lease runs out, in {duration(wait)}" if wait > 0 else
                       "now: their lease has run out"))
        if not s.coordinator_alive:
            what += " by the next coordinator (none is running)"
        out.append("  " + what)
    return out


def _lease(t: Trial, s: Snapshot) -> str:
    """The LEASE cell: time left, or since when it expired; a trial without a lease date
    (edited by hand, or written by hyperopt) is judged on its heartbeat, as the reaper does."""
    if t.lease_expires is None:
        return "none: EXPIRED" if lease_ended(t, s.now, s.lease_s) else "none: beating"
    end = as_utc(t.lease_expires)
    if end <= s.now:
        return f"EXPIRED {ago(end, s.now)}"
    return f"{duration((end - s.now).total_seconds())} left"


def watch(read: Callable[[], Snapshot], show: Callable[[Snapshot], None],
          sleep: Callable[[float], None], interval_s: float) -> Snapshot:
    """Show snapshots every ``interval_s`` until the run ends (or Ctrl-C, which propagates)."""
    while True:
        snap = read()
        show(snap)
        if snap.ended:
            return snap
        sleep(interval_s)


def as_utc(dt: datetime) -> datetime:
    """``dt`` with UTC as its zone when it has none (mongomock returns naive times)."""
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)


def _opt(dt: datetime | None) -> datetime | None:
    return None if dt is None else as_utc(dt)


def _age(start: datetime | None, now: datetime) -> float | None:
    return None if start is None else (now - as_utc(start)).total_seconds()
