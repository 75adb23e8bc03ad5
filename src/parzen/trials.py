"""hyperopt's ``Trials`` facade over a ``TrialStore``.

Every hyperopt attribute name (``tid``, ``misc``, ``vals``, ``idxs``) lives here. The facade
keeps what it has read from the store and refreshes incrementally: only trials it knows to be
queued or running are read again, so a refresh costs O(in flight), not O(all trials).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
import os
import pickle
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from parzen import export
from parzen.backends import Backend, InlineBackend
from parzen.exceptions import AllTrialsFailed, InvalidTrial
from parzen.samplers import History, HistoryBuilder
from parzen.space import Space
from parzen.store import InMemoryTrialStore, TrialStore, back_to_new
from parzen.trial import STATUS_NEW, ErrorInfo, Trial, TrialState

JOB_STATE_NEW = int(TrialState.NEW)
JOB_STATE_RUNNING = int(TrialState.RUNNING)
JOB_STATE_DONE = int(TrialState.DONE)
JOB_STATE_ERROR = int(TrialState.ERROR)
JOB_STATE_CANCEL = int(TrialState.CANCEL)
JOB_STATES = [JOB_STATE_NEW, JOB_STATE_RUNNING, JOB_STATE_DONE, JOB_STATE_ERROR,
              JOB_STATE_CANCEL]
JOB_VALID_STATES = {JOB_STATE_NEW, JOB_STATE_RUNNING, JOB_STATE_DONE}
# The keys every trial document and its ``misc`` must have (hyperopt's).
TRIAL_KEYS = ["tid", "spec", "result", "misc", "state", "owner", "book_time", "refresh_time",
              "exp_key"]
TRIAL_MISC_KEYS = ["tid", "cmd", "idxs", "vals"]

log = logging.getLogger("parzen.trials")
# How many of the last trials to finish ``Trials.recent_finished`` keeps.
RECENT_FINISHED = 20

# hyperopt has no pruned state, and its readers drop documents in a state they do not know
# (its Trials.refresh keeps JOB_VALID_STATES only). A pruned trial therefore shows as DONE with
# ``result["status"] == "fail"`` and ``result["pruned"] == {"step": ..., "loss": ...}``:
# finished, never the best, never a loss for hyperopt's samplers.
_JOB_STATE_OF = {TrialState.PRUNED: JOB_STATE_DONE}


def hyperopt_document(t: Trial, tid: Any = None) -> dict[str, Any]:
    """A trial as hyperopt's trial document (``misc.idxs``/``misc.vals`` per label).

    Args:
        tid: the tid the document shows, when a caller inserted it under a tid that is not
            an int (hyperopt allows any; parzen's stores number trials).
    """
    shown = t.tid if tid is None else tid
    idxs = {lab: [shown] for lab in t.params}
    vals = {lab: [v] for lab, v in t.params.items()}
    doc: dict[str, Any] = {
        "state": _JOB_STATE_OF.get(t.state, int(t.state)),
        "tid": shown,
        "spec": None,
        "result": dict(t.result),
        "misc": {"tid": shown, "cmd": ("domain_attachment", "FMinIter_Domain"),
                 "workdir": None, "idxs": idxs, "vals": vals},
        "exp_key": t.exp_key,
        "owner": None if t.owner is None else (t.owner.host, t.owner.pid),
        "version": 0,
        "book_time": t.book_time,
        "refresh_time": t.end_time or t.heartbeat_time or t.book_time or t.created,
        "attempts": t.attempts,
    }
    if t.error is not None:
        doc["misc"]["error"] = (t.error.type, t.error.message)
        doc["error"] = {"type": t.error.type, "message": t.error.message,
                        "traceback": t.error.traceback}
    if t.origin:
        doc["misc"]["origin"] = t.origin
    if t.intermediate:
        doc["intermediate"] = [{"step": r.step, "loss": r.loss} for r in t.curve()]
    return doc


def params_from_misc(misc: Mapping[str, Any]) -> dict[str, Any]:
    """The active ``{label: value}`` of a hyperopt ``misc`` (labels with an empty list are
    inactive)."""
    out: dict[str, Any] = {}
    for lab, vs in misc.get("vals", {}).items():
        if len(vs) > 0:
            out[lab] = vs[0]
    return out


def check_document(d: Any, exp_key: str) -> Mapping[str, Any]:
    """hyperopt's checks of a trial document before it is inserted.

    Raises:
        InvalidTrial: not a mapping, a key of ``TRIAL_KEYS`` or ``misc``'s
            ``TRIAL_MISC_KEYS`` is missing, the tids of the document and its ``misc``
            differ, or its ``exp_key`` is another experiment's.
    """
    if not isinstance(d, Mapping):
        raise InvalidTrial(f"a trial document must be a dict, got {type(d).__name__} {d!r:.80}")
    missing = [k for k in TRIAL_KEYS if k not in d]
    if missing:
        raise InvalidTrial(f"the trial document lacks the keys {missing} (tid "
                           f"{d.get('tid')!r}); trials.new_trial_docs makes complete ones")
    misc = d["misc"]
    if not isinstance(misc, Mapping):
        raise InvalidTrial(f"trial {d['tid']!r}: misc must be a dict, got {misc!r:.80}")
    missing = [k for k in TRIAL_MISC_KEYS if k not in misc]
    if missing:
        raise InvalidTrial(f"trial {d['tid']!r}: misc lacks the keys {missing}")
    if misc["tid"] != d["tid"]:
        raise InvalidTrial(f"trial {d['tid']!r}: misc has tid {misc['tid']!r}; the two must "
                           "be equal")
    if d["exp_key"] is not None and d["exp_key"] != exp_key:
        raise InvalidTrial(f"trial {d['tid']!r} belongs to experiment {d['exp_key']!r}, not "
                           f"{exp_key!r}")
    return d


def _is_int_tid(tid: Any) -> bool:
    return isinstance(tid, (int, np.integer)) and not isinstance(tid, bool) and bool(tid >= 0)


def _trial_from_doc(exp_key: str, d: Mapping[str, Any], now: datetime,
                    tid: int | None = None) -> Trial:
    state = TrialState.NEW
    raw_state = d.get("state")
    if raw_state in (JOB_STATE_DONE, JOB_STATE_ERROR, JOB_STATE_CANCEL):
        state = TrialState(int(raw_state))
    misc = d["misc"]
    error = None
    if state is TrialState.ERROR and misc.get("error"):
        etype, message = (list(misc["error"]) + ["", ""])[:2]
        error = ErrorInfo(str(etype), str(message))
    finished = state.is_finished()
    return Trial(exp_key=exp_key, tid=int(d["tid"]) if tid is None else tid, state=state,
                 params=params_from_misc(misc), created=now,
                 result=dict(d["result"]) if finished and d.get("result") else
                 {"status": STATUS_NEW},
                 end_time=(d.get("refresh_time") or now) if finished else None,
                 error=error, origin=str(misc.get("origin", "")))


class Trials:
    """The history of one experiment, with hyperopt's attributes.

    Args:
        exp_key: the experiment's name; trials of other experiments in the same store are
            invisible.
        refresh: accepted for hyperopt compatibility; the facade always refreshes lazily.
        store: the backing store; an in-memory store by default.
    """

    asynchronous = False

    def __init__(self, exp_key: str | None = None, refresh: bool = True,
                 store: TrialStore | None = None) -> None:
        self._exp_key = exp_key if exp_key is not None else "default"
        self._store: TrialStore = store if store is not None else InMemoryTrialStore()
        self._reset_cache()
        self.attachments: dict[str, Any] = {}

    def _reset_cache(self) -> None:
        self._known: dict[int, Trial] = {}
        self._in_flight: set[int] = set()
        # Inserted from documents but not read back yet: hyperopt shows an inserted document
        # only after ``refresh()``.
        self._unseen: set[int] = set()
        # Documents inserted under a tid that is not an int: store tid -> the document's tid.
        self._alias: dict[int, Any] = {}
        self._by_alias: dict[Any, int] = {}
        self._loaded = False
        # hyperopt documents, converted once per trial version: reading ``trials.trials``
        # after each change costs O(changed), not O(all trials).
        self._doc_of: dict[int, dict[str, Any]] = {}
        self._stale_docs: set[int] = set()
        self._docs: list[dict[str, Any]] | None = None
        self._visible: list[dict[str, Any]] | None = None
        self._builder: HistoryBuilder | None = None
        self._builder_space: Space | None = None
        self._state_counts: dict[TrialState, int] = dict.fromkeys(TrialState, 0)
        self._n_ok = 0  # trials with a loss (Trial.loss: DONE, status ok, finite)
        self._best: float | None = None
        # The best trial's tid, kept with ``_best``: ``fmin`` returns ``argmin``, and a loop
        # that calls fmin once per trial would otherwise scan every trial per call (3 ms at
        # 1,000 trials, twice the suggestion itself).
        self._best_tid: int | None = None
        # The last trials seen to finish (DONE or ERROR), oldest first: the coordinator's
        # failure watch reads them after each refresh without scanning every trial.
        self._recent: collections.deque[Trial] = collections.deque(maxlen=RECENT_FINISHED)

    # ---- pickling (``trials_save_file``) ------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        self.refresh()
        exp = self._store.get_experiment(self._exp_key)
        return {"exp_key": self._exp_key, "trials": list(self._known.values()),
                "experiment": exp, "attachments": self.attachments, "alias": self._alias}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._exp_key = state["exp_key"]
        self._reset_cache()
        self.attachments = state.get("attachments", {})
        self._alias = dict(state.get("alias", {}))
        self._by_alias = {v: k for k, v in self._alias.items()}
        mem = InMemoryTrialStore()
        self._store = mem
        if state.get("experiment") is not None:
            mem.put_experiment(state["experiment"])
        trials: list[Trial] = state["trials"]
        self._store.insert_new([dataclasses.replace(t, state=TrialState.NEW) for t in trials])
        # insert_new creates NEW trials; put back the finished ones exactly as they were. A
        # trial that was RUNNING when the file was written has no worker any more: it goes
        # back to NEW (attempt not counted), so a resumed run evaluates it again.
        now = datetime.now(timezone.utc)
        mem.restore([
            back_to_new(t, now, "released: the run was saved while it ran", False)
            if t.state is TrialState.RUNNING else t for t in trials])

    # ---- store access ------------------------------------------------------------------

    @property
    def exp_key(self) -> str:
        return self._exp_key

    @property
    def store(self) -> TrialStore:
        return self._store

    def refresh(self) -> None:
        """Read what changed since the last refresh.

        A trial in flight that the store no longer returns (its document deleted by hand)
        is dropped, with a warning: kept, it would be waited for, and republished, forever.
        """
        if not self._loaded:
            self._unseen.clear()
            self._absorb(self._store.find(self._exp_key))
            self._loaded = True
        elif self._in_flight or self._unseen:
            wanted, self._unseen = self._in_flight | self._unseen, set()
            fresh = self._store.get_many(self._exp_key, wanted)
            self._absorb(fresh)
            gone = self._in_flight - {t.tid for t in fresh}
            if gone:
                self._forget(gone)

    def reload(self) -> None:
        """Forget what was read and read the whole experiment again.

        ``refresh`` reads only the trials in flight; a trial this object knows as finished
        that changed since (an operator's requeue) is seen only by a reload.
        """
        self._reset_cache()
        self.refresh()

    def _forget(self, tids: set[int]) -> None:
        """Drop the in-flight ``tids``, which the store no longer holds."""
        for tid in sorted(tids):
            # Two causes, told apart by nobody: an operator's delete, or the withdrawal of a
            # late insert by a coordinator that had lost the experiment to this one.
            log.warning("trial %d of %r is no longer in the store: deleted by hand, or "
                        "withdrawn by an earlier coordinator of the experiment that found it "
                        "had lost the driver lease (docs/schema.md, inserted_by); dropped "
                        "from this run, it will not be published again or waited for",
                        tid, self._exp_key)
            self._count(self._known.pop(tid), -1)
            self._in_flight.discard(tid)
            self._doc_of.pop(tid, None)
            self._stale_docs.discard(tid)
        self._docs = None
        # The samplers' history holds a pending row for each; rebuilt on the next use.
        self._builder = None

    def _absorb(self, trials: Iterable[Trial]) -> None:
        for t in trials:
            old = self._known.get(t.tid)
            if old is not None and old == t:
                continue
            self._known[t.tid] = t
            self._stale_docs.add(t.tid)
            if old is None:
                self._docs = None
            self._visible = None
            self._count(old, -1)
            self._count(t, +1)
            if old is not None and old.loss is not None and t.loss != old.loss:
                # Only an operator's requeue takes a loss away; recompute from scratch.
                ok = [(k.loss, k.tid) for k in self._known.values()
                      if k.loss is not None and math.isfinite(k.loss)]
                self._best, self._best_tid = min(ok, default=(None, None))
            if t.state.is_pending():
                self._in_flight.add(t.tid)
            else:
                self._in_flight.discard(t.tid)
                if t.state is not TrialState.CANCEL and (old is None or old.state.is_pending()):
                    self._recent.append(t)
            if self._builder is not None:
                self._builder.add(t)

    def _count(self, t: Trial | None, sign: int) -> None:
        if t is None:
            return
        self._state_counts[t.state] += sign
        loss = t.loss  # set only on DONE trials with status ok and a finite loss
        if loss is not None:
            self._n_ok += sign
        if sign > 0 and loss is not None and math.isfinite(loss) and (
                self._best is None or self._best_tid is None
                or (loss, t.tid) < (self._best, self._best_tid)):
            self._best, self._best_tid = loss, t.tid

    def state_counts(self) -> dict[TrialState, int]:
        """Trials per state as of the last refresh (O(1))."""
        if not self._loaded:
            self.refresh()
        return dict(self._state_counts)

    @property
    def ok_count(self) -> int:
        """Trials that finished with a loss (status ok, finite), as of the last refresh
        (O(1)); the other finished trials failed."""
        if not self._loaded:
            self.refresh()
        return self._n_ok

    @property
    def best_loss(self) -> float | None:
        """The lowest finite loss with status ok, as of the last refresh (O(1))."""
        if not self._loaded:
            self.refresh()
        return self._best

    def _sorted(self) -> list[Trial]:
        if not self._loaded:
            self.refresh()
        return [self._known[k] for k in sorted(self._known)]

    def history(self, space: Space) -> History:
        """Columnar history for samplers, maintained incrementally across calls."""
        if not self._loaded:
            self.refresh()
        if self._builder is None or self._builder_space is None \
                or self._builder_space.fingerprint() != space.fingerprint():
            # Room to grow: a history loaded whole (a resumed run, a warm start) is appended to
            # right away, and regrowing the buffers also drops the samplers' kept encodings.
            self._builder = HistoryBuilder(space, capacity=max(64, 2 * len(self._known)))
            self._builder_space = space
            for t in self._sorted():
                self._builder.add(t)
        return self._builder.view()

    def recent_finished(self) -> list[Trial]:
        """The last ``RECENT_FINISHED`` trials to finish (DONE or ERROR) as of the last
        refresh, in the order they were read, oldest first."""
        return list(self._recent)

    @property
    def in_flight(self) -> set[int]:
        """tids of trials queued or running, as of the last refresh."""
        return set(self._in_flight)

    def known(self, tid: int) -> Trial:
        """The trial ``tid`` as of the last refresh."""
        return self._known[tid]

    def all_trials(self) -> list[Trial]:
        """Every trial, as ``Trial`` objects, in tid order."""
        return self._sorted()

    # ---- inserting (hyperopt's algorithm protocol) ---------------------------------------

    def new_trial_ids(self, n: int) -> list[int]:
        return self._store.allocate_tids(self._exp_key, n)

    def new_trial_docs(self, tids: Sequence[int], specs: Sequence[Any],
                       results: Sequence[Any], miscs: Sequence[Mapping[str, Any]]
                       ) -> list[dict[str, Any]]:
        """hyperopt's constructor of NEW trial documents."""
        docs = []
        for tid, spec, result, misc in zip(tids, specs, results, miscs, strict=True):
            docs.append({"state": JOB_STATE_NEW, "tid": tid, "spec": spec,
                         "result": result, "misc": dict(misc), "exp_key": self._exp_key,
                         "owner": None, "version": 0, "book_time": None,
                         "refresh_time": None})
        return docs

    def docs_for_points(self, tids: Sequence[int], points: Sequence[Mapping[str, Any]],
                        origin: str = "") -> list[dict[str, Any]]:
        """NEW trial documents for ``points`` (``{label: raw value}``, active labels only)."""
        miscs = [{"tid": tid, "cmd": ("domain_attachment", "FMinIter_Domain"),
                  "workdir": None, "idxs": {k: [tid] for k in p},
                  "vals": {k: [v] for k, v in p.items()}, "origin": origin}
                 for tid, p in zip(tids, points, strict=True)]
        return self.new_trial_docs(tids, [None] * len(tids),
                                   [{"status": STATUS_NEW}] * len(tids), miscs)

    def insert_trial_docs(self, docs: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Insert trial documents after hyperopt's checks; returns their tids.

        As in hyperopt, the documents show in ``trials.trials`` after the next ``refresh()``.
        Documents in state DONE or ERROR keep their result (hyperopt's way to warm-start an
        experiment with earlier results); all others are inserted as NEW. A tid that is not
        an int is kept as the documents' tid, with a store tid behind it.

        Raises:
            InvalidTrial: a document lacks one of ``TRIAL_KEYS`` (or ``misc`` one of
                ``TRIAL_MISC_KEYS``), its tids disagree, or it names another experiment.
        """
        self.insert_documents(docs, check=True)
        return [d["tid"] for d in docs]

    def insert_documents(self, docs: Sequence[Mapping[str, Any]], check: bool = False,
                         show: bool = False) -> list[int]:
        """Insert trial documents, after hyperopt's checks when ``check``; returns the store
        tids. They show in ``trials.trials`` after ``refresh()``, or at once with ``show``
        (fmin's path: hyperopt's fmin refreshes right after inserting). Times are the
        store's, as every other time in a trial: this machine's clock may be off."""
        if check:
            docs = [check_document(d, self._exp_key) for d in docs]
        now = self._store.now()
        trials = []
        for d in docs:
            tid = d["tid"]
            if _is_int_tid(tid):
                trials.append(_trial_from_doc(self._exp_key, d, now))
                continue
            inner = self._by_alias.get(tid)
            if inner is None:
                inner = self._store.allocate_tids(self._exp_key, 1)[0]
                self._alias[inner] = tid
                self._by_alias[tid] = inner
            trials.append(_trial_from_doc(self._exp_key, d, now, tid=inner))
        self._store.insert_new(trials)
        tids = [t.tid for t in trials]
        if show and self._loaded:
            self._absorb(self._store.get_many(self._exp_key, tids)
                         if any(t.state.is_finished() for t in trials) else trials)
        else:
            self._unseen.update(tids)
        return tids

    def insert_points(self, tids: Sequence[int], points: Sequence[Mapping[str, Any]],
                      origin: str = "") -> list[int]:
        """Insert ``points`` (``{label: raw value}``, active labels only) as NEW trials with
        ``tids``; returns the tids. The coordinator's path: no hyperopt document is made.
        Idempotent by tid, so a retry after a lost reply neither duplicates nor orphans."""
        now = self._store.now()  # the store's clock, as every other time in a trial
        trials = [Trial(exp_key=self._exp_key, tid=int(tid), state=TrialState.NEW,
                        params=dict(p), created=now, result={"status": STATUS_NEW},
                        origin=origin)
                  for tid, p in zip(tids, points, strict=True)]
        self._store.insert_new(trials)
        self._absorb(trials)
        return [t.tid for t in trials]

    def insert_trial_doc(self, doc: Mapping[str, Any]) -> Any:
        """``insert_trial_docs([doc])[0]``."""
        return self.insert_trial_docs([doc])[0]

    def delete_all(self) -> None:
        """Remove every trial of this experiment."""
        self._store.delete_experiment(self._exp_key)
        self._reset_cache()

    # ---- hyperopt's read API -----------------------------------------------------------

    @property
    def trials(self) -> list[dict[str, Any]]:
        """The trials as hyperopt documents, in tid order, as of the last refresh: queued,
        running and done ones, as in hyperopt. Trials that raised are in
        ``_dynamic_trials`` (with ``doc["error"]``: type, message, traceback) and
        ``errors()``; cancelled ones only in ``_dynamic_trials``."""
        docs = self._all_docs()
        if self._visible is None:
            self._visible = [d for d in docs if d["state"] in JOB_VALID_STATES]
        return self._visible

    @property
    def _dynamic_trials(self) -> list[dict[str, Any]]:
        """Every trial as a hyperopt document, errors and cancelled ones included
        (hyperopt's name)."""
        return self._all_docs()

    def _all_docs(self) -> list[dict[str, Any]]:
        if not self._loaded:
            self.refresh()
        if self._stale_docs:
            for tid in self._stale_docs:
                fresh = hyperopt_document(self._known[tid], self._alias.get(tid))
                old = self._doc_of.get(tid)
                if old is not None:
                    # Update in place so lists handed out earlier see the change, as with
                    # hyperopt's Trials.
                    old.clear()
                    old.update(fresh)
                else:
                    self._doc_of[tid] = fresh
            self._stale_docs.clear()
        if self._docs is None:
            self._docs = [self._doc_of[k] for k in sorted(self._doc_of)]
            self._visible = None
        return self._docs

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.trials)

    def __len__(self) -> int:
        return len(self.trials)

    def __getitem__(self, item: int) -> dict[str, Any]:
        return self.trials[item]

    @property
    def tids(self) -> list[int]:
        return [d["tid"] for d in self.trials]

    @property
    def specs(self) -> list[Any]:
        return [d["spec"] for d in self.trials]

    @property
    def results(self) -> list[dict[str, Any]]:
        return [d["result"] for d in self.trials]

    @property
    def miscs(self) -> list[dict[str, Any]]:
        return [d["misc"] for d in self.trials]

    @property
    def idxs_vals(self) -> tuple[dict[str, list[int]], dict[str, list[Any]]]:
        idxs: dict[str, list[int]] = {}
        vals: dict[str, list[Any]] = {}
        for misc in self.miscs:
            for lab, ids in misc["idxs"].items():
                idxs.setdefault(lab, []).extend(ids)
                vals.setdefault(lab, []).extend(misc["vals"][lab])
        return idxs, vals

    @property
    def idxs(self) -> dict[str, list[int]]:
        return self.idxs_vals[0]

    @property
    def vals(self) -> dict[str, list[Any]]:
        return self.idxs_vals[1]

    def losses(self, bandit: Any = None) -> list[float | None]:
        """Each trial's loss (None where it has none)."""
        return [r.get("loss") for r in self.results]

    def statuses(self, bandit: Any = None) -> list[str]:
        return [r.get("status", STATUS_NEW) for r in self.results]

    def count_by_state_synced(self, arg: int | Iterable[int],
                              trials: Sequence[Mapping[str, Any]] | None = None) -> int:
        """How many trials are in state ``arg`` (a state or a list of states)."""
        wanted = {arg} if isinstance(arg, int) else set(arg)
        docs = self.trials if trials is None else trials
        return sum(1 for d in docs if d["state"] in wanted)

    def count_by_state_unsynced(self, arg: int | Iterable[int]) -> int:
        """How many trials of the experiment are in state ``arg`` now, errors and cancelled
        ones included."""
        wanted = {arg} if isinstance(arg, int) else set(arg)
        counts = self._store.count_by_state(self._exp_key)
        return sum(n for s, n in counts.items() if int(s) in wanted)

    def _ok(self) -> list[Trial]:
        return [t for t in self._sorted() if t.loss is not None and math.isfinite(t.loss)]

    @property
    def best_trial(self) -> dict[str, Any]:
        """The trial with the lowest loss among those with status ok.

        Raises:
            AllTrialsFailed: no trial finished with status ok.
        """
        if not self._loaded:
            self.refresh()
        if self._best_tid is not None:
            return hyperopt_document(self._known[self._best_tid])
        if not self._known:
            raise AllTrialsFailed("no trial has run, so there is no best one: these trials are "
                                  "empty (fmin with max_evals=0?); run fmin with max_evals >= 1")
        failed = [t for t in self._sorted() if t.state is TrialState.ERROR]
        msg = f"no trial of {len(self._known)} finished with status ok"
        if failed and failed[0].error is not None:
            e = failed[0].error
            msg += (f"; {len(failed)} of {len(self._known)} raised, the first (trial "
                    f"{failed[0].tid}) with "
                    f"{e.type}: {e.message}\n{e.traceback}")
        pruned = sum(1 for t in self._known.values() if t.state is TrialState.PRUNED)
        if pruned:
            msg += (f"; {pruned} of {len(self._known)} were pruned, which ends a trial without a "
                    "final loss: let some trials complete (a larger min_resource or "
                    "n_startup_trials for the pruner); the pruned trials' last reported "
                    "losses are in parzen trials --state pruned and Trials.all_trials()")
        raise AllTrialsFailed(msg)

    @property
    def argmin(self) -> dict[str, Any]:
        """The best trial's active parameters (choice *indices*, as in hyperopt)."""
        return params_from_misc(self.best_trial["misc"])

    def average_best_error(self, bandit: Any = None) -> float:
        """hyperopt's "average best error": the ``true_loss`` of the best trial or, when
        results report a ``loss_variance``, the ``true_loss`` of the trials within three
        standard deviations of the best loss, weighted by the probability that each one's
        loss is truly the lowest.

        Args:
            bandit: a ``Domain`` whose ``loss``/``loss_variance``/``true_loss``/``status``
                read the results (hyperopt's); by default the result keys themselves.

        Raises:
            AllTrialsFailed: no trial finished with status ok.
        """
        rows = []
        for t in self._ok():
            r = t.result
            if bandit is None:
                loss, var = float(t.loss or 0.0), float(r.get("loss_variance", 0.0))
                true = float(r.get("true_loss", loss))
            else:
                if bandit.status(r) != "ok":
                    continue
                loss, var = float(bandit.loss(r)), float(bandit.loss_variance(r))
                true = float(bandit.true_loss(r))
            rows.append((loss, var, true))
        if not rows:
            raise AllTrialsFailed("no trial finished with status ok")
        rows.sort()
        if all(v == 0 for _, v, _ in rows):
            return rows[0][2]
        cutoff = rows[0][0] + 3 * math.sqrt(rows[0][1])
        near = [row for row in rows if row[0] < cutoff] or rows[:1]
        p = _p_lowest([m for m, _, _ in near], [v for _, v, _ in near])
        return float(sum(pi * true for pi, (_, _, true) in zip(p, near, strict=True)))

    def trial_attachments(self, trial: Mapping[str, Any]) -> TrialAttachments:
        """The attachments of ``trial`` (a document of ``trials.trials``), as in hyperopt:
        ``trials.trial_attachments(trial)["model"]`` reads, ``... ["model"] = blob`` writes.

        Reading finds what was written here, else what the objective returned under
        ``"attachments"``: parzen keeps those in the trial's result, where workers store them
        with the trial (so in MongoDB they count against its 16 MB document limit: keep big
        artefacts in files). Writes go to ``trials.attachments`` under hyperopt's key
        ``"ATTACH::<tid>::<name>"``, and are pickled with the trials.

        Raises:
            KeyError: ``trial`` has no ``tid`` this object knows.
        """
        if not self._loaded:
            self.refresh()
        doc_tid = trial["tid"]
        tid = self._by_alias.get(doc_tid, doc_tid)
        if tid not in self._known:
            raise KeyError(f"trial {doc_tid!r} is not among these trials")
        found = self._known[tid].result.get("attachments")
        returned = MappingProxyType(dict(found) if isinstance(found, Mapping) else {})
        return TrialAttachments(self.attachments, doc_tid, returned)

    def errors(self) -> list[tuple[int, ErrorInfo]]:
        """``(tid, ErrorInfo)`` of every ERROR trial."""
        return [(t.tid, t.error) for t in self._sorted() if t.error is not None]

    def backend(self) -> Backend:
        """How ``fmin`` should evaluate these trials: in this process, one by one."""
        return InlineBackend()

    # fmin sits above Trials (it builds the runner from ``backend()``), yet hyperopt's API
    # gives Trials an ``fmin`` method. Rather than import upwards, parzen.fmin hands its entry
    # point down when it is imported, which the package's __init__ always does first.
    _fmin_entry: ClassVar[Callable[..., Any] | None] = None

    def fmin(self, fn: Any, space: Any, algo: Any = None, max_evals: int | None = None,
             **kwargs: Any) -> Any:
        """``fmin(fn, space, algo, max_evals, trials=self, ...)``; quiet unless
        ``verbose=True``, as hyperopt's ``Trials.fmin`` is."""
        entry = Trials._fmin_entry
        assert entry is not None, "parzen.fmin binds Trials._fmin_entry when imported"
        kwargs.setdefault("verbose", False)
        return entry(fn, space, algo=algo, max_evals=max_evals, trials=self, **kwargs)

    def space_description(self) -> Any:
        """The space's JSON description (``parzen.space.describe``): the local run's
        attachment, else the one on the experiment document; None when neither has one."""
        desc = self.attachments.get("space_description")
        if desc:
            return desc
        exp = self._store.get_experiment(self._exp_key)
        return exp.space if exp is not None and exp.space else None

    def export(self, path: str, format: str | None = None) -> int:
        """Write every trial to ``path`` as CSV (``*.csv``) or JSON Lines (``*.jsonl``), with
        the columns of ``parzen trials``; returns how many. See ``parzen.export``."""
        self.refresh()
        return export.write_file(self.all_trials(), self.space_description(), path, format)

    def to_dataframe(self) -> Any:
        """Every trial as a pandas DataFrame (the columns of ``export``); needs pandas."""
        self.refresh()
        return export.to_dataframe(self.all_trials(), self.space_description())

    def __repr__(self) -> str:
        counts = self._store.count_by_state(self._exp_key)
        parts = ", ".join(f"{s.name.lower()}={n}" for s, n in counts.items() if n)
        return f"<{type(self).__name__} {self._exp_key!r}: {parts or 'empty'}>"


def _p_lowest(means: Sequence[float], variances: Sequence[float], draws: int = 2000
              ) -> list[float]:
    """For each noisy loss ``N(mean, variance)``, the probability that it is the lowest,
    estimated from ``draws`` joint draws (seeded: the same losses give the same answer)."""
    rng = np.random.default_rng(0)
    samples = rng.normal(np.asarray(means, dtype=float), np.sqrt(np.asarray(variances,
                         dtype=float)), size=(draws, len(means)))
    counts = np.bincount(np.argmin(samples, axis=1), minlength=len(means))
    return [float(c) / draws for c in counts]


class TrialAttachments(MutableMapping[str, Any]):
    """One trial's attachments: written ones (in ``Trials.attachments`` under
    ``"ATTACH::<tid>::<name>"``, hyperopt's key) over those its objective returned."""

    def __init__(self, store: dict[str, Any], tid: Any, returned: Mapping[str, Any]) -> None:
        self._store = store
        self._prefix = f"ATTACH::{tid}::"
        self._returned = returned

    def _written(self) -> list[str]:
        return [k[len(self._prefix):] for k in self._store if k.startswith(self._prefix)]

    def __getitem__(self, name: str) -> Any:
        key = self._prefix + name
        if key in self._store:
            return self._store[key]
        return self._returned[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self._store[self._prefix + name] = value

    def __delitem__(self, name: str) -> None:
        key = self._prefix + name
        if key not in self._store:
            raise KeyError(f"{name!r} was not written here; what the objective returned "
                           "stays with its trial")
        del self._store[key]

    def __iter__(self) -> Iterator[str]:
        written = self._written()
        return iter(written + [k for k in self._returned if k not in written])

    def __len__(self) -> int:
        return len(set(self._written()) | set(self._returned))


def generate_trials_to_calculate(points: Sequence[Mapping[str, Any]]) -> Trials:
    """hyperopt's helper: a ``Trials`` pre-filled with NEW trials at ``points``."""
    trials = Trials()
    tids = trials.new_trial_ids(len(points))
    trials.insert_trial_docs(trials.docs_for_points(tids, points, origin="points_to_evaluate"))
    return trials


def trials_from_docs(docs: Sequence[Mapping[str, Any]], validate: bool = True,
                     **kwargs: Any) -> Trials:
    """hyperopt's helper: a refreshed ``Trials(**kwargs)`` holding ``docs``.

    Raises:
        InvalidTrial: with ``validate``, a document fails hyperopt's checks.
    """
    trials = Trials(**kwargs)
    if validate:
        trials.insert_trial_docs(docs)
    else:
        trials.insert_documents(docs)
    trials.refresh()
    return trials


def miscs_to_idxs_vals(miscs: Sequence[Mapping[str, Any]], keys: Sequence[str] | None = None
                       ) -> tuple[dict[str, list[Any]], dict[str, list[Any]]]:
    """hyperopt's columns of ``miscs``: ``({label: [tid, ...]}, {label: [value, ...]})``;
    a label a trial lacks (inactive) adds nothing to its columns."""
    if keys is None:
        keys = list(dict.fromkeys(k for m in miscs for k in m["idxs"]))
    idxs: dict[str, list[Any]] = {k: [] for k in keys}
    vals: dict[str, list[Any]] = {k: [] for k in keys}
    for misc in miscs:
        for k in keys:
            idxs[k].extend(misc["idxs"].get(k, []))
            vals[k].extend(misc["vals"].get(k, []))
    return idxs, vals


def miscs_update_idxs_vals(miscs: Sequence[dict[str, Any]], idxs: Mapping[str, Sequence[Any]],
                           vals: Mapping[str, Sequence[Any]],
                           assert_all_vals_used: bool = True,
                           idxs_map: Mapping[Any, Any] | None = None
                           ) -> Sequence[dict[str, Any]]:
    """The inverse of ``miscs_to_idxs_vals``: write the columns into each ``misc`` (in
    place), every label present, empty where the trial has no value."""
    idxs_map = idxs_map or {}
    by_tid = {m["tid"]: m for m in miscs}
    for m in miscs:
        m["idxs"] = {k: [] for k in idxs}
        m["vals"] = {k: [] for k in idxs}
    for k in idxs:
        for tid, v in zip(idxs[k], vals[k], strict=True):
            tid = idxs_map.get(tid, tid)
            if tid in by_tid:
                by_tid[tid]["idxs"][k] = [tid]
                by_tid[tid]["vals"][k] = [v]
            elif assert_all_vals_used:
                raise InvalidTrial(f"a value for {k!r} names tid {tid!r}, which no misc has")
    return miscs


def spec_from_misc(misc: Mapping[str, Any]) -> dict[str, Any]:
    """``{label: value}`` of a ``misc``'s active labels."""
    return params_from_misc(misc)


def save_trials(trials: Trials, path: str) -> None:
    """Pickle ``trials`` to ``path`` atomically (write a temp file, then rename)."""
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".parzen-", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(trials, f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
