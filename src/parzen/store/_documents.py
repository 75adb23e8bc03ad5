"""Trial and experiment <-> BSON documents: the only module that knows their raw shape.

The documents are described, field by field and with their indexes, in ``docs/schema.md``:
that page is the one description, and a change of shape here changes it too (its test,
``tests/store/test_documents.py``, round-trips every field).

One choice is made here and explained here: ``state`` is stored as a word, not as
hyperopt's integer, so a filter like ``state: "done"`` reads the same in mongosh and in code,
and keeping one field means the word and a number can never disagree. The integer is
``TrialState[word.upper()]`` (equal to hyperopt's ``JOB_STATE_*``); documents written with an
integer state are still read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

import bson
import numpy as np
from bson import Binary, Decimal128, ObjectId

from parzen.exceptions import (
    ConfigError,
    InvalidResult,
    InvalidTrial,
    ParzenError,
    ResultTooLarge,
    StoreError,
    UnreadableDocument,
    UnreadableTrials,
)
from parzen.store._base import (
    LEASE_EXPIRED,
    DriverLease,
    Experiment,
    ObjectiveKind,
    ObjectiveSpec,
    Refusal,
    StopRequest,
)
from parzen.trial import (
    Attempt,
    ErrorInfo,
    ErrorOrigin,
    Intermediate,
    Owner,
    Trial,
    TrialState,
)

SCHEMA_VERSION = 1

_WORDS = {state: state.name.lower() for state in TrialState}
_BY_WORD = {word: state for state, word in _WORDS.items()}
_BY_NUMBER = {int(state): state for state in TrialState}
_INT64 = (-(2**63), 2**63 - 1)
# Types pymongo encodes natively and that need no conversion.
_SCALARS = (str, bool, float, bytes, type(None), ObjectId, Binary, Decimal128)
# MongoDB's limits: a document is at most 16 MiB of BSON (the server's maxBsonObjectSize,
# which MongoDB calls 16 MB), nested at most 100 levels deep (each object or array one level,
# the document itself the first). Measured here, because past them the driver raises
# DocumentTooLarge or the server refuses the write, and neither names the key at fault.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
MAX_NESTING = 100
_MB = 1024 * 1024
# How much of an error's message (its start) and traceback (its end) a trial document keeps:
# an objective that raises with a 20 MB message must still be recorded as ERROR.
MAX_ERROR_CHARS = 32 * 1024


# ---- values ------------------------------------------------------------------------------

# The driver lease holder whose fenced ``insert_new`` wrote a trial document (MongoDB only):
# a refused insert withdraws exactly its own trials, and only while no worker touched them.
INSERTED_BY = "inserted_by"


def state_word(state: TrialState) -> str:
    """The stored form of ``state``: ``"new"``, ``"running"``, ..."""
    return _WORDS[state]


def state_from_doc(value: Any) -> TrialState:
    """The state stored as a word (parzen) or an integer (hyperopt).

    Raises:
        StoreError: ``value`` is neither; the message names it.
    """
    if isinstance(value, str) and value in _BY_WORD:
        return _BY_WORD[value]
    if isinstance(value, int) and not isinstance(value, bool) and value in _BY_NUMBER:
        return _BY_NUMBER[value]
    raise StoreError(f"unknown trial state {_shown(value)}: expected one of "
                     f"{', '.join(repr(w) for w in _WORDS.values())} (or their numbers "
                     f"{min(_BY_NUMBER)}-{max(_BY_NUMBER)}, hyperopt's 0-4 and pruned's 5)")


def state_values(states: Iterable[TrialState]) -> list[Any]:
    """What a query on ``state`` matches for ``states``: the word parzen writes and
    hyperopt's integer, which documents written by hyperopt (or by hand) may hold."""
    wanted = sorted(set(states))
    return [*(state_word(s) for s in wanted), *(int(s) for s in wanted)]


def doc_id(doc: Mapping[str, Any]) -> str:
    """The document's ``_id`` as mongosh writes it: ``ObjectId("...")`` or a JSON value."""
    value = doc.get("_id")
    if isinstance(value, ObjectId):
        return f'ObjectId("{value}")'
    return json.dumps(value, default=str)


def _shown(value: Any) -> str:
    """``value`` for a message: its repr (cut short) and, unless obvious, its type."""
    if value is None:
        return "null"
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    if isinstance(value, (bool, int, float)):
        return text
    return f"{text} (a {type(value).__name__})"


