"""A MongoDB wire-protocol **test double** for multi-process tests. It is not a database.

``mockupdb.MockupDB`` accepts connections and parses the wire protocol (one thread per
connection); every command is executed against ONE in-process ``mongomock`` client behind ONE
lock, so real pymongo clients in other processes see a single server whose operations are
atomic, like a one-node mongod. It answers the commands pymongo 4.20 sends for what
``MongoTrialStore`` and GridFS do: handshake (``hello``/``isMaster``), ``ping``,
``buildInfo``, ``endSessions``, ``find``/``getMore``/``killCursors``, ``insert``, ``update``
(replacement, operators, upsert, multi), ``delete``, ``findAndModify``, ``aggregate``,
``count``, ``distinct``, ``createIndexes``/``listIndexes``/``dropIndexes``, ``create``,
``drop``, ``dropDatabase``, ``listCollections``, ``listDatabases``. Errors come back as
``{ok: 0, errmsg, code}`` (duplicate keys as code 11000 ``writeErrors``), so pymongo raises
its usual exceptions. Anything else is ``CommandNotFound`` (59). No auth, TLS, sessions,
transactions, change streams or compression; ``hello`` does not advertise them, so pymongo
does not try.

Speed (see ``python tests/support/wire_server.py --bench``): three stock behaviours are
worked around.

- mockupdb formats every request and reply with ``json_util.dumps`` for its log, even with
  logging off, and serialises all connections on one lock; ``_Server`` has its own
  connection loop that neither logs nor takes that lock.
- mockupdb reads a message with ``msg += sock.recv(n)``, quadratic in the number of chunks
  (megabyte GridFS inserts); ``_receive`` reads into one preallocated buffer.
- mongomock tests every document against the filter, several times per findAndModify (about
  10 us per document per operation: 5 ms for a claim among 500 trials, 20 ms among 2,000).
  Each collection's ``_iter_documents`` first narrows the candidates with plain ``==`` on the
  filter's top-level scalar fields (``_id`` by dict lookup), then applies mongomock's full
  matcher to those only. That is still a pass over all documents, only ~1 us each.

Measured on 2 cores (MongoTrialStore.claim round trip, 500 trials): 6 ms stock, 0.55 ms with
the three workarounds (ping 0.28 -> 0.10 ms; 8 MiB payload put+get 190 -> ~70 ms). Patched
claims take ~0.9 ms among 2,000 trials and ~9 ms among 10,000: fine for tests of hundreds to
a few thousand trials, not a benchmark of anything.

Run alone: ``python tests/support/wire_server.py --port 27999`` prints its URL and serves until
interrupted.
"""

from __future__ import annotations

import argparse
import errno
import itertools
import math
import select
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

import bson
import mockupdb
import mongomock
from bson.int64 import Int64
from bson.raw_bson import RawBSONDocument
from mongomock import filtering
from pymongo import ReturnDocument
from pymongo.errors import OperationFailure

MAX_WIRE_VERSION = 17  # MongoDB 6.0; pymongo 4.20 needs at least 9 (MongoDB 4.4)
MAX_BSON_SIZE = 16 * 1024 * 1024
MAX_MESSAGE_SIZE = 48_000_000
# Real servers cap a reply batch at 16 MiB; keep a margin for the envelope.
_BATCH_BYTES = 15 * 1024 * 1024
_OP_MSG = 2013
_MORE_TO_COME = 1 << 1
_FAST_TYPES = (str, int, float, bson.ObjectId)
filter_applies: Callable[[Mapping[str, Any], Any], bool] = filtering.filter_applies


def _error(code: int, errmsg: str, code_name: str = "") -> dict[str, Any]:
    reply: dict[str, Any] = {"ok": 0, "errmsg": errmsg, "code": code}
    if code_name:
        reply["codeName"] = code_name
    return reply


def _error_of(exc: BaseException) -> dict[str, Any]:
    """The error reply for an exception raised by mongomock while executing a command."""
    if isinstance(exc, OperationFailure):
        return _error(exc.code or 2, str(exc))
    if isinstance(exc, NotImplementedError):
        return _error(238, f"not implemented by mongomock (wire_server test double): {exc}",
                      "NotImplemented")
    detail = "".join(traceback.format_exception(exc))[-2000:]
    return _error(1, f"wire_server test double failed: {detail}", "InternalError")


