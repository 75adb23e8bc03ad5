"""Objective payloads: cloudpickled, stamped with versions, signed with HMAC-SHA256.

A payload is what a worker needs to evaluate trials: the objective and the space. It travels
through MongoDB, which workers must not trust blindly: anyone who can write to the database
could otherwise make every worker unpickle (that is, run) arbitrary code. So the coordinator
signs the bytes with a key shared only with the workers, and a worker verifies the signature
*before* it unpickles anything. The alternative for production code is an import path
(``"package.module:function"``), which loads code the worker already has.

The signed header also names the code pickled *by value* (a function defined in ``__main__``,
a notebook or inside another function: its bytecode travels in the payload). Bytecode is
specific to a Python minor version, so a worker on another one refuses such a payload before
unpickling it (``refuse_python_skew``) instead of crashing on it.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import importlib
import io
import json
import linecache
import marshal
import os
import platform
import secrets
import socket
import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cloudpickle

from parzen.exceptions import (
    ConfigError,
    ObjectiveNotPicklable,
    ObjectiveUnloadable,
    PayloadSignatureError,
    PayloadTooLarge,
)
from parzen.settings import DEFAULT_MAX_PAYLOAD_BYTES
from parzen.version import __version__

MAGIC = b"PZN1"
DEFAULT_MAX_BYTES = DEFAULT_MAX_PAYLOAD_BYTES
# Larger payloads go to GridFS. Workers read the experiment document for every trial but
# fetch a GridFS payload once per objective, so anything but a small pickle stays out of it.
INLINE_MAX_BYTES = 64 * 1024
SECRET_ENV = "PARZEN_SECRET"
SECRET_FILE_ENV = "PARZEN_SECRET_FILE"
# The header key naming the code pickled by value ("" for none); payloads written before it
# existed lack it, and are treated as holding some.
BY_VALUE = "by_value"
# The header key naming the signing key by its fingerprint (``key_fingerprint``); payloads
# written before it existed lack it.
KEY = "key"
_BY_VALUE_NAMED = 5  # how many pieces of code the header names; the rest are counted
# The source of a file whose code is pickled by value travels with it up to this size; a
# larger file (generated code) travels without, and its traceback lines show no source.
MAX_SOURCE_CHARS = 1_000_000


def stamp() -> dict[str, str]:
    """The versions a payload was built with; a worker reports skew against its own."""
    return {"python": platform.python_version(), "cloudpickle": cloudpickle.__version__,
            "parzen": __version__}


def load_secret(secret: str | bytes | None = None, *, required: bool = True,
                environ: Mapping[str, str] | None = None) -> bytes | None:
    """The signing key: ``secret`` if given, else ``$PARZEN_SECRET`` or the file named by
    ``$PARZEN_SECRET_FILE`` (read from ``environ``, by default the process environment).

    Raises:
        ConfigError: no key is configured and ``required``, both variables are set, or the
            key is too short.
    """
    environ = os.environ if environ is None else environ
    if secret is None:
        env = environ.get(SECRET_ENV, "")
        path = environ.get(SECRET_FILE_ENV, "")
        if env and path:
            # One rule for the coordinator and every kind of worker: a half-edited env file
            # must not leave them on different keys.
            raise ConfigError(
                f"both {SECRET_ENV} and {SECRET_FILE_ENV} are set; keep one so there is no "
                "doubt which key is used"
            )
        if env:
            secret = env
        elif path:
            try:
                with open(path, "rb") as f:
                    secret = f.read().strip()
            except OSError as exc:
                raise ConfigError(f"{SECRET_FILE_ENV}={path!r} cannot be read: {exc}") from exc
    if secret is None or len(secret) == 0:
        if not required:
            return None
        raise ConfigError(
            "no signing key: distributed runs sign the pickled objective so workers can check "
            f"it before unpickling. Set the same key on the coordinator and every worker: "
            f"export {SECRET_ENV}=$(python -c 'import secrets; print(secrets.token_hex(32))') "
            f"or put it in a file and set {SECRET_FILE_ENV}=/path/to/key"
        )
    key = secret.encode() if isinstance(secret, str) else bytes(secret)
    if len(key) < 16:
        raise ConfigError(
            f"the signing key is {len(key)} bytes; use at least 16 (32 random bytes as hex is "
            "a good choice)"
        )
    return key


@functools.lru_cache(maxsize=8)
def key_fingerprint(key: bytes) -> str:
    """A short name for a signing key, to tell keys apart in logs and messages without
    revealing them: 8 hex digits of PBKDF2-HMAC-SHA256 over the key (100,000 rounds, a fixed
    salt). Two keys with the same fingerprint are, in all likelihood, the same key; the slow
    hash and the 32 bits kept make the fingerprint useless for guessing a weak key."""
    return hashlib.pbkdf2_hmac("sha256", key, b"parzen key fingerprint", 100_000)[:4].hex()


def generate_secret() -> bytes:
    """A fresh random key, for runs that never leave this machine."""
    return secrets.token_hex(32).encode()


def _mac(key: bytes, header: bytes, body: bytes) -> bytes:
    return hmac.new(key, header + b"\0" + body, hashlib.sha256).digest()


@dataclass(frozen=True)
class Payload:
    """A signed, versioned blob. ``data`` is what gets stored."""

    data: bytes
    sha256: str

    @property
    def size(self) -> int:
        return len(self.data)


class _CodeNoting(cloudpickle.Pickler):  # type: ignore[misc]  # cloudpickle is untyped
    """cloudpickle's pickler, noting each code object it pickles: the code of what it pickles
    by value. What it pickles by reference (importable functions, classes) has no code object
    in the pickle.

    It also pickles that code so that a traceback through it reads as on the coordinator:
    cloudpickle renames every file to ``<dynamic-code>``, and a worker may not have the file
    at all. Each code object travels as ``marshal`` bytes (as in a ``.pyc``: file name and
    line numbers kept) with its file's source, which ``_code`` hands to ``linecache`` when the
    payload is unpickled. The source is signed with the rest.
    """

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file)
        self.by_value: list[str] = []
        # One str per file, so pickle's memo stores each file's source once.
        self._sources: dict[str, str | None] = {}

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, types.CodeType):
            self._note(obj)
            return _code, (marshal.dumps(obj), obj.co_filename, self._source(obj.co_filename))
        return super().reducer_override(obj)

    def _note(self, code: types.CodeType) -> None:
        """Note ``code`` and the functions, lambdas and classes defined in it (marshal packs
        them with it)."""
        name = getattr(code, "co_qualname", code.co_name)  # co_qualname: Python 3.11+
        self.by_value.append(f"{name} ({code.co_filename}:{code.co_firstlineno})")
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                self._note(const)

    def _source(self, filename: str) -> str | None:
        if filename not in self._sources:
            # linecache knows files, and the cells of IPython and Jupyter, which it registers.
            text = "".join(linecache.getlines(filename))
            self._sources[filename] = text if 0 < len(text) <= MAX_SOURCE_CHARS else None
        return self._sources[filename]


def _code(data: bytes, filename: str, source: str | None) -> types.CodeType:
    """Unpickle a code object of a payload: register its file's source with ``linecache``
    (so tracebacks show the lines, also where the file does not exist), then load it."""
    if source is not None:
        entry = linecache.cache.get(filename)
        if entry is None or len(entry) != 4 or entry[1] is not None or entry[0] != len(source):
            # No modification time: linecache.checkcache then leaves the entry alone.
            linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    code = marshal.loads(data)
    if not isinstance(code, types.CodeType):
        raise TypeError(f"a payload's code for {filename} unpickled as {type(code).__name__}")
    return code


def _by_value_text(names: list[str]) -> str:
    """The header's ``by_value``: the first few pieces of code, and how many more."""
    text = ", ".join(names[:_BY_VALUE_NAMED])
    if len(names) > _BY_VALUE_NAMED:
        text += f" and {len(names) - _BY_VALUE_NAMED} more"
    return text


