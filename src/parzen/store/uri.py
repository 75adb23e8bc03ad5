"""Store URLs: turn the MongoDB URL forms parzen accepts into what pymongo takes, and redact
credentials before a URL goes into a message or a log line.

Accepted forms:

- ``mongodb://[user:pass@]host[:port][,host...][/db][?options]`` and ``mongodb+srv://...``:
  passed to pymongo unchanged, so TLS, ``authSource``, ``replicaSet`` and every other URI
  option behave as documented by MongoDB. The database in the path is also pymongo's default
  ``authSource``, exactly as for any MongoDB client.
- hyperopt's ``mongo://[user:pass@]host:port/db/jobs``: rewritten to
  ``mongodb://[user:pass@]host:port/db``. The trailing collection name (``jobs``) is ignored:
  parzen always keeps its trials in the ``experiments``, ``trials`` and ``payloads``
  collections of that database.

A URL without a database name uses the database ``parzen``.

A user name or password must be percent-encoded where it holds ``/``, ``?``, ``#``, ``@``,
``:`` or ``%`` (``urllib.parse.quote(password, safe="")``), as every MongoDB driver requires:
``parse_mongo_url`` and ``check_broker_url`` refuse it otherwise, naming the fix, and
``redact`` hides everything up to the last ``@``, so even such a password never reaches a
message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from parzen.exceptions import ConfigError

DEFAULT_DATABASE = "parzen"

_MONGO_SCHEMES = ("mongodb", "mongodb+srv")
# Characters MongoDB refuses in a database name (plus the path separator, which would
# otherwise silently swallow a hyperopt-style collection suffix in a mongodb:// URL).
_BAD_DB_CHARS = re.compile(r'[/\\. "$*<>:|?\x00]')
# Query options whose values are secrets (matched case-insensitively, by substring).
_SECRET_OPTIONS = ("password", "secret", "token", "authmechanismproperties")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")
_BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps")
# How to encode a password. It reads the password from a prompt: on a command line, `ps`
# would show it to every local user.
_ENCODE_HINT = ("percent-encode the user name and password (this prompts for one and prints "
                "it encoded): python3 -c 'import getpass, urllib.parse; "
                "print(urllib.parse.quote(getpass.getpass(), safe=\"\"))'")
# A '%' that does not start a %XX escape: a password that was not percent-encoded.
_PERCENT_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class MongoURL:
    """A parsed store URL.

    Attributes:
        uri: what to give ``pymongo.MongoClient``.
        database: the database parzen uses.
        redacted: ``uri`` with the password replaced by ``***``, for messages.
        options: the URI option names present, lower-cased (so callers can tell whether the
            user set e.g. ``serverSelectionTimeoutMS`` explicitly).
    """

    uri: str
    database: str
    redacted: str
    options: frozenset[str]


def parse_mongo_url(url: str) -> MongoURL:
    """Parse a ``mongodb://``, ``mongodb+srv://`` or hyperopt ``mongo://`` URL.

    Raises:
        ConfigError: the scheme is not one of those, or the database name is invalid.
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in (*_MONGO_SCHEMES, "mongo"):
        raise ConfigError(
            f"store URL {redact(url)!r}: expected mongodb://, mongodb+srv:// or hyperopt's "
            "mongo://host:port/db/jobs"
        )
    problem = _userinfo_problem(rest, strict=True)
    if problem:
        raise ConfigError(f"store URL {redact(url)!r}: {problem}; {_ENCODE_HINT}")
    rest, _, query = rest.partition("?")
    authority, _, path = rest.partition("/")
    if not authority.rpartition("@")[2]:
        raise ConfigError(f"store URL {redact(url)!r} names no host")
    if scheme == "mongo":
        # hyperopt: mongo://host:port/db/collection; the collection is not ours to choose.
        database = path.split("/", 1)[0]
        scheme = "mongodb"
    else:
        database = path
    if database and _BAD_DB_CHARS.search(database):
        raise ConfigError(
            f"store URL {redact(url)!r}: {database!r} is not a valid MongoDB database name "
            "(no '/', '.', spaces or '$')"
        )
    uri = f"{scheme}://{authority}/{database}" + (f"?{query}" if query else "")
    options = frozenset(k.lower() for k, _ in parse_qsl(query, keep_blank_values=True))
    return MongoURL(uri=uri, database=database or DEFAULT_DATABASE, redacted=redact(uri),
                    options=options)