class _Cursor:
    def __init__(self, ns: str, docs: list[Any]) -> None:
        self.ns = ns
        self.docs = iter(docs)
        self.pending: Any = None


class Backend:
    """Executes commands on one mongomock client, one command at a time."""

    def __init__(self) -> None:
        self.client: Any = mongomock.MongoClient(tz_aware=True)
        self.lock = threading.Lock()
        self._cursors: dict[int, _Cursor] = {}
        self._cursor_ids = itertools.count(1)
        self._connection_ids = itertools.count(1)
        self._collections: dict[tuple[str, str], Any] = {}

    def collection(self, db: str, name: str) -> Any:
        key = (db, name)
        coll = self._collections.get(key)
        if coll is None:
            coll = self.client[db][name]
            _accelerate(coll)
            self._collections[key] = coll
        return coll

    def execute(self, cmd: Mapping[str, Any]) -> dict[str, Any]:
        """Run one command document (with its ``$db``) and return the reply document."""
        name = next(iter(cmd))
        handler = _COMMANDS.get(name) or _COMMANDS.get(name.lower())
        if handler is None:
            return _error(59, f"no such command: '{name}' (wire_server test double)",
                          "CommandNotFound")
        with self.lock:
            try:
                reply = handler(self, cmd, cmd.get("$db", "admin"))
            except Exception as exc:  # a reply, not a crash: the client raises it
                return _error_of(exc)
        reply.setdefault("ok", 1)
        return reply

    # ---- cursors -------------------------------------------------------------------------

    def cursor_reply(self, ns: str, docs: list[Any], batch_size: int | None,
                     single_batch: bool = False, first: bool = True) -> dict[str, Any]:
        cursor = _Cursor(ns, docs)
        batch = self._batch(cursor, batch_size or 101)
        cursor_id = 0
        if not single_batch and cursor.pending is not None:
            cursor_id = next(self._cursor_ids)
            self._cursors[cursor_id] = cursor
        key = "firstBatch" if first else "nextBatch"
        return {"cursor": {key: batch, "id": Int64(cursor_id), "ns": ns}}

    def _batch(self, cursor: _Cursor, batch_size: int) -> list[RawBSONDocument]:
        """Up to ``batch_size`` documents and ``_BATCH_BYTES``; each is encoded once."""
        batch: list[RawBSONDocument] = []
        size = 0
        while len(batch) < batch_size:
            if cursor.pending is None:
                doc = next(cursor.docs, None)
                if doc is None:
                    break
                cursor.pending = RawBSONDocument(bson.encode(doc))
            raw = cursor.pending
            if batch and size + len(raw.raw) > _BATCH_BYTES:
                break
            batch.append(raw)
            size += len(raw.raw)
            cursor.pending = None
        if cursor.pending is None:
            # Peek, so the last batch says id 0 instead of costing the client a getMore.
            doc = next(cursor.docs, None)
            if doc is not None:
                cursor.pending = RawBSONDocument(bson.encode(doc))
        return batch

    def get_more(self, cmd: Mapping[str, Any]) -> dict[str, Any]:
        cursor_id = int(cmd["getMore"])
        cursor = self._cursors.get(cursor_id)
        if cursor is None:
            return _error(43, f"cursor id {cursor_id} not found", "CursorNotFound")
        batch = self._batch(cursor, int(cmd.get("batchSize") or 2**31 - 1))
        if cursor.pending is None:
            del self._cursors[cursor_id]
            cursor_id = 0
        return {"cursor": {"nextBatch": batch, "id": Int64(cursor_id), "ns": cursor.ns}}


# ---- mongomock speed-up --------------------------------------------------------------------

