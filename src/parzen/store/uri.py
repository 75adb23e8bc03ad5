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
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from parzen.exceptions import ConfigError

DEFAULT_DATABASE = "parzen"

_MONGO_SCHEMES = ("mongodb", "mongodb+srv")
# Characters MongoDB refuses in a database name (plus the path separator, which would
# otherwise silently swallow a hyperopt-style collection suffix in a mongodb:// URL).
_BAD_DB_CHARS = re.compile(r'[/\\. "$*<>:|?\x00]')
# Query options whose values are secrets (matched case-insensitively, by substring).
_SECRET_OPTIONS = ("password", "secret", "token", "authmechanismproperties")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>]+")


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


def redact(url: str) -> str:
    """``url`` with its password (and secret-bearing query options) replaced by ``***``.

    Works for any ``scheme://user:pass@host`` URL: ``mongodb://user:***@host``,
    ``redis://:***@host:6379/0``. The user name is kept, since it helps debugging and is not
    a secret. ``user:pass@host`` without a scheme is redacted too; text that is not a URL is
    returned unchanged.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        if "@" not in url or any(c.isspace() for c in url):
            return url
        rest = url  # "user:pass@host" without a scheme: still a credential
    head, qsep, query = rest.partition("?")
    # The userinfo ends at the last '@' before the query: unencoded passwords may contain
    # '@' or '/', and redacting too much beats leaking the tail of a password.
    at = head.rfind("@")
    if at >= 0:
        user, colon, _ = head[:at].partition(":")
        head = f"{user}:***@{head[at + 1:]}" if colon else head
    if qsep:
        query = "&".join(_redact_option(part) for part in query.split("&"))
    return (f"{scheme}://" if sep else "") + head + (f"?{query}" if qsep else "")


def redact_text(text: str) -> str:
    """``text`` with every URL in it passed through ``redact``."""
    return _URL_IN_TEXT.sub(lambda m: redact(m.group(0)), text)


def _redact_option(part: str) -> str:
    key, eq, _ = part.partition("=")
    if eq and any(s in key.lower() for s in _SECRET_OPTIONS):
        return f"{key}=***"
    return part