def to_bson(value: Any, path: str, error: type[ParzenError] = InvalidResult, *,
            depth: int = 1) -> Any:
    """``value`` converted to plain BSON-encodable Python.

    numpy scalars become Python numbers, numpy arrays become (nested) lists, tuples become
    lists, and naive datetimes are taken as UTC.

    Args:
        value: what to convert.
        path: how to name ``value`` in an error, e.g. ``result["metrics"]``.
        error: the exception class to raise.
        depth: the nesting level ``value`` will have in its document (the document is 1).
    Raises:
        error: a value (named by its key path) cannot be stored, e.g.
            ``result["metrics"]["model"]: cannot store a RandomForestClassifier``; or the
            value contains itself, or nests deeper than ``MAX_NESTING``.
    """
    return _to_bson(value, path, error, depth, {})


def _to_bson(value: Any, path: str, error: type[ParzenError], depth: int,
             within: dict[int, str]) -> Any:
    """``to_bson``; ``within`` maps the ids of the containers enclosing ``value`` to their
    paths, so a value that contains itself is named instead of recursing until Python's
    recursion limit."""
    if isinstance(value, np.generic):
        # .item() also maps np.str_/np.bool_/np.datetime64; convert its result in turn.
        return _to_bson(value.item(), path, error, depth, within)
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise error(f"{path}: the string cannot be stored as UTF-8 ({exc}); it holds a "
                        "lone surrogate, which usually comes from decoding bytes with "
                        "errors='surrogateescape': decode them as UTF-8 or store the "
                        "bytes") from None
        return value
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise error(f"{path}: {value} does not fit in a 64-bit integer; store it as a "
                        "float or a string")
        return int(value)  # plain int: drops IntEnum and other subclasses
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
    if isinstance(value, np.ndarray):
        return _to_bson(value.tolist(), path, error, depth, within)
    if isinstance(value, (Mapping, list, tuple)):
        if id(value) in within:
            raise error(f"{path}: the {_what(path)} contains itself ({path} is "
                        f"{within[id(value)]}); MongoDB documents cannot hold a reference "
                        "cycle: return a copy of the part, or leave the back-reference out")
        if depth > MAX_NESTING:
            raise error(f"{path}: nested more than {MAX_NESTING} levels deep (MongoDB's limit, "
                        "counting from the trial's document); flatten it, or write it to a "
                        "file and return the file's path")
        within[id(value)] = path
        try:
            return _container_to_bson(value, path, error, depth, within)
        finally:
            del within[id(value)]
    raise error(
        f"{path}: cannot store a {type(value).__module__}.{type(value).__qualname__} in "
        "MongoDB; results may hold numbers, strings, bytes, datetimes, lists, dicts and numpy "
        "values (store large objects elsewhere and keep a reference)"
    )


def _container_to_bson(value: Mapping[str, Any] | list[Any] | tuple[Any, ...], path: str,
                       error: type[ParzenError], depth: int, within: dict[int, str]) -> Any:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise error(f"{path}: key {key!r} is a {type(key).__name__}; MongoDB document "
                            "keys must be strings")
            if key.startswith("$") or "\x00" in key:
                raise error(f"{path}: key {key!r} cannot be stored (no leading '$' or NUL "
                            "character)")
            out[key] = _to_bson(item, f"{path}[{json.dumps(key, ensure_ascii=False)}]", error,
                                depth + 1, within)
        return out
    return [_to_bson(item, f"{path}[{i}]", error, depth + 1, within)
            for i, item in enumerate(value)]


def _what(path: str) -> str:
    """``result`` for ``result["a"][0]``: how an error names the whole value."""
    return path.split("[", 1)[0]


def encode_result(result: Mapping[str, Any]) -> dict[str, Any]:
    """The objective's result dict as BSON.

    Raises:
        InvalidResult: a value cannot be stored (the message names its key path), the result
            contains itself or nests too deep.
        ResultTooLarge: the encoded result is over MongoDB's 16 MB document limit.
    """
    # Depth 2: the result is a field of the trial's document.
    encoded: dict[str, Any] = to_bson(result, "result", depth=2)
    size = len(bson.encode(encoded))
    if size > MAX_DOCUMENT_BYTES:
        raise ResultTooLarge(_too_large(encoded, size))
    return encoded