def _accelerate(coll: Any) -> None:
    """Narrow ``coll``'s candidate documents by plain equality before mongomock's matcher.

    Only a necessary condition is checked (``doc.get(key) == value`` for top-level, undotted
    keys with str/int/float/ObjectId values, or the field is an array), so no matching
    document is ever dropped; mongomock's ``filter_applies`` still decides.
    """
    store = coll._store

    def iter_documents(search: Mapping[str, Any]) -> Iterator[Any]:
        if store.is_empty:
            filter_applies(search, {})  # mongomock validates the filter here
            return iter(())
        pins = [(k, v) for k, v in search.items()
                if type(v) in _FAST_TYPES and not k.startswith("$") and "." not in k
                and not (type(v) is float and math.isnan(v))]
        docs = store._documents
        if any(k == "_id" for k, _ in pins):
            found = docs.get(dict(pins)["_id"])
            candidates = [] if found is None else [found]
        else:
            # dict.values, not OrderedDict.values: the latter hashes every key (ObjectId's
            # __hash__ is Python code), which costs more than the comparisons below.
            candidates = list(dict.values(docs))
        # Numbers (tids) first: they usually narrow the most, so later passes see few docs.
        for k, v in sorted(pins, key=lambda kv: isinstance(kv[1], str)):
            candidates = [d for d in candidates
                          if (x := d.get(k)) == v or type(x) is list]
        return (d for d in candidates if filter_applies(search, d))

    coll._iter_documents = iter_documents


# ---- commands ------------------------------------------------------------------------------

def _hello(b: Backend, cmd: Mapping[str, Any], db: str) -> dict[str, Any]:
    # No topologyVersion (pymongo would stream hello), no logicalSessionTimeoutMinutes
    # (no sessions), no compression, no saslSupportedMechs.
    return {"helloOk": True, "ismaster": True, "isWritablePrimary": True,
            "maxBsonObjectSize": MAX_BSON_SIZE, "maxMessageSizeBytes": MAX_MESSAGE_SIZE,
            "maxWriteBatchSize": 100_000, "localTime": datetime.now(timezone.utc),
            "minWireVersion": 0, "maxWireVersion": MAX_WIRE_VERSION, "readOnly": False,
            "connectionId": next(b._connection_ids)}


def _build_info(b: Backend, cmd: Mapping[str, Any], db: str) -> dict[str, Any]:
    return {"version": "6.0.0", "versionArray": [6, 0, 0, 0], "gitVersion": "wire_server",
            "maxBsonObjectSize": MAX_BSON_SIZE}


def _find(b: Backend, cmd: Mapping[str, Any], db: str) -> dict[str, Any]:
    coll = b.collection(db, cmd["find"])
    cursor = coll.find(cmd.get("filter") or {}, cmd.get("projection") or None)
    if cmd.get("sort"):
        cursor = cursor.sort(list(cmd["sort"].items()))
    if cmd.get("skip"):
        cursor = cursor.skip(int(cmd["skip"]))
    limit = int(cmd.get("limit") or 0)
    if limit:
        cursor = cursor.limit(abs(limit))
    batch = cmd.get("batchSize")
    return b.cursor_reply(f"{db}.{cmd['find']}", list(cursor), batch and int(batch),
                          single_batch=bool(cmd.get("singleBatch")) or limit < 0)


def _aggregate(b: Backend, cmd: Mapping[str, Any], db: str) -> dict[str, Any]:
    docs = list(b.collection(db, cmd["aggregate"]).aggregate(list(cmd["pipeline"])))
    batch = (cmd.get("cursor") or {}).get("batchSize")
    return b.cursor_reply(f"{db}.{cmd['aggregate']}", docs, batch and int(batch))


def _insert(b: Backend, cmd: Mapping[str, Any], db: str) -> dict[str, Any]:
    coll = b.collection(db, cmd["insert"])
    n, errors = 0, []
    for i, doc in enumerate(cmd.get("documents", ())):
        try:
            coll.insert_one(doc)
            n += 1
        except Exception as exc:
            errors.append({"index": i, **_write_error(exc)})
            if cmd.get("ordered", True):
                break
    return {"n": n, **({"writeErrors": errors} if errors else {})}


def _update(b: Backend, cmd: Mapping[str, Any], db: str) -> dict[str, Any]:
    coll = b.collection(db, cmd["update"])
    n = modified = 0
    upserted, errors = [], []
    for i, spec in enumerate(cmd.get("updates", ())):
        q, u, upsert = spec.get("q") or {}, spec["u"], bool(spec.get("upsert"))
        try:
            if isinstance(u, Mapping) and not any(k.startswith("$") for k in u):
                res = coll.replace_one(q, u, upsert=upsert)
            elif spec.get("multi"):
                res = coll.update_many(q, u, upsert=upsert)
            else:
                res = coll.update_one(q, u, upsert=upsert)
        except Exception as exc:
            errors.append({"index": i, **_write_error(exc)})
            if cmd.get("ordered", True):
                break
            continue
        n += res.matched_count
        modified += res.modified_count
        if res.upserted_id is not None:
            upserted.append({"index": i, "_id": res.upserted_id})
            n += 1  # the server counts upserts in n; pymongo subtracts them again
    reply: dict[str, Any] = {"n": n, "nModified": modified}
    if upserted:
        reply["upserted"] = upserted
    if errors:
        reply["writeErrors"] = errors
    return reply


