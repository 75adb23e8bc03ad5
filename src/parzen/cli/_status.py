"""``parzen status``: a snapshot of a running experiment, rendered once or refreshed.

Everything comes from the store contract (``count_by_state``, ``find``). The store has no
query for "trials finished since T", so the recent trials are read newest tid first, in
growing pages, until one ended before the window; finishing order follows tid order closely
enough for a throughput estimate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from parzen.cli._format import ago, duration, number, render_table, timestamp
from parzen.cli._source import driver_state
from parzen.store import Experiment, TrialStore, lease_ended, lease_seconds
from parzen.trial import Trial, TrialState

FINISHED = (TrialState.DONE, TrialState.ERROR)
_FIRST_PAGE = 200
_MAX_RECENT = 20_000
_MAX_RUNNING_SHOWN = 15


@dataclass(frozen=True)
class WorkerSeen:
    """A worker that ran or finished a trial recently."""

    worker: str
    host: str
    running: int
    finished: int
    last_seen: datetime | None


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
    unreadable: int = 0

    @property
    def finished(self) -> int:
        return self.counts[TrialState.DONE] + self.counts[TrialState.ERROR] \
            + self.counts.get(TrialState.PRUNED, 0)

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
        """Trials finished (done or failed) per minute over the window."""
        return 60.0 * len(self.recent) / self.span_s if self.span_s > 0 else 0.0

    @property
    def remaining(self) -> int | None:
        if self.exp.max_evals is None:
            return None
        return max(0, self.exp.max_evals - self.finished)

    @property
    def eta_s(self) -> float | None:
        left = self.remaining
        if left is None or not self.coordinator_alive or self.per_minute <= 0:
            return None
        return 60.0 * left / self.per_minute

    def to_dict(self) -> dict[str, Any]:
        return {
            "exp_key": self.exp.exp_key, "now": self.now,
            "coordinator": {"alive": self.coordinator_alive, "detail": self.coordinator},
            "done": self.counts[TrialState.DONE], "running": self.counts[TrialState.RUNNING],
            "queued": self.counts[TrialState.NEW], "failed": self.counts[TrialState.ERROR],
            "cancelled": self.counts[TrialState.CANCEL], "max_evals": self.exp.max_evals,
            "remaining": self.remaining, "window_s": self.window_s,
            "finished_per_minute": round(self.per_minute, 4), "eta_s": self.eta_s,
            "best": None if self.best is None else {"tid": self.best.tid,
                                                    "loss": self.best.loss},
            "workers": [{"worker": w.worker, "host": w.host, "running": w.running,
                         "finished_recently": w.finished, "last_seen": w.last_seen}
                        for w in self.workers],
            "running_trials": [_running_row(t, self.now) for t in self.running],
            "expired_leases": [t.tid for t in self.expired],
            "unreadable": self.unreadable,
            "ended": self.ended,
        }


def gather(store: TrialStore, exp: Experiment, window_s: float) -> Snapshot:
    """Read a ``Snapshot`` of ``exp``."""
    key = exp.exp_key
    exp = store.get_experiment(key) or exp  # fresh driver lease, for --watch
    now = as_utc(store.now())
    since = now - timedelta(seconds=window_s)
    counts = store.count_by_state(key)
    running = store.find(key, states=[TrialState.RUNNING])
    recent, last_finished = _recent_finished(store, key, since)
    best = next(iter(store.find(key, states=[TrialState.DONE], sort="loss", limit=1)), None)
    if best is not None and best.loss is None:
        best = None
    start = as_utc(exp.created) if exp.created is not None else None
    span = window_s if start is None else min(window_s, (now - start).total_seconds())
    alive, detail = driver_state(exp, now)
    unreadable = sum(1 for d in store.unreadable() if d.exp_key == key)
    return Snapshot(exp=exp, now=now, counts=counts, running=running, recent=recent,
                    last_finished=last_finished, window_s=window_s, span_s=max(span, 1.0),
                    workers=_workers(running, recent), best=best, coordinator_alive=alive,
                    coordinator=detail, lease_s=lease_seconds(exp), unreadable=unreadable)


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


def _workers(running: list[Trial], recent: list[Trial]) -> list[WorkerSeen]:
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for t in [*running, *recent]:
        if t.owner is None:
            continue
        # A worker process names each of its slots "name/thread": count them together.
        w = seen.setdefault((t.owner.worker.split("/", 1)[0], t.owner.host),
                            {"running": 0, "finished": 0, "last": None})
        if t.state is TrialState.RUNNING:
            w["running"] += 1
            when = t.heartbeat_time or t.book_time
        else:
            w["finished"] += 1
            when = t.end_time
        if when is not None and (w["last"] is None or as_utc(when) > w["last"]):
            w["last"] = as_utc(when)
    out = [WorkerSeen(name, host, w["running"], w["finished"], w["last"])
           for (name, host), w in seen.items()]
    epoch = datetime.min.replace(tzinfo=timezone.utc)
    return sorted(out, key=lambda w: (w.last_seen or epoch, w.worker), reverse=True)


def _running_row(t: Trial, now: datetime) -> dict[str, Any]:
    return {"tid": t.tid, "worker": t.owner.worker if t.owner else None,
            "host": t.owner.host if t.owner else None, "attempt": t.attempts,
            "age_s": None if t.book_time is None else (now - as_utc(t.book_time)).total_seconds(),
            "heartbeat_time": t.heartbeat_time, "lease_expires": t.lease_expires}


def render(s: Snapshot, width: int | None = None) -> str:
    """The snapshot as text for a terminal."""
    c = s.counts
    win = duration(s.window_s)
    lines = [f"experiment {s.exp.exp_key!r}  (as of {timestamp(s.now)})",
             f"coordinator  {s.coordinator}"]
    total = f" of max_evals {s.exp.max_evals}" if s.exp.max_evals is not None else ""
    lines.append(f"trials       done {c[TrialState.DONE]}  running {c[TrialState.RUNNING]}  "
                 f"queued {c[TrialState.NEW]}  failed {c[TrialState.ERROR]}  "
                 f"cancelled {c[TrialState.CANCEL]}"
                 + (f"  pruned {c[TrialState.PRUNED]}" if c.get(TrialState.PRUNED) else "")
                 + f"   ({s.finished} finished{total})")
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
        lines.append(f"eta          {duration(s.eta_s)} ({s.remaining} trials left)")
    elif s.remaining is not None:
        lines.append(f"eta          unknown ({s.remaining} trials left, none finished "
                     f"in the last {win})")
    else:
        lines.append("eta          unknown (the experiment records no max_evals)")

    lines.append("")
    if s.workers:
        lines.append(f"workers seen in the last {win}:")
        rows = [[w.worker, w.host, str(w.running), str(w.finished), ago(w.last_seen, s.now)]
                for w in s.workers]
        lines.append(render_table(["WORKER", "HOST", "RUNNING", "FINISHED", "LAST SEEN"], rows,
                                  right=["RUNNING", "FINISHED"], width=width, indent="  "))
    else:
        lines.append(f"workers seen in the last {win}: none")

    lines.append("")
    if s.running:
        lines.append(f"running trials ({len(s.running)}):")
        shown = sorted(s.running, key=lambda t: t.tid)[:_MAX_RUNNING_SHOWN]
        rows = []
        for t in shown:
            rows.append([str(t.tid), t.owner.worker if t.owner else "-", str(t.attempts),
                         duration(_age(t.book_time, s.now)), ago(_opt(t.heartbeat_time), s.now),
                         _lease(t, s)])
        lines.append(render_table(["TID", "WORKER", "ATTEMPT", "AGE", "HEARTBEAT", "LEASE"],
                                  rows, right=["TID", "ATTEMPT", "AGE"], width=width,
                                  indent="  "))
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
