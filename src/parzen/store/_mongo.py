"""``MongoTrialStore``: the store contract on MongoDB, shared by one coordinator and many workers.

Atomicity: every state change is one single-document MongoDB operation whose filter fences
it. ``claim`` matches ``state: "new"``; ``heartbeat`` matches the attempt's ``claim_token``
while RUNNING. Transitions that need the current document (``finish``, ``release``,
``requeue_expired``, ``requeue``) read it and then replace it with a filter on what they read
(compare-and-swap): if a concurrent heartbeat, finish or reaper changed the trial in between,
the write matches nothing and this caller loses the race, so a trial never gets two results.

Clock: leases are compared on the store's clock, never the caller's. MongoDB's ``$$NOW`` would
do that server-side, but only in update pipelines, which mongomock (the in-process test
backend) cannot run, and a second code path for it would leave one path untested. Instead
``now()`` estimates the server's clock: it reads ``localTime`` from ``hello``, anchors it to
``time.monotonic()`` at the midpoint of that round trip and re-reads it every
``clock_resync_s``. The estimate is within half a round trip plus 1 ms of the server's clock
whatever the client's own clock says, and costs one round trip a minute, not one per
operation. A database that is not a pymongo ``Database`` (mongomock) lives in this process,
so the process clock is its clock.

Indexes: ``ensure_indexes`` (idempotent, run by the constructor) creates those listed in
``docs/schema.md``, which says which operation each one serves.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from bson import Binary, ObjectId
from bson.codec_options import CodecOptions
from bson.errors import InvalidId
from pymongo import ASCENDING, DESCENDING, IndexModel, MongoClient, ReturnDocument
from pymongo.database import Database
from pymongo.errors import (
    BulkWriteError,
    ConfigurationError,
    ConnectionFailure,
    DuplicateKeyError,
    InvalidURI,
    OperationFailure,
)

from parzen.exceptions import (
    ConfigError,
    StoreError,
    StoreUnavailable,
    TrialNotFound,
    UnreadableDocument,
    UnreadableTrials,
)
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
from parzen.store._documents import (
    INSERTED_BY,
    driver_from_doc,
    driver_to_doc,
    encode_result,
    experiment_fields,
    experiment_from_doc,
    intermediate_from_doc,
    intermediate_to_doc,
    owner_to_doc,
    refusal_to_doc,
    state_from_doc,
    state_values,
    state_word,
    stop_to_doc,
    to_millis,
    trial_from_doc,
    trial_to_doc,
    utc,
)
from parzen.store.uri import parse_mongo_url, redact_text
from parzen.trial import ErrorInfo, Intermediate, Owner, Trial, TrialState

# GridFS's default chunk size: 255 KiB keeps a chunk plus overhead under 256 KiB.
PAYLOAD_CHUNK_BYTES = 255 * 1024
# Bounds the size of one ``$in`` query; the refresh asks for few tids, a repair may ask many.
_GET_MANY_BATCH = 5000
# A loss that ranks: a finite number (NaN and the infinities fail the range, as they make
# Trial.loss None), so sorting by loss puts them with the trials without one.
_HAS_LOSS = {"state": {"$in": state_values([TrialState.DONE])}, "result.status": "ok",
             "result.loss": {"$type": "number", "$gt": -math.inf, "$lt": math.inf}}

# What count_by_state can check server-side of what trial_from_doc requires: a state, a
# numeric tid, a result that is an object, and a number as the loss of a successful trial.
_WELL_FORMED = {"$and": [
    {"state": {"$in": state_values(TrialState)}},
    {"tid": {"$type": "number"}},
    {"$or": [{"result": None}, {"result": {"$type": "object"}}]},
    {"$or": [{"state": {"$nin": state_values([TrialState.DONE])}},
             {"result.status": {"$ne": "ok"}}, {"result.loss": None},
             {"result.loss": {"$type": "number"}}]},
]}

log = logging.getLogger("parzen.store")


class MongoTrialStore(TrialStore):
    """Trials in a MongoDB database, shared by processes on many machines.

    Args:
        db: the database holding the ``experiments``, ``trials`` and ``payloads.*``
            collections. A mongomock database works too (tests).
        lock: when given, held around every operation. Needed for mongomock shared between
            threads: it is not thread-safe (racing claims can all succeed).
        where: how to name the server in errors (already redacted); defaults to its hosts.
        clock_resync_s: how often ``now()`` re-reads the server's clock.
        skip_unreadable: leave trial documents that cannot be read as trials out of every
            read and list them in ``unreadable()`` (the read tools), instead of raising
            ``UnreadableTrials`` (everything that acts on trials).
    Raises:
        StoreUnavailable: the server could not be reached to create the indexes.
    """

    def __init__(self, db: Database[Any], *, lock: threading.Lock | None = None,
                 where: str | None = None, clock_resync_s: float = 60.0,
                 skip_unreadable: bool = False) -> None:
        is_pymongo = isinstance(db, Database)
        if is_pymongo:
            db = db.with_options(codec_options=CodecOptions(tz_aware=True,
                                                            tzinfo=timezone.utc))
        self._db = db
        self._lock: contextlib.AbstractContextManager[Any] = (
            lock if lock is not None else contextlib.nullcontext())
        self._trials = db["trials"]
        self._experiments = db["experiments"]
        self._files = db["payloads.files"]
        self._chunks = db["payloads.chunks"]
        self._where = where or _describe(db)
        self._timeout_s = db.client.options.server_selection_timeout if is_pymongo else None
        self._clock = _ServerClock(self._server_time if is_pymongo else None, clock_resync_s)
        self._owned_client: MongoClient[Any] | None = None
        self._skip_unreadable = skip_unreadable
        self._skipped: dict[tuple[str, str], UnreadableDocument] = {}
        self.ensure_indexes()

    @classmethod
    def from_url(cls, url: str, *, connect_timeout_s: float = 5.0,
                 lock: threading.Lock | None = None,
                 skip_unreadable: bool = False) -> MongoTrialStore:
        """Connect to ``url`` (``mongodb://``, ``mongodb+srv://`` or hyperopt's ``mongo://``).

        ``connect_timeout_s`` becomes ``serverSelectionTimeoutMS`` and ``connectTimeoutMS``,
        and ``socketTimeoutMS`` defaults to 60 s so a stalled server fails an operation instead
        of hanging it; options set in the URL win. ``close()`` closes the client.
        ``skip_unreadable`` is the constructor's.

        Raises:
            ConfigError: the URL is malformed.
            StoreUnavailable: no server answered within ``connect_timeout_s``; the message
                names the URL with its password redacted, and the timeout.
        """
        if not connect_timeout_s > 0:
            raise ConfigError(f"connect_timeout_s must be > 0, got {connect_timeout_s!r}")
        parsed = parse_mongo_url(url)
        timeout_ms = max(1, int(connect_timeout_s * 1000))
        defaults: dict[str, Any] = {
            "serverSelectionTimeoutMS": timeout_ms, "connectTimeoutMS": timeout_ms,
            "socketTimeoutMS": 60_000, "appname": "parzen"}
        options = {k: v for k, v in defaults.items() if k.lower() not in parsed.options}
        try:
            client: MongoClient[Any] = MongoClient(parsed.uri, tz_aware=True,
                                                   tzinfo=timezone.utc, **options)
        except ConfigurationError as exc:
            # Raised from None: pymongo's own message may quote the URL with its password.
            message = redact_text(str(exc))
            if not isinstance(exc, InvalidURI) and any(
                    word in message for word in ("DNS", "resolution", "nameserver")):
                raise StoreUnavailable(_unreachable(parsed.redacted, message)) from None
            raise ConfigError(f"store URL {parsed.redacted}: {message}") from None
        try:
            store = cls(client[parsed.database], lock=lock, where=parsed.redacted,
                        skip_unreadable=skip_unreadable)
        except BaseException:
            client.close()
            raise
        store._owned_client = client
        return store

    def close(self) -> None:
        """Close the client if ``from_url`` created it."""
        if self._owned_client is not None:
            self._owned_client.close()
            self._owned_client = None

    def unreadable(self) -> list[UnreadableDocument]:
        return list(self._skipped.values())

    def ensure_indexes(self) -> None:
        """Create the indexes listed in ``docs/schema.md`` (a no-op if they exist)."""
        with self._op():
            self._trials.create_indexes([
                IndexModel([("exp_key", ASCENDING), ("tid", ASCENDING)], unique=True,
                           name="exp_tid"),
                IndexModel([("exp_key", ASCENDING), ("state", ASCENDING), ("tid", ASCENDING)],
                           name="exp_state_tid"),
                IndexModel([("exp_key", ASCENDING), ("state", ASCENDING),
                            ("lease_expires", ASCENDING)], name="exp_state_lease"),
                IndexModel([("exp_key", ASCENDING), ("result.loss", ASCENDING),
                            ("tid", ASCENDING)], name="exp_loss"),
                IndexModel([("owner.worker", ASCENDING), ("heartbeat_time", ASCENDING)],
                           name="worker_heartbeat"),
            ])
            self._files.create_indexes([
                IndexModel([("filename", ASCENDING), ("uploadDate", ASCENDING)])])
            self._chunks.create_indexes([
                IndexModel([("files_id", ASCENDING), ("n", ASCENDING)], unique=True)])

    # ---- plumbing ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _op(self) -> Iterator[None]:
        """Hold the lock and map connection failures to ``StoreUnavailable``."""
        with self._lock:
            try:
                yield
            except ConnectionFailure as exc:
                detail = redact_text(str(exc)).split(", Timeout:")[0][:300]
                timeout = "" if self._timeout_s is None else \
                    f" (server selection timeout {self._timeout_s:g} s)"
                raise StoreUnavailable(_unreachable(f"{self._where}{timeout}", detail)) from exc

    def _server_time(self) -> datetime | None:
        admin = self._db.client.admin
        try:
            reply = admin.command("hello")
        except OperationFailure:  # servers older than 4.4.2 only know isMaster
            reply = admin.command("isMaster")
        return utc(reply.get("localTime"))

    def _now(self) -> datetime:
        return self._clock.now()

    def _lease_end(self, now: datetime, lease_s: float) -> datetime:
        return to_millis(now + timedelta(seconds=lease_s))

    def _require(self, exp_key: str, tid: int) -> None:
        """Raise TrialNotFound unless the trial exists (used after a fenced write missed)."""
        if self._trials.find_one({"exp_key": exp_key, "tid": tid}, {"_id": 1}) is None:
            raise TrialNotFound(f"no trial tid={tid} in experiment {exp_key!r}")

    def _swap(self, fence: Mapping[str, Any], new: Trial) -> bool:
        """Replace the trial matching ``fence`` by ``new``; False if ``fence`` no longer
        matches (another writer got there first)."""
        return self._trials.replace_one(fence, trial_to_doc(new)).matched_count == 1

    def _decode(self, docs: Iterable[Mapping[str, Any]]) -> list[Trial]:
        """The trials of ``docs``; see ``_readable``."""
        return [t for _, t in self._readable(docs)]

    def _readable(self, docs: Iterable[Mapping[str, Any]]
                  ) -> list[tuple[Mapping[str, Any], Trial]]:
        """Each document of ``docs`` with its trial. Documents that cannot be read as trials
        are skipped and recorded (``skip_unreadable``), else reported in one
        ``UnreadableTrials`` naming all of them, so one fix mends every one."""
        pairs: list[tuple[Mapping[str, Any], Trial]] = []
        bad: list[UnreadableDocument] = []
        for doc in docs:
            try:
                pairs.append((doc, trial_from_doc(doc)))
            except UnreadableTrials as exc:
                bad += exc.documents
        self._unreadable(bad)
        return pairs

    def _unreadable(self, bad: Sequence[UnreadableDocument]) -> None:
        """Raise ``UnreadableTrials`` for ``bad``, or record them when skipping."""
        if not bad:
            return
        if not self._skip_unreadable:
            raise UnreadableTrials(bad)
        for d in bad:
            self._skipped[(d.exp_key, d.doc_id)] = d

    @staticmethod
    def _held(exp_key: str, tid: int, claim_token: str) -> dict[str, Any]:
        return {"exp_key": exp_key, "tid": tid, "state": "running", "claim_token": claim_token}

    def _new_experiment(self, exp_key: str, now: datetime, *without: str) -> dict[str, Any]:
        """``$setOnInsert`` fields of an experiment created implicitly, minus the fields the
        same update sets otherwise (MongoDB rejects one path in two operators)."""
        doc = {**experiment_fields(Experiment(exp_key)), "next_tid": 0, "driver": None,
               "created": now}
        return {k: v for k, v in doc.items() if k not in without}

    # ---- experiments -------------------------------------------------------------------

    def now(self) -> datetime:
        with self._op():
            return self._now()

    def get_experiment(self, exp_key: str) -> Experiment | None:
        with self._op():
            doc = self._experiments.find_one({"_id": exp_key})
        return None if doc is None else experiment_from_doc(doc)

    def put_experiment(self, experiment: Experiment) -> Experiment:
        fields = experiment_fields(experiment)
        with self._op():
            now = self._now()
            doc = _retry_duplicate(lambda: self._experiments.find_one_and_update(
                {"_id": experiment.exp_key},
                {"$set": fields,
                 "$setOnInsert": {"next_tid": experiment.next_tid,
                                  "driver": driver_to_doc(experiment.driver),
                                  "created": experiment.created or now}},
                upsert=True, return_document=ReturnDocument.AFTER))
        return experiment_from_doc(doc)

    def list_experiments(self) -> list[Experiment]:
        with self._op():
            docs = list(self._experiments.find().sort("_id", ASCENDING))
        return [experiment_from_doc(d) for d in docs]

    def acquire_driver(self, exp_key: str, lease: DriverLease, lease_s: float) -> bool:
        with self._op():
            now = self._now()
            driver = driver_to_doc(dataclasses.replace(
                lease, expires=self._lease_end(now, lease_s)))
            try:
                # Upsert so the first driver creates the experiment. When the experiment
                # exists but the filter misses (another live holder), the upsert collides
                # with its _id: that DuplicateKeyError *is* the refusal.
                self._experiments.update_one(
                    {"_id": exp_key, "$or": [{"driver": None}, {"driver.expires": {"$lte": now}},
                                             {"driver.holder": lease.holder}]},
                    {"$set": {"driver": driver},
                     "$setOnInsert": self._new_experiment(exp_key, now, "driver")},
                    upsert=True)
            except DuplicateKeyError:
                return False
            return True

    def renew_driver(self, exp_key: str, holder_id: str, lease_s: float) -> bool:
        with self._op():
            end = self._lease_end(self._now(), lease_s)
            return self._experiments.update_one(
                {"_id": exp_key, "driver.holder": holder_id},
                {"$set": {"driver.expires": end}}).matched_count == 1

    def release_driver(self, exp_key: str, holder_id: str) -> None:
        with self._op():
            self._experiments.update_one({"_id": exp_key, "driver.holder": holder_id},
                                         {"$set": {"driver": None}})
            self._experiments.update_one({"_id": exp_key, "stop.holder": holder_id},
                                         {"$set": {"stop": None}})

    def request_stop(self, exp_key: str, holder_id: str, by: str) -> bool:
        with self._op():
            now = self._now()
            request = stop_to_doc(StopRequest(holder=holder_id, by=by, at=to_millis(now)))
            return self._experiments.update_one(
                {"_id": exp_key, "driver.holder": holder_id, "driver.expires": {"$gt": now}},
                {"$set": {"stop": request}}).matched_count == 1

    def record_refusal(self, exp_key: str, refusal: Refusal) -> None:
        with self._op():
            doc = refusal_to_doc(dataclasses.replace(refusal, at=to_millis(self._now())))
            # Two writes: the worker's old record out, the new one in at the end. Only that
            # worker writes its record, so nothing can land in between but its own next one.
            self._experiments.update_one({"_id": exp_key},
                                         {"$pull": {"refusals": {"worker": refusal.worker}}})
            self._experiments.update_one(
                {"_id": exp_key},
                {"$push": {"refusals": {"$each": [doc], "$slice": -MAX_REFUSALS}}})

    def clear_refusal(self, exp_key: str, worker: str) -> None:
        with self._op():
            self._experiments.update_one({"_id": exp_key},
                                         {"$pull": {"refusals": {"worker": worker}}})

    def allocate_tids(self, exp_key: str, n: int) -> list[int]:
        if n < 0:
            raise ValueError(f"allocate_tids: n must be >= 0, got {n}")
        with self._op():
            now = self._now()
            while True:
                doc = _retry_duplicate(lambda: self._experiments.find_one_and_update(
                    {"_id": exp_key},
                    {"$inc": {"next_tid": n},
                     "$setOnInsert": self._new_experiment(exp_key, now, "next_tid")},
                    projection={"next_tid": 1}, upsert=True,
                    return_document=ReturnDocument.AFTER))
                end = int(doc["next_tid"])
                # A counter behind the trials (a database restored from an older dump) would
                # hand out tids in use, and insert_new, idempotent by tid, would keep the old
                # trial and drop the new point without a word. One indexed look says.
                used = self._trials.find_one({"exp_key": exp_key, "tid": {"$gte": end - n}},
                                             {"tid": 1}, sort=[("tid", DESCENDING)])
                if used is None:
                    return list(range(end - n, end))
                top = int(used["tid"])
                log.warning("experiment %r: its tid counter next_tid=%d is behind its trials "
                            "(the highest tid is %d; a database restored from an older "
                            "dump?); moved it to %d, so no tid is handed out twice",
                            exp_key, end - n, top, top + 1)
                self._experiments.update_one({"_id": exp_key},
                                             {"$max": {"next_tid": top + 1}})

    def delete_experiment(self, exp_key: str) -> int:
        with self._op():
            removed = self._trials.delete_many({"exp_key": exp_key}).deleted_count
            for f in list(self._files.find({"metadata.exp_key": exp_key}, {"_id": 1})):
                self._delete_payload(f["_id"])
            self._experiments.delete_one({"_id": exp_key})
        return removed

    # ---- trial lifecycle ---------------------------------------------------------------

    def insert_new(self, trials: Sequence[Trial]) -> None:
        if not trials:
            return
        with self._op():
            now = self._now()
            docs = [trial_to_doc(dataclasses.replace(t, state=inserted_state(t),
                                                     created=t.created or now))
                    for t in trials]
            top: dict[str, int] = {}
            for t in trials:
                top[t.exp_key] = max(top.get(t.exp_key, -1), t.tid)
            fenced = {k: h for k, h in self._fences().items() if k in top}
            for d in docs:
                holder = fenced.get(d["exp_key"])
                if holder is not None:
                    # Whose insert this was, so that a refusal withdraws only its own trials.
                    d[INSERTED_BY] = holder
            for exp_key, holder in fenced.items():
                # Before writing. Usually nothing to undo; but this may be the retry of a call
                # whose write landed before a store outage (``patiently`` retries the whole
                # call): that write is withdrawn too.
                driver = self._driver_of(exp_key)
                if driver is None or driver.holder != holder:
                    tids = [t.tid for t in trials if t.exp_key == exp_key]
                    self._withdraw(exp_key, holder, tids)
                    raise lost_driver_lease(exp_key, driver, tids)
            # Bump the counters first, so the counter is never behind an inserted tid even if
            # we crash between the two writes (hyperopt-style callers choose their own tids).
            for exp_key, tid in top.items():
                update = {"$max": {"next_tid": tid + 1},
                          "$setOnInsert": self._new_experiment(exp_key, now, "next_tid")}
                _retry_duplicate(functools.partial(self._experiments.update_one,
                                                   {"_id": exp_key}, update, upsert=True))
            existed: set[int] = set()
            try:
                self._trials.insert_many(docs, ordered=False)
            except BulkWriteError as exc:
                # Existing (exp_key, tid): the retry of a crashed insert; anything else is real.
                details = exc.details
                if details.get("writeConcernErrors") or any(
                        e.get("code") != 11000 for e in details.get("writeErrors", ())):
                    raise
                existed = {int(e["index"]) for e in details.get("writeErrors", ())}
            for exp_key, holder in fenced.items():
                # And after: the process may have been paused between the check above and
                # the write. Holding the lease now means nobody took the experiment over
                # since the check (only this loop renews it), so a later driver reads these
                # trials when it takes over; otherwise they are withdrawn.
                driver = self._driver_of(exp_key)
                if driver is None or driver.holder != holder:
                    tids = [int(d["tid"]) for i, d in enumerate(docs)
                            if i not in existed and d["exp_key"] == exp_key]
                    self._withdraw(exp_key, holder, tids)
                    raise lost_driver_lease(exp_key, driver, tids)

    def _driver_of(self, exp_key: str) -> DriverLease | None:
        """The driver lease of ``exp_key``, expired or not: a fenced insert goes on while its
        holder's lease, even expired, was not taken, since nobody else has written."""
        doc = self._experiments.find_one({"_id": exp_key}, {"driver": 1})
        return driver_from_doc(doc.get("driver")) if doc is not None else None

    def _withdraw(self, exp_key: str, holder: str, tids: Sequence[int]) -> None:
        """Delete the trials of ``tids`` that ``holder``'s fenced ``insert_new`` wrote after
        its lease was lost, each only while no worker has touched it: still NEW, never
        claimed (no attempt, no owner). One that the new driver read in the meantime,
        published and a worker claimed (even one since requeued, with its attempt's record)
        stays: that driver counts it as its own."""
        kept = []
        for tid in tids:
            gone = self._trials.delete_one(
                {"exp_key": exp_key, "tid": tid, INSERTED_BY: holder,
                 "state": state_word(TrialState.NEW), "attempts": 0,
                 "owner": None}).deleted_count
            if not gone and self._trials.count_documents(
                    {"exp_key": exp_key, "tid": tid, INSERTED_BY: holder}, limit=1):
                kept.append(tid)
        if kept:
            log.warning("experiment %r: trials %s were written after this coordinator lost "
                        "the driver lease and were claimed before they could be withdrawn; "
                        "the coordinator that drives the experiment now counts them",
                        exp_key, kept)

    def claim(self, exp_key: str, tid: int, owner: Owner, lease_s: float) -> Trial | None:
        with self._op():
            now = self._now()
            doc = self._trials.find_one_and_update(
                {"exp_key": exp_key, "tid": tid,
                 "state": {"$in": state_values([TrialState.NEW])}},
                {"$set": {"state": "running", "owner": owner_to_doc(owner),
                          "claim_token": uuid.uuid4().hex, "book_time": now,
                          "heartbeat_time": now, "lease_expires": self._lease_end(now, lease_s),
                          "result": {"status": "running"}},
                 "$inc": {"attempts": 1}},
                return_document=ReturnDocument.AFTER)
            if doc is None:
                self._require(exp_key, tid)
                return None
        return trial_from_doc(doc)

    def heartbeat(self, exp_key: str, tid: int, claim_token: str, lease_s: float) -> bool:
        with self._op():
            now = self._now()
            hit = self._trials.update_one(
                self._held(exp_key, tid, claim_token),
                {"$set": {"heartbeat_time": now,
                          "lease_expires": self._lease_end(now, lease_s)}}).matched_count
            if not hit:
                self._require(exp_key, tid)
            return hit == 1

    def report(self, exp_key: str, tid: int, claim_token: str,
               values: Sequence[Intermediate], lease_s: float) -> bool:
        with self._op():
            now = self._now()
            hit = self._trials.update_one(
                self._held(exp_key, tid, claim_token),
                {"$set": {"heartbeat_time": now, "lease_expires": self._lease_end(now, lease_s)},
                 "$push": {"intermediate": {"$each": intermediate_to_doc(values)}}}
            ).matched_count
            if not hit:
                self._require(exp_key, tid)
            return hit == 1

    def reported(self, exp_key: str) -> list[Trial]:
        # A rung's decision reads every curve of the experiment: the three fields only.
        with self._op():
            docs = list(self._trials.find(
                {"exp_key": exp_key, "intermediate.0": {"$exists": True}},
                {"_id": 0, "tid": 1, "state": 1, "intermediate": 1}))
        return [Trial(exp_key, int(d["tid"]), state_from_doc(d.get("state")), {},
                      intermediate=intermediate_from_doc(d.get("intermediate")))
                for d in docs]

    def finish(self, exp_key: str, tid: int, claim_token: str, state: TrialState,
               result: Mapping[str, Any], error: ErrorInfo | None = None) -> bool:
        if state not in (TrialState.DONE, TrialState.ERROR, TrialState.PRUNED):
            raise ValueError(f"finish() takes DONE, ERROR or PRUNED, got {state!r}")
        encode_result(result)  # reject an unstorable result before touching the store
        with self._op():
            fence, held = self._read_held(exp_key, tid, claim_token)
            if held is None:
                return False
            done = dataclasses.replace(held, state=state, result=dict(result),
                                       error=error, end_time=self._now(), lease_expires=None)
            return self._swap(fence, done)

    def release(self, exp_key: str, tid: int, claim_token: str, reason: str,
                count_attempt: bool = False) -> bool:
        with self._op():
            fence, held = self._read_held(exp_key, tid, claim_token)
            if held is None:
                return False
            return self._swap(fence, back_to_new(held, self._now(), reason, count_attempt))

    def _read_held(self, exp_key: str, tid: int, claim_token: str
                   ) -> tuple[dict[str, Any], Trial | None]:
        """The fence for the attempt holding ``claim_token`` and its trial, or None when the
        lease was lost (TrialNotFound when there is no such trial at all)."""
        fence = self._held(exp_key, tid, claim_token)
        doc = self._trials.find_one(fence)
        if doc is None:
            self._require(exp_key, tid)
            return fence, None
        return fence, trial_from_doc(doc)

    def requeue_expired(self, exp_key: str, max_attempts: int,
                        lease_s: float | None = None) -> list[Trial]:
        changed: list[Trial] = []
        with self._op():
            now = self._now()
            # "Not after now" rather than "<= now": MongoDB compares dates with dates only,
            # so this also matches a lease that is missing, null or not a date, which a
            # hand edit or a hyperopt document leaves (lease_ended judges those).
            candidates = list(self._trials.find(
                {"exp_key": exp_key, "state": {"$in": state_values([TrialState.RUNNING])},
                 "lease_expires": {"$not": {"$gt": now}}}
            ).sort("tid", ASCENDING))
            readable = self._readable(candidates)
            if lease_s is None and any(t.lease_expires is None for _, t in readable):
                found = self._experiments.find_one({"_id": exp_key})
                lease_s = lease_seconds(None if found is None else experiment_from_doc(found))
            for doc, t in readable:
                if not lease_ended(t, now, lease_s or 0.0):
                    continue  # no lease date, but a recent heartbeat: its worker lives
                new = (given_up(t, now, max_attempts) if t.attempts >= max_attempts
                       else back_to_new(t, now, "lease expired", True))
                # Fenced on the token *and* a still-expired lease (or the same last
                # heartbeat, for one without a lease date): a heartbeat or finish that lands
                # after our read wins, and the trial is left alone.
                fence = {"_id": doc["_id"], "state": doc["state"],
                         "claim_token": doc.get("claim_token"),
                         "lease_expires": {"$not": {"$gt": now}},
                         "heartbeat_time": doc.get("heartbeat_time")}
                if self._swap(fence, new):
                    changed.append(new)
                    if t.lease_expires is None:
                        log.warning("trial %s of %r was running without a lease date (edited "
                                    "by hand, or written by hyperopt) and %s, past its %g s "
                                    "lease: requeued as expired", t.tid, exp_key,
                                    _last_sign(t, now), lease_s)
        return changed

    def requeue_dead(self, exp_key: str, attempts: Mapping[int, str], max_attempts: int
                     ) -> list[Trial]:
        changed: list[Trial] = []
        with self._op():
            now = self._now()
            for tid, token in sorted(attempts.items()):
                fence = self._held(exp_key, tid, token)
                doc = self._trials.find_one(fence)
                if doc is None:
                    continue  # finished, released or requeued since it was seen
                new = worker_died(trial_from_doc(doc), now, max_attempts)
                if self._swap(fence, new):
                    changed.append(new)
        return changed

    def cancel(self, exp_key: str, states: Iterable[TrialState] = (TrialState.NEW,)) -> int:
        words = state_values(states)
        if not words:
            return 0
        with self._op():
            now = self._now()
            # Clearing the token fences out a cancelled RUNNING attempt's late finish.
            return self._trials.update_many(
                {"exp_key": exp_key, "state": {"$in": words}},
                {"$set": {"state": "cancel", "end_time": now, "claim_token": None,
                          "lease_expires": None, "duration_s": None,
                          "result": {"status": "fail"}}}).matched_count

    def requeue(self, exp_key: str, states: Iterable[TrialState]) -> int:
        words = state_values(s for s in states if s.is_finished())
        if not words:
            return 0
        n = 0
        with self._op():
            now = self._now()
            docs = list(self._trials.find({"exp_key": exp_key, "state": {"$in": words}})
                        .sort("tid", ASCENDING))
            for doc, t in self._readable(docs):
                outcome = f"requeued by operator from {t.state.name}"
                if t.error is not None:
                    outcome += f" ({t.error.type}: {t.error.message})"
                new = dataclasses.replace(back_to_new(t, now, outcome, False), attempts=0,
                                          error=None)
                # A finished trial changes only by requeue; the fence stops two operators
                # from requeueing the same outcome twice.
                fence = {"_id": doc["_id"], "state": doc["state"],
                         "end_time": doc.get("end_time"), "claim_token": doc.get("claim_token"),
                         "attempts": doc.get("attempts")}
                n += self._swap(fence, new)
        return n

    # ---- reads -------------------------------------------------------------------------

    def get(self, exp_key: str, tid: int) -> Trial:
        with self._op():
            doc = self._trials.find_one({"exp_key": exp_key, "tid": tid})
        if doc is None:
            raise TrialNotFound(f"no trial tid={tid} in experiment {exp_key!r}")
        found = self._decode([doc])
        if not found:  # skipped as unreadable, and reported: as good as missing
            raise TrialNotFound(f"trial tid={tid} in experiment {exp_key!r} cannot be read")
        return found[0]

    def get_many(self, exp_key: str, tids: Iterable[int]) -> list[Trial]:
        wanted = sorted({int(t) for t in tids})
        docs: list[Any] = []
        with self._op():
            for i in range(0, len(wanted), _GET_MANY_BATCH):
                batch = wanted[i:i + _GET_MANY_BATCH]
                docs += self._trials.find({"exp_key": exp_key, "tid": {"$in": batch}}
                                          ).sort("tid", ASCENDING)
        return self._decode(docs)

    def find(self, exp_key: str, states: Iterable[TrialState] | None = None,
             limit: int | None = None, sort: str = "tid", descending: bool = False
             ) -> list[Trial]:
        if sort not in ("tid", "loss"):
            raise ValueError(f"find(sort={sort!r}): sort is 'tid' or 'loss'")
        if limit is not None and limit < 0:
            raise ValueError(f"find(limit={limit}): limit must be >= 0")
        if limit == 0:
            return []
        query: dict[str, Any] = {"exp_key": exp_key}
        if states is not None:
            query["state"] = {"$in": state_values(states)}
        order = DESCENDING if descending else ASCENDING
        with self._op():
            if sort == "tid":
                return self._find(query, [("tid", order)], limit)
            # Trials without a loss come last in either order (as in the reference store),
            # which MongoDB's null-first order cannot express: query the two groups apart.
            with_loss = ({"$and": [query, _HAS_LOSS]}, [("result.loss", order), ("tid", order)])
            without = ({"$and": [query, {"$nor": [_HAS_LOSS]}]}, [("tid", order)])
            found: list[Trial] = []
            for q, keys in (with_loss, without):
                left = None if limit is None else limit - len(found)
                if left != 0:
                    found += self._find(q, keys, left)
            return found

    def _find(self, query: Mapping[str, Any], keys: list[tuple[str, int]],
              limit: int | None) -> list[Trial]:
        """Up to ``limit`` readable trials matching ``query``: when unreadable documents
        were skipped, the next ones are read to make up for them."""
        found: list[Trial] = []
        offset = 0
        while True:
            want = None if limit is None else limit - len(found)
            cursor = self._trials.find(query).sort(keys).skip(offset)
            docs = list(cursor.limit(want) if want is not None else cursor)
            found += self._decode(docs)
            offset += len(docs)
            if want is None or len(docs) < want or limit is None or len(found) >= limit:
                return found

    def count_by_state(self, exp_key: str) -> dict[TrialState, int]:
        counts = dict.fromkeys(TrialState, 0)
        with self._op():
            rows = list(self._trials.aggregate([
                {"$match": {"exp_key": exp_key, **_WELL_FORMED}},
                {"$group": {"_id": "$state", "n": {"$sum": 1}}}]))
            # The rest cannot be read as trials: counted in no state, and named (or
            # skipped) as every read does. Decoding them says what is wrong with each.
            odd = self._trials.find({"exp_key": exp_key, "$nor": [_WELL_FORMED]})
            for t in self._decode(odd.sort("_id", ASCENDING)):
                counts[t.state] += 1
        for row in rows:
            counts[state_from_doc(row["_id"])] += int(row["n"])
        return counts

    def census(self, exp_key: str, states: Iterable[TrialState]
               ) -> tuple[dict[TrialState, int], list[Trial]]:
        wanted = set(states)
        # One aggregation: its facets share one pass over the experiment's documents, so
        # every document is counted and listed as the same version of itself. Its reply is
        # one document, at most 16 MB: some ten thousand listed trials (``misc`` repeats
        # ``params``, and is left out to keep it small).
        with self._op():
            [facets] = list(self._trials.aggregate([
                {"$match": {"exp_key": exp_key}},
                {"$facet": {
                    "counts": [{"$match": _WELL_FORMED},
                               {"$group": {"_id": "$state", "n": {"$sum": 1}}}],
                    "listed": [{"$match": {"$and": [
                        _WELL_FORMED, {"state": {"$in": state_values(wanted)}}]}},
                        {"$sort": {"tid": 1}}, {"$project": {"misc": 0}}],
                    "odd": [{"$match": {"$nor": [_WELL_FORMED]}}, {"$sort": {"_id": 1}}],
                }}]))
        counts = dict.fromkeys(TrialState, 0)
        for row in facets["counts"]:
            counts[state_from_doc(row["_id"])] += int(row["n"])
        listed = self._decode(facets["listed"])
        for t in self._decode(facets["odd"]):  # as count_by_state: named, or skipped
            counts[t.state] += 1
            if t.state in wanted:
                listed.append(t)
        return counts, sorted(listed, key=lambda t: t.tid)

    # ---- payloads ----------------------------------------------------------------------

    def put_payload(self, exp_key: str, data: bytes) -> str:
        """Store ``data`` (e.g. a pickled objective) in the GridFS bucket ``payloads``.

        Written in GridFS's layout directly, so it works on mongomock too; pymongo's
        ``gridfs.GridFSBucket(db, "payloads")`` and ``mongofiles --prefix payloads`` read it.
        Chunks are written before the file document, so a crash leaves no visible half file.

        Returns:
            The payload id (an ObjectId's hex string).
        """
        file_id = ObjectId()
        chunks = [{"files_id": file_id, "n": n, "data": Binary(data[at:at + PAYLOAD_CHUNK_BYTES])}
                  for n, at in enumerate(range(0, len(data), PAYLOAD_CHUNK_BYTES))]
        with self._op():
            if chunks:
                self._chunks.insert_many(chunks)
            self._files.insert_one({"_id": file_id, "length": len(data),
                                    "chunkSize": PAYLOAD_CHUNK_BYTES, "uploadDate": self._now(),
                                    "filename": f"{exp_key}/payload",
                                    "metadata": {"exp_key": exp_key}})
        return str(file_id)

    def get_payload(self, payload_id: str) -> bytes:
        """The bytes stored by ``put_payload``.

        Raises:
            StoreError: no such payload, or its chunks are incomplete.
        """
        file_id = _object_id(payload_id)
        with self._op():
            meta = self._files.find_one({"_id": file_id})
            if meta is None:
                raise StoreError(f"no payload {payload_id!r} in {self._where}")
            data = b"".join(bytes(c["data"]) for c in
                            self._chunks.find({"files_id": file_id}).sort("n", ASCENDING))
        if len(data) != meta["length"]:
            raise StoreError(f"payload {payload_id!r} is truncated: {len(data)} of "
                             f"{meta['length']} bytes found")
        return data

    def delete_payload(self, payload_id: str) -> None:
        """Remove a payload; removing a missing one is a no-op."""
        with self._op():
            self._delete_payload(_object_id(payload_id))

    def _delete_payload(self, file_id: ObjectId) -> None:
        # File document first, as GridFS does: readers then never see a file without chunks.
        self._files.delete_one({"_id": file_id})
        self._chunks.delete_many({"files_id": file_id})


class _ServerClock:
    """The server's clock, estimated from ``hello``'s ``localTime`` and ``time.monotonic()``.

    Args:
        sample: reads the server's time (None when it does not report one); None for an
            in-process backend, whose clock is this process's clock.
        resync_s: how long an estimate is trusted before the server is asked again.
    """

    def __init__(self, sample: Callable[[], datetime | None] | None, resync_s: float) -> None:
        self._sample = sample
        self._resync_s = resync_s
        self._anchor: tuple[float, datetime] | None = None  # (monotonic, server time)
        self._last = datetime.min.replace(tzinfo=timezone.utc)

    def now(self) -> datetime:
        if self._sample is None:
            return to_millis(datetime.now(timezone.utc))
        mono = time.monotonic()
        if self._anchor is None or mono - self._anchor[0] > self._resync_s:
            # Keep the sample with the shortest round trip: a round trip stretched by a
            # busy server (every slot of a cold worker claiming at once) would skew the
            # estimate by up to half of it for the next resync_s.
            best: tuple[float, float, datetime] | None = None  # (rtt, midpoint, server)
            for _ in range(3):
                start = time.monotonic()
                server = self._sample()
                end = time.monotonic()
                if server is None:
                    self._sample = None
                    return self.now()
                if best is None or end - start < best[0]:
                    best = (end - start, (start + end) / 2, server)
                if end - start < 0.002:
                    break  # already as precise as localTime's milliseconds
            assert best is not None
            self._anchor = (best[1], best[2])
            mono = time.monotonic()
        estimate = self._anchor[1] + timedelta(seconds=mono - self._anchor[0])
        # Never step back when a resync lands slightly earlier: leases must not shrink.
        self._last = max(estimate, self._last)
        return to_millis(self._last)




def _last_sign(t: Trial, now: datetime) -> str:
    """When ``t``'s worker was last heard of, for a log line."""
    if t.heartbeat_time is not None:
        return f"its last heartbeat was {(now - t.heartbeat_time).total_seconds():.0f} s ago"
    if t.book_time is not None:
        return (f"it was claimed {(now - t.book_time).total_seconds():.0f} s ago with no "
                "heartbeat since")
    return "it has neither a heartbeat nor a claim time"


def _retry_duplicate(write: Callable[[], Any]) -> Any:
    """Run an upsert, once more if it raced another upsert of the same new document."""
    try:
        return write()
    except DuplicateKeyError:
        return write()


def _object_id(payload_id: str) -> ObjectId:
    try:
        return ObjectId(payload_id)
    except (InvalidId, TypeError):
        raise StoreError(f"{payload_id!r} is not a payload id (expected 24 hex digits)"
                         ) from None


def _describe(db: Any) -> str:
    """``mongodb://host:port/db`` for messages, from what the client knows without I/O."""
    if not isinstance(db, Database):  # mongomock
        return f"{type(db).__module__}:{db.name}"
    hosts = ",".join(f"{h}:{p}" for h, p in db.client.topology_description.server_descriptions())
    return f"mongodb://{hosts}/{db.name}"


def _unreachable(where: str, detail: str) -> str:
    # The same words for a coordinator's URL argument, a worker's --mongo and the CLI: each
    # caller knows its own way to set the URL and the timeout.
    return f"MongoDB unreachable at {where}: {detail}. Is mongod up there, and the URL right?"