def _delete(b: Backend, cmd: Mapping[str, Any], db: str) -> dict[str, Any]:
    coll = b.collection(db, cmd["delete"])
    n = 0
    for spec in cmd.get("deletes", ()):
        q = spec.get("q") or {}
        res = coll.delete_one(q) if spec.get("limit") == 1 else coll.delete_many(q)
        n += res.deleted_count
    return {"n": n}


def _find_and_modify(b: Backend, cmd: Mapping[str, Any], db: str) -> dict[str, Any]:
    coll = b.collection(db, cmd["findAndModify"])
    query = cmd.get("query") or {}
    sort = list(cmd["sort"].items()) if cmd.get("sort") else None
    fields = cmd.get("fields") or None
    if cmd.get("remove"):
        value = coll.find_one_and_delete(query, projection=fields, sort=sort)
        return {"lastErrorObject": {"n": int(value is not None)}, "value": value}
    update, upsert = cmd["update"], bool(cmd.get("upsert"))
    existed = upsert and coll.find_one(query, {"_id": 1}, sort=sort) is not None
    when = ReturnDocument.AFTER if cmd.get("new") else ReturnDocument.BEFORE
    if isinstance(update, Mapping) and not any(k.startswith("$") for k in update):
        value = coll.find_one_and_replace(query, update, projection=fields, sort=sort,
                                          upsert=upsert, return_document=when)
    else:
        value = coll.find_one_and_update(query, update, projection=fields, sort=sort,
                                         upsert=upsert, return_document=when)
    hit = value is not None or upsert
    return {"lastErrorObject": {"n": int(hit), "updatedExisting": bool(hit and
                                                                      (existed or not upsert))},
            "value": value}


def _count(b: Backend, cmd: Mapping[str, Any], db: str) -> dict[str, Any]:
    return {"n": b.collection(db, cmd["count"]).count_documents(cmd.get("query") or {})}


def _distinct(b: Backend, cmd: Mapping[str, Any], db: str) -> dict[str, Any]:
    coll = b.collection(db, cmd["distinct"])
    return {"values": coll.distinct(cmd["key"], cmd.get("query") or {})}


def _create_indexes(b: Backend, cmd: Mapping[str, Any], db: str) -> dict[str, Any]:
    coll = b.collection(db, cmd["createIndexes"])
    created = cmd["createIndexes"] not in b.client[db].list_collection_names()
    before = len(coll.index_information())
    for spec in cmd["indexes"]:
        options = {k: v for k, v in spec.items() if k in
                   ("name", "unique", "sparse", "expireAfterSeconds", "partialFilterExpression")}
        coll.create_index(list(spec["key"].items()), **options)
    return {"createdCollectionAutomatically": created, "numIndexesBefore": before,
            "numIndexesAfter": len(coll.index_information())}


def _list_indexes(b: Backend, cmd: Mapping[str, Any], db: str) -> dict[str, Any]:
    name = cmd["listIndexes"]
    if name not in b.client[db].list_collection_names():
        return _error(26, f"ns does not exist: {db}.{name}", "NamespaceNotFound")
    docs = [{"v": 2, "key": bson.SON(info["key"]), "name": index_name,
             **{k: v for k, v in info.items() if k not in ("v", "key")}}
            for index_name, info in b.collection(db, name).index_information().items()]
    return b.cursor_reply(f"{db}.{name}", docs, None)


def _drop_indexes(b: Backend, cmd: Mapping[str, Any], db: str) -> dict[str, Any]:
    coll = b.collection(db, cmd["dropIndexes"])
    if cmd.get("index") == "*":
        coll.drop_indexes()
    else:
        coll.drop_index(cmd["index"])
    return {}


def _create(b: Backend, cmd: Mapping[str, Any], db: str) -> dict[str, Any]:
    b.client[db].create_collection(cmd["create"])
    return {}


def _drop(b: Backend, cmd: Mapping[str, Any], db: str) -> dict[str, Any]:
    b.client[db].drop_collection(cmd["drop"])
    b._collections.pop((db, cmd["drop"]), None)
    return {"ns": f"{db}.{cmd['drop']}"}