def _too_large(encoded: Mapping[str, Any], size: int, document: int | None = None) -> str:
    """Why a result of ``size`` encoded bytes cannot be stored, naming its largest part."""
    parts = {key: len(bson.encode({key: value})) for key, value in encoded.items()}
    largest = max(parts, key=parts.__getitem__, default=None)
    part = "" if largest is None else (
        f"; its largest part is result[{json.dumps(largest, ensure_ascii=False)}] "
        f"({parts[largest] / _MB:.1f} MB)")
    trial = "" if document is None else \
        f" (the trial's document would be {document / _MB:.1f} MB)"
    return (f"result is {size / _MB:.1f} MB, over MongoDB's {MAX_DOCUMENT_BYTES // _MB} MB "
            f"document limit{trial}{part}: store large artefacts in files or GridFS, and "
            "return their paths in the result")


def utc(value: Any) -> datetime | None:
    """A stored datetime as timezone-aware UTC (drivers may return naive or fixed-offset)."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise StoreError(f"expected a datetime in the store, got {value!r}")
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def to_millis(value: datetime) -> datetime:
    """``value`` truncated to BSON's millisecond precision, so what a store returns equals
    what it stored."""
    return value.replace(microsecond=value.microsecond - value.microsecond % 1000)


# ---- parts of a trial --------------------------------------------------------------------

# How documents written before ``owner.slot`` existed named a worker's slot: "w1/slot-2".
_OLD_SLOT = re.compile(r"(?P<worker>.+)/slot-(?P<slot>[0-9]+)")


def owner_to_doc(owner: Owner | None) -> dict[str, Any] | None:
    """``{worker, slot, host, pid, pid_ns, pid_start}`` or None."""
    if owner is None:
        return None
    return {"worker": owner.worker, "slot": owner.slot, "host": owner.host,
            "pid": int(owner.pid), "pid_ns": owner.pid_ns, "pid_start": int(owner.pid_start)}


def owner_from_doc(doc: Any) -> Owner | None:
    """Inverse of ``owner_to_doc``; a bare string (hyperopt's owner) becomes the worker name,
    and an older document's ``worker: "w1/slot-2"`` (no ``slot`` field) reads as worker
    ``w1``, slot 2."""
    if doc is None:
        return None
    if isinstance(doc, str):
        return Owner(worker=doc, host="", pid=0)
    worker = str(doc.get("worker", ""))
    slot = doc.get("slot")
    old = _OLD_SLOT.fullmatch(worker) if slot is None else None
    if old is not None:
        worker, slot = old["worker"], int(old["slot"])
    return Owner(worker=worker, host=str(doc.get("host", "")), pid=int(doc.get("pid", 0)),
                 slot=None if slot is None else _integer(slot, "owner.slot"),
                 pid_ns=str(doc.get("pid_ns") or ""),
                 pid_start=_integer(doc.get("pid_start") or 0, "owner.pid_start"))


def error_to_doc(error: ErrorInfo | None) -> dict[str, Any] | None:
    """``{type, message, traceback}`` or None; a message over ``MAX_ERROR_CHARS`` keeps its
    start and a traceback its end (where the failing line is), each saying what was cut."""
    if error is None:
        return None
    message, traceback = error.message, error.traceback
    if len(message) > MAX_ERROR_CHARS:
        message = (f"{message[:MAX_ERROR_CHARS]} [... {len(message) - MAX_ERROR_CHARS} more "
                   "characters not stored]")
    if len(traceback) > MAX_ERROR_CHARS:
        traceback = (f"[{len(traceback) - MAX_ERROR_CHARS} characters not stored ...] "
                     f"{traceback[-MAX_ERROR_CHARS:]}")
    return {"type": error.type, "message": message, "traceback": traceback,
            "origin": error.origin.value}


def error_from_doc(doc: Any) -> ErrorInfo | None:
    """Inverse of ``error_to_doc``."""
    if doc is None:
        return None
    etype = str(doc.get("type", ""))
    return ErrorInfo(type=etype, message=str(doc.get("message", "")),
                     traceback=str(doc.get("traceback", "")),
                     origin=_origin(doc.get("origin"), etype))


def _origin(value: Any, etype: str) -> ErrorOrigin:
    """The stored ``error.origin``; documents written before it existed (and hyperopt's)
    have none, and then only an expired lease was the system's doing."""
    try:
        return ErrorOrigin(value)
    except ValueError:
        return ErrorOrigin.SYSTEM if etype == LEASE_EXPIRED else ErrorOrigin.OBJECTIVE


def attempt_to_doc(attempt: Attempt) -> dict[str, Any]:
    """One history entry."""
    return {"attempt": attempt.attempt, "owner": owner_to_doc(attempt.owner),
            "book_time": attempt.book_time, "end_time": attempt.end_time,
            "outcome": attempt.outcome}


def attempt_from_doc(doc: Mapping[str, Any]) -> Attempt:
    """Inverse of ``attempt_to_doc``."""
    return Attempt(attempt=int(doc.get("attempt", 0)), owner=owner_from_doc(doc.get("owner")),
                   book_time=utc(doc.get("book_time")), end_time=utc(doc.get("end_time")),
                   outcome=str(doc.get("outcome", "")))


def intermediate_to_doc(values: Iterable[Intermediate]) -> list[dict[str, Any]]:
    """The ``intermediate`` array: ``[{step, loss, attempt}, ...]`` in the order reported."""
    return [{"step": int(v.step), "loss": float(v.loss), "attempt": int(v.attempt)}
            for v in values]


def intermediate_from_doc(doc: Any) -> tuple[Intermediate, ...]:
    """Inverse of ``intermediate_to_doc``; a missing field is no values."""
    return tuple(Intermediate(step=_integer(v["step"], "intermediate.step"),
                              loss=float(v["loss"]),
                              attempt=_integer(v.get("attempt", 0), "intermediate.attempt"))
                 for v in doc or ())


# ---- trials ------------------------------------------------------------------------------

def trial_to_doc(trial: Trial) -> dict[str, Any]:
    """The full document for ``trial`` (without ``_id``).

    Raises:
        InvalidTrial: a parameter value cannot be stored.
        InvalidResult: a result value cannot be stored.
        ResultTooLarge: the document is over MongoDB's 16 MB document limit.
    """
    params: dict[str, Any] = to_bson(trial.params, "params", InvalidTrial, depth=2)
    result: dict[str, Any] = to_bson(trial.result, "result", depth=2)
    duration = trial.duration
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "exp_key": trial.exp_key,
        "tid": int(trial.tid),
        "state": state_word(trial.state),
        "params": params,
        "misc": {
            "tid": int(trial.tid),
            "idxs": {label: [int(trial.tid)] for label in params},
            "vals": {label: [value] for label, value in params.items()},
        },
        "result": result,
        "attempts": int(trial.attempts),
        "owner": owner_to_doc(trial.owner),
        "claim_token": trial.claim_token,
        "lease_expires": trial.lease_expires,
        "created": trial.created,
        "book_time": trial.book_time,
        "heartbeat_time": trial.heartbeat_time,
        "end_time": trial.end_time,
        "duration_s": duration,
        "error": error_to_doc(trial.error),
        "history": [attempt_to_doc(a) for a in trial.history],
        "origin": trial.origin,
        "intermediate": intermediate_to_doc(trial.intermediate),
    }
    size = len(bson.encode(doc))
    if size > MAX_DOCUMENT_BYTES:
        raise ResultTooLarge(_too_large(result, len(bson.encode(result)), size))
    return doc


def trial_from_doc(doc: Mapping[str, Any]) -> Trial:
    """The ``Trial`` stored in ``doc``; ``misc`` and ``duration_s`` are derived and ignored.

    Lenient where a value has one sensible reading: a document without ``params`` (written
    by hyperopt) takes them from ``misc.vals``, and a ``lease_expires`` that is not a date
    reads as no lease (the reaper then judges the trial by its heartbeat).

    Raises:
        UnreadableTrials: the document is malformed (edited by hand, or written by another
            program); it names the document by ``_id`` and the field at fault.
        StoreError: the document was written by a newer schema.
    """
    _check_schema(doc, "trial")
    try:
        return _trial(doc)
    except (StoreError, KeyError, ValueError, TypeError, AttributeError) as exc:
        reason = str(exc) if isinstance(exc, StoreError) else f"{type(exc).__name__}: {exc}"
        exp_key = doc.get("exp_key")
        raise UnreadableTrials([UnreadableDocument(
            exp_key if isinstance(exp_key, str) else repr(exp_key), doc_id(doc), reason)]
        ) from None


def _trial(doc: Mapping[str, Any]) -> Trial:
    exp_key = doc.get("exp_key")
    if not isinstance(exp_key, str):
        raise StoreError(f"exp_key is {_shown(exp_key)}, expected a string")
    if "tid" not in doc:
        raise StoreError("tid is missing")
    tid = _integer(doc["tid"], "tid")
    state = state_from_doc(doc.get("state"))
    result = doc.get("result")
    if result is None:
        result = {"status": "new"}
    if not isinstance(result, Mapping):
        raise StoreError(f"result is {_shown(result)}, expected an object such as "
                         "{status: 'ok', loss: 0.25}")
    loss = result.get("loss")
    if state is TrialState.DONE and result.get("status") == "ok" and loss is not None \
            and (isinstance(loss, bool) or not isinstance(loss, (int, float))):
        raise StoreError(f"result.loss is {_shown(loss)}, expected a number")
    lease = doc.get("lease_expires")
    return Trial(
        exp_key=exp_key,
        tid=tid,
        state=state,
        params=_params(doc),
        result=dict(result),
        attempts=_integer(doc.get("attempts") or 0, "attempts"),
        owner=owner_from_doc(doc.get("owner")),
        claim_token=doc.get("claim_token"),
        lease_expires=utc(lease) if isinstance(lease, datetime) else None,
        created=_date(doc, "created"),
        book_time=_date(doc, "book_time"),
        heartbeat_time=_date(doc, "heartbeat_time"),
        end_time=_date(doc, "end_time"),
        error=error_from_doc(doc.get("error")),
        history=tuple(attempt_from_doc(a) for a in doc.get("history") or ()),
        origin=str(doc.get("origin", "")),
        intermediate=intermediate_from_doc(doc.get("intermediate")),
    )


def _integer(value: Any, name: str) -> int:
    """An integer field; a whole float (what mongosh writes for ``3``) reads as one."""
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise StoreError(f"{name} is {_shown(value)}, expected an integer")


def _date(doc: Mapping[str, Any], name: str) -> datetime | None:
    value = doc.get(name)
    if value is not None and not isinstance(value, datetime):
        raise StoreError(f"{name} is {_shown(value)}, expected a date")
    return utc(value)


def _params(doc: Mapping[str, Any]) -> dict[str, Any]:
    """``params``, or for a hyperopt document (which has none) the active values of
    ``misc.vals`` (a label with an empty list is inactive)."""
    params = doc.get("params")
    if params is None:
        misc = doc.get("misc") or {}
        vals = misc.get("vals") if isinstance(misc, Mapping) else None
        if not isinstance(vals, Mapping):
            return {}
        return {str(k): v[0] for k, v in vals.items() if isinstance(v, list) and v}
    if not isinstance(params, Mapping):
        raise StoreError(f"params is {_shown(params)}, expected an object")
    return dict(params)


# ---- experiments -------------------------------------------------------------------------

def experiment_fields(experiment: Experiment) -> dict[str, Any]:
    """The descriptive fields of ``experiment``: what ``put_experiment`` may overwrite.

    Raises:
        ConfigError: a value in the space, objective, algo or settings cannot be stored.
    """
    return {
        "schema_version": SCHEMA_VERSION,
        "exp_key": experiment.exp_key,
        "space_fingerprint": experiment.space_fingerprint,
        "space": to_bson(experiment.space, "space", ConfigError),
        "objective": objective_to_doc(experiment.objective),
        "algo": to_bson(experiment.algo, "algo", ConfigError),
        "settings": to_bson(experiment.settings, "settings", ConfigError),
        "max_evals": experiment.max_evals,
    }


def objective_to_doc(spec: ObjectiveSpec | None) -> dict[str, Any]:
    """The ``objective`` field: the spec's set fields (``{}`` before a coordinator wrote one).
    Unset fields are left out, so an import-path objective has no ``inline`` key at all."""
    if spec is None:
        return {}
    doc: dict[str, Any] = {"kind": spec.kind.value, "sha256": spec.sha256,
                           "fingerprint": spec.fingerprint}
    for name in ("inline", "payload_id", "size", "path", "space_inline"):
        value = getattr(spec, name)
        if value is not None:
            doc[name] = value
    if spec.versions:
        doc["versions"] = dict(spec.versions)
    encoded: dict[str, Any] = to_bson(doc, "objective", ConfigError)
    return encoded


def objective_from_doc(doc: Mapping[str, Any] | None) -> ObjectiveSpec | None:
    """The ``ObjectiveSpec`` of an ``objective`` field; None when it holds none."""
    if not doc or "kind" not in doc:
        return None
    try:
        kind = ObjectiveKind(doc["kind"])
    except ValueError:
        raise StoreError(f"unknown objective kind {doc['kind']!r} in the experiment document; "
                         f"expected one of {[k.value for k in ObjectiveKind]}") from None

    def opt_bytes(name: str) -> bytes | None:
        value = doc.get(name)
        return None if value is None else bytes(value)

    size = doc.get("size")
    return ObjectiveSpec(
        kind=kind, sha256=str(doc.get("sha256", "")),
        fingerprint=str(doc.get("fingerprint", "")), inline=opt_bytes("inline"),
        payload_id=None if doc.get("payload_id") is None else str(doc["payload_id"]),
        size=None if size is None else int(size),
        versions={str(k): str(v) for k, v in (doc.get("versions") or {}).items()},
        path=None if doc.get("path") is None else str(doc["path"]),
        space_inline=opt_bytes("space_inline"))


def driver_to_doc(driver: DriverLease | None) -> dict[str, Any] | None:
    """The ``driver`` field: ``{holder, host, pid, pid_ns, pid_start, started, expires}``
    or None."""
    if driver is None:
        return None
    return {"holder": driver.holder, "host": driver.host, "pid": driver.pid,
            "pid_ns": driver.pid_ns, "pid_start": driver.pid_start,
            "started": driver.started, "expires": driver.expires}


def driver_from_doc(doc: Mapping[str, Any] | None) -> DriverLease | None:
    """The ``DriverLease`` of a ``driver`` field, or None."""
    if not doc:
        return None
    def integer(v: Any, default: int) -> int:
        return v if isinstance(v, int) and not isinstance(v, bool) else default

    return DriverLease(holder=str(doc.get("holder", "")), host=str(doc.get("host", "")),
                       pid=integer(doc.get("pid"), -1), started=str(doc.get("started", "")),
                       expires=utc(doc.get("expires")), pid_ns=str(doc.get("pid_ns") or ""),
                       pid_start=integer(doc.get("pid_start"), 0))


def refusal_to_doc(refusal: Refusal) -> dict[str, Any]:
    """One entry of the ``refusals`` field: ``{worker, host, pid, objective, reason, at}``."""
    return {"worker": refusal.worker, "host": refusal.host, "pid": refusal.pid,
            "objective": refusal.objective, "reason": refusal.reason, "at": refusal.at}


def refusals_from_doc(docs: Any) -> tuple[Refusal, ...]:
    """The ``Refusal`` records of a ``refusals`` field, the latest of each worker (two
    processes under one name may both have written); entries that are not documents (an
    edit by hand) are left out."""
    if not isinstance(docs, list):
        return ()
    latest: dict[str, Refusal] = {}
    for d in docs:
        if isinstance(d, Mapping):
            pid = d.get("pid")
            r = Refusal(
                worker=str(d.get("worker", "")), host=str(d.get("host", "")),
                pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else -1,
                objective=str(d.get("objective", "")), reason=str(d.get("reason", "")),
                at=utc(d.get("at")))
            latest.pop(r.worker, None)  # the later entry, at the later place
            latest[r.worker] = r
    return tuple(latest.values())


def stop_to_doc(request: StopRequest | None) -> dict[str, Any] | None:
    """The ``stop`` field: ``{holder, by, at}`` or None."""
    if request is None:
        return None
    return {"holder": request.holder, "by": request.by, "at": request.at}


def stop_from_doc(doc: Any) -> StopRequest | None:
    """The ``StopRequest`` of a ``stop`` field, or None (also for one edited into another
    shape: a request nobody can be sure of is not obeyed)."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("holder"), str):
        return None
    return StopRequest(holder=doc["holder"], by=str(doc.get("by", "")), at=utc(doc.get("at")))


def experiment_from_doc(doc: Mapping[str, Any]) -> Experiment:
    """The ``Experiment`` stored in ``doc``."""
    _check_schema(doc, "experiment")
    max_evals = doc.get("max_evals")
    return Experiment(
        exp_key=str(doc["_id"]),
        space_fingerprint=str(doc.get("space_fingerprint", "")),
        space=dict(doc.get("space") or {}),
        objective=objective_from_doc(doc.get("objective")),
        algo=dict(doc.get("algo") or {}),
        settings=dict(doc.get("settings") or {}),
        driver=driver_from_doc(doc.get("driver")),
        next_tid=int(doc.get("next_tid", 0)),
        created=utc(doc.get("created")),
        max_evals=None if max_evals is None else int(max_evals),
        refusals=refusals_from_doc(doc.get("refusals")),
        stop_request=stop_from_doc(doc.get("stop")),
    )


def _check_schema(doc: Mapping[str, Any], kind: str) -> None:
    version = doc.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise StoreError(
            f"{kind} document {doc.get('_id')!r} has schema_version={version!r}; this parzen "
            f"reads version {SCHEMA_VERSION} only (upgrade parzen to read newer stores)"
        )
