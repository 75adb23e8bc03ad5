"""``InMemoryTrialStore``: the reference implementation of the store contract.

It backs the in-process ``Trials`` and ``ParallelTrials`` and is the oracle the contract tests
compare the MongoDB store against. One lock serialises every operation, which makes each one
atomic the way a single MongoDB document update is.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from parzen.exceptions import StoreError, TrialNotFound
from parzen.store._base import (
    MAX_REFUSALS,
    DriverLease,
    Experiment,
    Refusal,
    StopRequest,
    TrialStore,
    back_to_new,
    given_up,
    inserted_state,
    lease_ended,
    lease_seconds,
    lost_driver_lease,
    worker_died,
)
from parzen.trial import ErrorInfo, Intermediate, Owner, Trial, TrialState


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class InMemoryTrialStore(TrialStore):
    """Trials kept in process memory; thread-safe, not shared between processes.

    Args:
        clock: the store's clock; tests pass a fake one to expire leases without sleeping.
    """

    def __init__(self, clock: Callable[[], datetime] = _utcnow) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._experiments: dict[str, Experiment] = {}
        self._trials: dict[str, dict[int, Trial]] = {}
        self._payloads: dict[str, bytes] = {}

    def now(self) -> datetime:
        return self._clock()

    # ---- experiments -------------------------------------------------------------------

    def get_experiment(self, exp_key: str) -> Experiment | None:
        with self._lock:
            return self._experiments.get(exp_key)

    def put_experiment(self, experiment: Experiment) -> Experiment:
        with self._lock:
            old = self._experiments.get(experiment.exp_key)
            if old is not None:
                experiment = dataclasses.replace(experiment, next_tid=old.next_tid,
                                                 driver=old.driver, created=old.created,
                                                 refusals=old.refusals,
                                                 stop_request=old.stop_request)
            elif experiment.created is None:
                experiment = dataclasses.replace(experiment, created=self.now())
            self._experiments[experiment.exp_key] = experiment
            self._trials.setdefault(experiment.exp_key, {})
            return experiment

    def list_experiments(self) -> list[Experiment]:
        with self._lock:
            return sorted(self._experiments.values(), key=lambda e: e.exp_key)

    def acquire_driver(self, exp_key: str, lease: DriverLease, lease_s: float) -> bool:
        with self._lock:
            exp = self._experiment(exp_key)
            now = self.now()
            cur = exp.driver
            if cur is not None and cur.holder != lease.holder \
                    and cur.expires is not None and cur.expires > now:
                return False
            driver = dataclasses.replace(lease, expires=now + timedelta(seconds=lease_s))
            self._experiments[exp_key] = dataclasses.replace(exp, driver=driver)
            return True

    def renew_driver(self, exp_key: str, holder_id: str, lease_s: float) -> bool:
        with self._lock:
            exp = self._experiments.get(exp_key)
            if exp is None or exp.driver is None or exp.driver.holder != holder_id:
                return False
            driver = dataclasses.replace(exp.driver,
                                         expires=self.now() + timedelta(seconds=lease_s))
            self._experiments[exp_key] = dataclasses.replace(exp, driver=driver)
            return True

    def release_driver(self, exp_key: str, holder_id: str) -> None:
        with self._lock:
            exp = self._experiments.get(exp_key)
            if exp is not None and exp.driver is not None \
                    and exp.driver.holder == holder_id:
                self._experiments[exp_key] = dataclasses.replace(exp, driver=None)
            exp = self._experiments.get(exp_key)
            if exp is not None and exp.stop_request is not None \
                    and exp.stop_request.holder == holder_id:
                self._experiments[exp_key] = dataclasses.replace(exp, stop_request=None)

    def request_stop(self, exp_key: str, holder_id: str, by: str) -> bool:
        with self._lock:
            exp = self._experiments.get(exp_key)
            now = self.now()
            d = exp.driver if exp is not None else None
            if exp is None or d is None or d.holder != holder_id or d.expires is None \
                    or d.expires <= now:
                return False
            self._experiments[exp_key] = dataclasses.replace(
                exp, stop_request=StopRequest(holder=holder_id, by=by, at=now))
            return True

    def record_refusal(self, exp_key: str, refusal: Refusal) -> None:
        with self._lock:
            exp = self._experiments.get(exp_key)
            if exp is None:
                return
            kept = [r for r in exp.refusals if r.worker != refusal.worker]
            kept.append(dataclasses.replace(refusal, at=self.now()))
            self._experiments[exp_key] = dataclasses.replace(
                exp, refusals=tuple(kept[-MAX_REFUSALS:]))

    def clear_refusal(self, exp_key: str, worker: str) -> None:
        with self._lock:
            exp = self._experiments.get(exp_key)
            if exp is not None:
                self._experiments[exp_key] = dataclasses.replace(
                    exp, refusals=tuple(r for r in exp.refusals if r.worker != worker))

    def allocate_tids(self, exp_key: str, n: int) -> list[int]:
        with self._lock:
            exp = self._experiment(exp_key)
            start = exp.next_tid
            self._experiments[exp_key] = dataclasses.replace(exp, next_tid=start + n)
            return list(range(start, start + n))

    def delete_experiment(self, exp_key: str) -> int:
        with self._lock:
            self._experiments.pop(exp_key, None)
            return len(self._trials.pop(exp_key, {}))

    def _experiment(self, exp_key: str) -> Experiment:
        exp = self._experiments.get(exp_key)
        if exp is None:
            exp = self.put_experiment(Experiment(exp_key))
        return exp

    # ---- trial lifecycle ---------------------------------------------------------------

    def insert_new(self, trials: Sequence[Trial]) -> None:
        with self._lock:
            now = self.now()
            # Checked under the lock that the inserts take: no takeover can come in between.
            for exp_key, holder in self._fences().items():
                tids = [t.tid for t in trials if t.exp_key == exp_key]
                exp = self._experiments.get(exp_key)
                driver = exp.driver if exp is not None else None
                if tids and (driver is None or driver.holder != holder):
                    raise lost_driver_lease(exp_key, driver, tids)
            for t in trials:
                table = self._trials.setdefault(t.exp_key, {})
                if t.tid in table:
                    continue
                exp = self._experiment(t.exp_key)
                if t.tid >= exp.next_tid:
                    # Keep the counter ahead of explicitly numbered inserts (hyperopt-style
                    # callers choose their own tids).
                    self._experiments[t.exp_key] = dataclasses.replace(exp, next_tid=t.tid + 1)
                table[t.tid] = dataclasses.replace(t, state=inserted_state(t),
                                                   created=t.created or now)

    def restore(self, trials: Sequence[Trial]) -> None:
        """Put ``trials`` back exactly as they were: a snapshot restore (``Trials`` loaded
        from a pickle), not a lifecycle step, so no state rule applies. Only the in-memory
        store offers it; a shared store is never written behind its workers' backs.
        """
        with self._lock:
            for t in trials:
                self._trials.setdefault(t.exp_key, {})[t.tid] = t

    def _get(self, exp_key: str, tid: int) -> Trial:
        try:
            return self._trials[exp_key][tid]
        except KeyError:
            raise TrialNotFound(f"no trial tid={tid} in experiment {exp_key!r}") from None

    def _put(self, t: Trial) -> None:
        self._trials[t.exp_key][t.tid] = t

    def claim(self, exp_key: str, tid: int, owner: Owner, lease_s: float) -> Trial | None:
        with self._lock:
            t = self._get(exp_key, tid)
            if t.state is not TrialState.NEW:
                return None
            now = self.now()
            t = dataclasses.replace(
                t, state=TrialState.RUNNING, owner=owner, claim_token=uuid.uuid4().hex,
                attempts=t.attempts + 1, book_time=now, heartbeat_time=now,
                lease_expires=now + timedelta(seconds=lease_s), result={"status": "running"},
            )
            self._put(t)
            return t

    def _held(self, exp_key: str, tid: int, token: str) -> Trial | None:
        t = self._get(exp_key, tid)
        if t.state is TrialState.RUNNING and t.claim_token == token:
            return t
        return None

    def heartbeat(self, exp_key: str, tid: int, claim_token: str, lease_s: float) -> bool:
        with self._lock:
            t = self._held(exp_key, tid, claim_token)
            if t is None:
                return False
            now = self.now()
            self._put(dataclasses.replace(t, heartbeat_time=now,
                                          lease_expires=now + timedelta(seconds=lease_s)))
            return True

    def report(self, exp_key: str, tid: int, claim_token: str,
               values: Sequence[Intermediate], lease_s: float) -> bool:
        with self._lock:
            t = self._held(exp_key, tid, claim_token)
            if t is None:
                return False
            now = self.now()
            self._put(dataclasses.replace(t, heartbeat_time=now,
                                          lease_expires=now + timedelta(seconds=lease_s),
                                          intermediate=(*t.intermediate, *values)))
            return True

    def finish(self, exp_key: str, tid: int, claim_token: str, state: TrialState,
               result: Mapping[str, Any], error: ErrorInfo | None = None) -> bool:
        if state not in (TrialState.DONE, TrialState.ERROR, TrialState.PRUNED):
            raise ValueError(f"finish() takes DONE, ERROR or PRUNED, got {state!r}")
        with self._lock:
            t = self._held(exp_key, tid, claim_token)
            if t is None:
                return False
            self._put(dataclasses.replace(t, state=state, result=dict(result), error=error,
                                          end_time=self.now(), lease_expires=None))
            return True

    def release(self, exp_key: str, tid: int, claim_token: str, reason: str,
                count_attempt: bool = False) -> bool:
        with self._lock:
            t = self._held(exp_key, tid, claim_token)
            if t is None:
                return False
            self._put(back_to_new(t, self.now(), reason, count_attempt))
            return True

    def requeue_expired(self, exp_key: str, max_attempts: int,
                        lease_s: float | None = None) -> list[Trial]:
        with self._lock:
            now = self.now()
            if lease_s is None:
                lease_s = lease_seconds(self._experiments.get(exp_key))
            changed: list[Trial] = []
            for t in list(self._trials.get(exp_key, {}).values()):
                if not lease_ended(t, now, lease_s):
                    continue
                if t.attempts >= max_attempts:
                    new = given_up(t, now, max_attempts)
                else:
                    new = back_to_new(t, now, "lease expired", True)
                self._put(new)
                changed.append(new)
            return changed

    def requeue_dead(self, exp_key: str, attempts: Mapping[int, str], max_attempts: int
                     ) -> list[Trial]:
        with self._lock:
            now = self.now()
            changed: list[Trial] = []
            for tid, token in sorted(attempts.items()):
                t = self._trials.get(exp_key, {}).get(tid)
                if t is None or t.state is not TrialState.RUNNING or t.claim_token != token:
                    continue
                new = worker_died(t, now, max_attempts)
                self._put(new)
                changed.append(new)
            return changed

    def cancel(self, exp_key: str, states: Iterable[TrialState] = (TrialState.NEW,)) -> int:
        wanted = set(states)
        with self._lock:
            now = self.now()
            n = 0
            for t in list(self._trials.get(exp_key, {}).values()):
                if t.state in wanted:
                    self._put(dataclasses.replace(t, state=TrialState.CANCEL, end_time=now,
                                                  claim_token=None, lease_expires=None,
                                                  result={"status": "fail"}))
                    n += 1
            return n

    def requeue(self, exp_key: str, states: Iterable[TrialState]) -> int:
        wanted = set(states)
        with self._lock:
            now = self.now()
            n = 0
            for t in list(self._trials.get(exp_key, {}).values()):
                if t.state in wanted and t.state.is_finished():
                    outcome = f"requeued by operator from {t.state.name}"
                    if t.error is not None:
                        outcome += f" ({t.error.type}: {t.error.message})"
                    new = back_to_new(t, now, outcome, False)
                    self._put(dataclasses.replace(new, attempts=0, error=None))
                    n += 1
            return n

    # ---- objective payloads -------------------------------------------------------------

    def put_payload(self, exp_key: str, data: bytes) -> str:
        payload_id = f"{exp_key}:{uuid.uuid4().hex}"
        with self._lock:
            self._payloads[payload_id] = bytes(data)
        return payload_id

    def get_payload(self, payload_id: str) -> bytes:
        with self._lock:
            try:
                return self._payloads[payload_id]
            except KeyError:
                raise StoreError(f"no objective payload {payload_id!r}") from None

    def delete_payload(self, payload_id: str) -> None:
        with self._lock:
            self._payloads.pop(payload_id, None)

    # ---- reads -------------------------------------------------------------------------

    def get(self, exp_key: str, tid: int) -> Trial:
        with self._lock:
            return self._get(exp_key, tid)

    def get_many(self, exp_key: str, tids: Iterable[int]) -> list[Trial]:
        with self._lock:
            table = self._trials.get(exp_key, {})
            return [table[t] for t in sorted(set(tids)) if t in table]

    def find(self, exp_key: str, states: Iterable[TrialState] | None = None,
             limit: int | None = None, sort: str = "tid", descending: bool = False
             ) -> list[Trial]:
        with self._lock:
            rows = list(self._trials.get(exp_key, {}).values())
        if states is not None:
            wanted = set(states)
            rows = [t for t in rows if t.state in wanted]
        if sort == "loss":
            # Trials without a loss last in either order: the worst losses, not the
            # failures, head a descending list.
            scored = sorted((t for t in rows if t.loss is not None),
                            key=lambda t: (t.loss, t.tid), reverse=descending)
            rows = scored + sorted((t for t in rows if t.loss is None),
                                   key=lambda t: t.tid, reverse=descending)
        else:
            rows.sort(key=lambda t: t.tid, reverse=descending)
        return rows[:limit] if limit is not None else rows

    def count_by_state(self, exp_key: str) -> dict[TrialState, int]:
        counts = dict.fromkeys(TrialState, 0)
        with self._lock:
            for t in self._trials.get(exp_key, {}).values():
                counts[t.state] += 1
        return counts

    def census(self, exp_key: str, states: Iterable[TrialState]
               ) -> tuple[dict[TrialState, int], list[Trial]]:
        with self._lock:
            return self.count_by_state(exp_key), self.find(exp_key, states)