def _drop_database(b: Backend, cmd: Mapping[str, Any], db: str) -> dict[str, Any]:
    b.client.drop_database(db)
    b._collections = {k: v for k, v in b._collections.items() if k[0] != db}
    return {"dropped": db}


def _list_collections(b: Backend, cmd: Mapping[str, Any], db: str) -> dict[str, Any]:
    names = b.client[db].list_collection_names()
    wanted = (cmd.get("filter") or {}).get("name")
    docs = [{"name": n, "type": "collection", "options": {}, "info": {"readOnly": False}}
            for n in sorted(names) if wanted is None or n == wanted]
    return b.cursor_reply(f"{db}.$cmd.listCollections", docs, None)


def _list_databases(b: Backend, cmd: Mapping[str, Any], db: str) -> dict[str, Any]:
    names = b.client.list_database_names()
    return {"databases": [{"name": n, "sizeOnDisk": 0, "empty": False} for n in names],
            "totalSize": 0}


def _kill_cursors(b: Backend, cmd: Mapping[str, Any], db: str) -> dict[str, Any]:
    ids = [int(i) for i in cmd.get("cursors", ())]
    for cursor_id in ids:
        b._cursors.pop(cursor_id, None)
    return {"cursorsKilled": [Int64(i) for i in ids], "cursorsNotFound": [],
            "cursorsAlive": [], "cursorsUnknown": []}


def _ok(b: Backend, cmd: Mapping[str, Any], db: str) -> dict[str, Any]:
    return {}


_Handler = Callable[[Backend, Mapping[str, Any], str], dict[str, Any]]
_COMMANDS: dict[str, _Handler] = {
    "hello": _hello, "ismaster": _hello, "isMaster": _hello, "ping": _ok,
    "buildinfo": _build_info, "buildInfo": _build_info, "endSessions": _ok,
    "find": _find, "getMore": lambda b, cmd, db: b.get_more(cmd), "killCursors": _kill_cursors,
    "aggregate": _aggregate, "count": _count, "distinct": _distinct,
    "insert": _insert, "update": _update, "delete": _delete, "findAndModify": _find_and_modify,
    "findandmodify": _find_and_modify, "createIndexes": _create_indexes,
    "listIndexes": _list_indexes, "dropIndexes": _drop_indexes, "create": _create,
    "drop": _drop, "dropDatabase": _drop_database, "listCollections": _list_collections,
    "listDatabases": _list_databases,
}


def _write_error(exc: BaseException) -> dict[str, Any]:
    reply = _error_of(exc)
    return {"code": reply["code"], "errmsg": reply["errmsg"]}


# ---- the server ----------------------------------------------------------------------------

def _receive(sock: socket.socket, length: int) -> bytes:
    """Exactly ``length`` bytes, read into one buffer (mockupdb concatenates chunks)."""
    buf = bytearray(length)
    view = memoryview(buf)
    got = 0
    while got < length:
        n = sock.recv_into(view[got:], length - got)
        if n == 0:
            raise ConnectionResetError(errno.ECONNRESET, "closed")
        got += n
    return bytes(buf)