def check_broker_url(url: str, what: str = "broker URL") -> None:
    """Refuse a Celery broker URL that the worker could not use, before anything connects.

    Args:
        url: the URL.
        what: where it came from, for the message (``--broker``, ``$PARZEN_BROKER_URL``).

    Raises:
        ConfigError: the scheme is not redis://, rediss://, amqp:// or amqps://, the password
            holds an unencoded ``/``, ``?`` or ``#`` (which would end the host part early), or
            the port is not a number. The message shows the URL redacted.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in _BROKER_SCHEMES:
        raise ConfigError(f"{what} {redact(url)} is not a redis:// (or amqp://) URL; "
                          "expected e.g. redis://:PASSWORD@host:6379/0 (rediss:// for TLS)")
    problem = _userinfo_problem(rest, strict=False)
    if problem:
        raise ConfigError(f"{what} {redact(url)}: {problem}; {_ENCODE_HINT}")
    try:
        _ = urlsplit(url).port  # urllib checks the port only when asked for it
    except ValueError:
        port = re.split(r"[/?#]", rest.rpartition("@")[2], maxsplit=1)[0].rpartition(":")[2]
        raise ConfigError(f"{what} {redact(url)}: the port {port!r} is not a number between "
                          "0 and 65535") from None


def redact(url: str) -> str:
    """``url`` with its password (and secret-bearing query options) replaced by ``***``.

    Works for any ``scheme://user:pass@host`` URL: ``mongodb://user:***@host``,
    ``redis://:***@host:6379/0``. The user name is kept, since it helps debugging and is not
    a secret. ``user:pass@host`` without a scheme is redacted too; text that is not a URL is
    returned unchanged.

    The userinfo is taken to end at the *last* ``@``: a password that was not percent-encoded
    may hold ``@``, ``/``, ``?``, ``#``, quotes or spaces, and redacting too much (an ``@`` in
    a query option hides the host too) beats leaking the tail of a password.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        if "@" not in url:
            return url
        rest = url  # "user:pass@host" without a scheme: still a credential
    userinfo, at, rest = rest.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        userinfo = f"{user}:***@" if colon else f"{userinfo}@"
    head, qsep, query = rest.partition("?")
    if qsep:
        query = "&".join(_redact_option(part) for part in query.split("&"))
    return (f"{scheme}://" if sep else "") + userinfo + head + (f"?{query}" if qsep else "")


def redact_text(text: str) -> str:
    """``text`` with every URL in it passed through ``redact``.

    A URL ends at whitespace or a quote, unless that cut it inside a password (``user:pa``,
    then ``ss@host`` further on the line): then it runs to the line's last ``@``.
    """
    out: list[str] = []
    pos = 0
    while True:
        m = _URL_IN_TEXT.search(text, pos)
        if m is None:
            return "".join(out) + text[pos:]
        end = m.end()
        if _cut_in_password(m.group(0)):
            line_end = text.find("\n", end)
            line = text[end:] if line_end < 0 else text[end:line_end]
            at = line.split("://", 1)[0].rfind("@")
            if at >= 0:
                tail = re.match(r"[^\s'\"<>]*", text[end + at + 1:])
                end += at + 1 + (tail.end() if tail else 0)
        out.append(text[pos:m.start()] + redact(text[m.start():end]))
        pos = end


def _cut_in_password(url: str) -> bool:
    """Whether ``url``, as cut out of a text, ends inside ``user:password``: it has no ``@``
    and its host part has a ``:`` that is not followed by a port number."""
    rest = url.partition("://")[2]
    if "@" in rest:
        return False
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    _, colon, port = authority.rpartition(":")
    return bool(colon) and not port.isdigit()


def _userinfo_problem(rest: str, *, strict: bool) -> str | None:
    """What is wrong with the user name and password of ``rest`` (a URL after its
    ``scheme://``), if anything. Without ``strict``, an ``@`` or ``:`` in the password is
    let through (redis-py and kombu read up to the last ``@``)."""
    userinfo, at, _ = rest.rpartition("@")
    if not at:
        return None
    bad = sorted({c for c in "/?#" if c in userinfo})
    if bad:
        return ("the user name or password holds an unencoded " + ", ".join(map(repr, bad))
                + " (or an option value holds an '@', which must be written %40)")
    if strict and "@" in userinfo:
        return "the user name or password holds an unencoded '@'"
    if strict and userinfo.count(":") > 1:
        return "the user name or password holds an unencoded ':'"
    if strict and _PERCENT_ESCAPE.search(userinfo):
        return "the user name or password holds a '%' that is not a %XX escape"
    return None


def _redact_option(part: str) -> str:
    key, eq, _ = part.partition("=")
    if eq and any(s in key.lower() for s in _SECRET_OPTIONS):
        return f"{key}=***"
    return part