def build(obj: Any, key: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Payload:
    """Cloudpickle ``obj``, stamp and sign it.

    The signed header holds ``stamp()``, under ``BY_VALUE`` the code pickled by value, and
    under ``KEY`` the signing key's fingerprint (``key_fingerprint``).

    Raises:
        ObjectiveNotPicklable: cloudpickle failed; the message names what it could not pickle.
        PayloadTooLarge: the pickle is over ``max_bytes``.
    """
    try:
        with io.BytesIO() as file:
            pickler = _CodeNoting(file)
            pickler.dump(obj)
            body = file.getvalue()
    except Exception as exc:  # cloudpickle raises many types (TypeError, PicklingError, ...)
        where = _culprit(obj)
        raise ObjectiveNotPicklable(
            f"the objective or the space cannot be pickled for the workers: "
            f"{type(exc).__name__}: {exc}{f' ({where})' if where else ''}. Objects such as "
            "open files, locks, sockets and "
            "database clients cannot travel; create them inside the objective, or pass an "
            "import path ('package.module:function') instead of a function"
        ) from exc
    if len(body) > max_bytes:
        raise PayloadTooLarge(
            f"the pickled objective is {len(body) / 1e6:.1f} MB, over the "
            f"{max_bytes / 1e6:.1f} MB limit (max_payload_bytes={max_bytes}); it probably "
            "captures a large array or data set. "
            "Load large data inside the objective (from a file or URL the workers can reach) "
            "instead of capturing it, or raise the limit with max_payload_bytes"
        )
    header = json.dumps({**stamp(), BY_VALUE: _by_value_text(pickler.by_value),
                         KEY: key_fingerprint(key)}, sort_keys=True).encode()
    mac = _mac(key, header, body)
    data = MAGIC + len(header).to_bytes(4, "big") + header + mac + body
    return Payload(data, hashlib.sha256(data).hexdigest())


def _picklable(value: Any) -> bool:
    try:
        cloudpickle.dumps(value)
    except Exception:  # whatever cloudpickle raises, the value cannot travel
        return False
    return True


def _parts(value: Any) -> list[tuple[str, Any]]:
    """The named parts of ``value`` that pickling it would pickle too."""
    if isinstance(value, dict):
        return [(f"[{k!r}]", v) for k, v in value.items()]
    if isinstance(value, (list, tuple)):
        return [(f"[{i}]", v) for i, v in enumerate(value)]
    parts: list[tuple[str, Any]] = []
    code = getattr(value, "__code__", None)
    if code is not None:  # a function pickled by value: its closure and globals
        for name, cell in zip(code.co_freevars, getattr(value, "__closure__", None) or (),
                              strict=False):
            try:
                parts.append((f"closure variable {name!r}", cell.cell_contents))
            except ValueError:  # an empty cell
                pass
        globs = getattr(value, "__globals__", {})
        parts += [(f"global {n!r}", globs[n]) for n in code.co_names if n in globs]
    owner = getattr(value, "__self__", None)  # a bound method: its instance
    if owner is not None and code is not None:
        parts.append(("the method's instance", owner))
    attrs = getattr(value, "__dict__", None)
    if isinstance(attrs, dict):
        parts += [(f"attribute {k!r}", v) for k, v in attrs.items()]
    return parts


def _culprit(obj: Any, depth: int = 4) -> str:
    """Where in ``(objective, space)`` the value that cannot be pickled is, e.g. ``the
    objective -> closure variable 'model' -> attribute 'lock' is a _thread.lock, which cannot
    be pickled``; empty when no part of ``obj`` fails on its own."""
    labels = ["the objective", "the space"] if isinstance(obj, tuple) and len(obj) == 2 \
        else ["the objective"]
    roots = list(obj) if len(labels) == 2 else [obj]
    for label, root in zip(labels, roots, strict=True):
        if _picklable(root):
            continue
        path, value = [label], root
        for _ in range(depth):
            bad = next(((name, v) for name, v in _parts(value) if not _picklable(v)), None)
            if bad is None:
                break
            path.append(bad[0])
            value = bad[1]
        kind = f"{type(value).__module__}.{type(value).__qualname__}"
        return f"{' -> '.join(path)} is a {kind}, which cannot be pickled"
    return ""


def verify(data: bytes, key: bytes) -> tuple[dict[str, str], bytes]:
    """Check ``data``'s signature and return its stamp and the *unopened* pickle bytes.

    Raises:
        PayloadSignatureError: the payload is malformed or was not signed with ``key``.
    """
    if len(data) < 4 + 4 + 32 or not data.startswith(MAGIC):
        raise PayloadSignatureError(
            "the objective payload is not a parzen payload (bad header); it was not written by "
            "a parzen coordinator, or it is corrupted. Nothing was unpickled"
        )
    n = int.from_bytes(data[4:8], "big")
    header = data[8:8 + n]
    mac = data[8 + n:8 + n + 32]
    body = data[8 + n + 32:]
    if not hmac.compare_digest(mac, _mac(key, header, body)):
        raise PayloadSignatureError(_mismatch(header, key))
    return json.loads(header), body


def _mismatch(header: bytes, key: bytes) -> str:
    """Why a signature does not match, from the fingerprint the (unverified) header names."""
    mine = key_fingerprint(key)
    try:
        theirs = json.loads(header).get(KEY)
    except (ValueError, AttributeError, RecursionError):  # not JSON, or not an object
        theirs = None
    fix = (f"Give this worker the coordinator's key: the same {SECRET_ENV}, or "
           f"{SECRET_FILE_ENV} naming a file that holds it, on the coordinator and every "
           "worker, then restart the worker")
    if theirs == mine:
        return ("the objective payload's signature does not match, although it names this "
                f"worker's key (fingerprint {mine}): it was changed after it was signed, "
                "tampered with in the database or corrupted. Nothing was unpickled")
    if isinstance(theirs, str) and theirs:
        return (f"the objective payload was signed with the key of fingerprint {theirs:.16}, "
                f"and this worker's key has fingerprint {mine}: the coordinator and the worker "
                f"use different {SECRET_ENV} values. {fix}. Nothing was unpickled")
    return ("the objective payload's signature does not match this worker's key (fingerprint "
            f"{mine}); either the coordinator and the worker use different {SECRET_ENV} "
            f"values ({fix}), or the payload in the database was tampered with. Nothing was "
            "unpickled")


def _minor(version: str) -> str:
    """``3.11`` for ``3.11.7``."""
    return ".".join(version.split(".")[:2])


def refuse_python_skew(header: Mapping[str, str], what: str = "objective") -> None:
    """Refuse a verified payload whose code was pickled by value under another Python minor
    version than this one; call it before unpickling the payload.

    Bytecode changes between Python minor versions (3.11 to 3.12), and cloudpickle promises
    nothing across them: loading such code can kill the interpreter with SIGSEGV instead of
    raising, which would spend every attempt of every trial. Payloads of importable code
    only (no code by value) travel between versions; so do patch releases (3.11.7, 3.11.9).

    Args:
        header: the stamp ``verify`` returned.
        what: what the payload holds, for the message: ``"objective"`` or ``"space"``.
    Raises:
        ObjectiveUnloadable: the payload holds code by value (or may: it predates the record)
            and was built on another Python minor version; the message names both versions
            and the import-path alternative.
    """
    theirs = header.get("python")
    mine = platform.python_version()
    by_value = header.get(BY_VALUE)
    if not theirs or _minor(theirs) == _minor(mine) or by_value == "":
        return
    code = f" ({by_value})" if by_value else ""
    if what == "objective":
        fix = ("or define the objective in a module the workers can import and pass its "
               "path: MongoTrials(..., objective=\"package.module:function\")")
    else:
        fix = ("or define the functions the space uses in a module the workers can import, "
               "and pass the objective's path: MongoTrials(..., "
               "objective=\"package.module:function\")")
    raise ObjectiveUnloadable(
        f"the {what} was pickled by value{code} on Python {theirs}, and this worker runs "
        f"Python {mine} ({sys.executable} on {socket.gethostname()}): bytecode differs between "
        "Python minor versions, and loading it can crash the evaluation with SIGSEGV. Run the "
        f"workers on Python {_minor(theirs)} like the coordinator (or the coordinator on "
        f"Python {_minor(mine)}), {fix}. Nothing was unpickled"
    )


def import_objective(path: str) -> Any:
    """Load ``"package.module:function"``.

    Raises:
        ConfigError: the path is not of that form.
        ObjectiveUnloadable: the module or attribute cannot be imported here.
    """
    if not isinstance(path, str) or path.count(":") != 1 or not all(path.split(":")):
        raise ConfigError(
            f"objective import path {path!r} must look like 'package.module:function'"
        )
    mod_name, attr = path.split(":")
    try:
        obj: Any = importlib.import_module(mod_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except ModuleNotFoundError as exc:
        raise ObjectiveUnloadable(
            f"cannot import the objective {path!r}: module {exc.name!r} is not installed on "
            f"{socket.gethostname()} for {sys.executable}; the coordinator and every worker "
            "import it, so install it (or put its directory on PYTHONPATH) on each"
        ) from exc
    except (ImportError, AttributeError) as exc:
        raise ObjectiveUnloadable(f"cannot import the objective {path!r}: {exc}") from exc
    return obj