class _Server(mockupdb.MockupDB):  # type: ignore[misc]
    """MockupDB with a connection loop that dispatches straight to the backend."""

    def __init__(self, backend: Backend, port: int, patched: bool) -> None:
        super().__init__(port=port, request_timeout=int(1e6))
        self._backend = backend
        self._patched = patched
        if not patched:  # mockupdb as shipped: autoresponder, logging, stock receive loop
            self.autoresponds(mockupdb.Matcher(), self._stock_reply)

    def _stock_reply(self, request: Any) -> bool:
        request.replies(self._backend.execute(request.doc))
        return True

    def _accept_loop(self) -> None:
        # As mockupdb's, but polls every 50 ms instead of 1 s, so stop() returns quickly.
        self._listening_sock.setblocking(False)
        while not self._stopped:
            try:
                readable, _, _ = select.select([self._listening_sock], [], [], 0.05)
                if not readable:
                    continue
                client, _ = self._listening_sock.accept()
            except (OSError, ValueError):  # closed by stop(), or a connection gone already
                if self._stopped:
                    break
                continue
            client.setblocking(True)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            loop = self._fast_loop if self._patched else self._server_loop
            thread = threading.Thread(target=loop, args=(client, None), daemon=True)
            self._server_threads[thread] = None
            self._server_socks[client] = None
            thread.start()

    def _fast_loop(self, client: socket.socket, _addr: Any) -> None:
        try:
            while not self._stopped:
                header = _receive(client, 16)
                length, request_id, _, opcode = struct.unpack("<iiii", header)
                body = _receive(client, length - 16)
                request = mockupdb.OPCODES[opcode].unpack(body, client, self, request_id)
                reply = self._backend.execute(request.doc)
                if opcode == _OP_MSG:
                    if request.flags & _MORE_TO_COME:
                        continue  # unacknowledged write: no reply expected
                    data = struct.pack("<IB", 0, 0) + bson.encode(reply)
                    client.sendall(struct.pack("<iiii", 16 + len(data), 0, request_id, _OP_MSG)
                                   + data)
                else:  # OP_QUERY: only the legacy isMaster handshake uses it
                    client.sendall(mockupdb.OpReply(reply).reply_bytes(request))
        except OSError:
            pass  # the client hung up, or stop() shut the socket
        except Exception:  # a message we cannot parse: say so, drop only this connection
            traceback.print_exc()
        finally:
            client.close()


class WireServer:
    """A restartable wire-protocol test server on 127.0.0.1.

    Data lives in the backend and survives ``restart()`` (like a mongod restart), which
    reuses the port so connected clients can reconnect.

    Args:
        port: 0 picks a free port on the first ``start()``.
        patched: False serves through mockupdb's stock loop, for the before/after benchmark.
    """

    def __init__(self, port: int = 0, *, patched: bool = True) -> None:
        self.backend = Backend()
        self.port = port
        self._patched = patched
        self._server: _Server | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self) -> str:
        """Serve; returns the URL to give pymongo."""
        if self._server is None:
            self._server = _Server(self.backend, self.port, self._patched)
            self._server._address = ("127.0.0.1", self.port)
            self.port = self._server.run()
        return self.url

    def stop(self) -> None:
        """Stop serving and hang up on every client."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def restart(self) -> str:
        """Stop, then serve again on the same port with the same data."""
        self.stop()
        return self.start()

    def __enter__(self) -> WireServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---- command line --------------------------------------------------------------------------

def _bench(n_trials: int = 500, n_ops: int = 300) -> None:
    """Round-trip latency of MongoTrialStore operations, stock mockupdb vs patched."""
    for patched in (False, True):
        with WireServer(patched=patched) as server:
            if not patched:  # stock mongomock scan too: undo the per-collection speed-up
                server.backend.collection = (  # type: ignore[method-assign]
                    lambda db, name: server.backend.client[db][name])
            timings = _time_ops(server.url, n_trials, n_ops)
        label = "patched" if patched else "stock  "
        print(label, "  ".join(f"{k} {v:.2f} ms" for k, v in timings.items()), flush=True)


def _time_ops(url: str, n_trials: int, n_ops: int) -> dict[str, float]:
    from parzen.store._mongo import MongoTrialStore
    from parzen.trial import Owner, Trial, TrialState

    store = MongoTrialStore.from_url(url)
    store.insert_new([Trial("bench", t, TrialState.NEW, {"x": t * 0.1})
                      for t in range(n_trials)])
    owner = Owner("bench", "localhost", 1)
    ops: dict[str, Callable[[int], object]] = {
        "ping": lambda i: store._db.command("ping"),
        "claim": lambda i: store.claim("bench", i, owner, 60),
        "heartbeat(lost)": lambda i: store.heartbeat("bench", i, "stale", 60),
        "get": lambda i: store.get("bench", i),
    }
    timings: dict[str, float] = {}
    for op, call in ops.items():
        start = time.perf_counter()
        for i in range(n_ops):
            call(i)
        timings[op] = (time.perf_counter() - start) / n_ops * 1e3
    start = time.perf_counter()
    store.get_payload(store.put_payload("bench", bytes(8 * 1024 * 1024)))
    timings["8MiB payload put+get"] = (time.perf_counter() - start) * 1e3
    store.close()
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port (0: any free port)")
    parser.add_argument("--bench", action="store_true", help="print per-op latencies and exit")
    args = parser.parse_args(argv)
    if args.bench:
        _bench()
        return 0
    server = WireServer(args.port)
    print(server.start(), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
