"""Store URLs: the accepted forms, credential redaction, and failing fast when unreachable."""

from __future__ import annotations

import time

import pytest

from parzen.exceptions import ConfigError, StoreUnavailable
from parzen.store._mongo import MongoTrialStore
from parzen.store.uri import DEFAULT_DATABASE, parse_mongo_url, redact, redact_text
from tests.support import mongo as mf


@pytest.mark.parametrize(("url", "uri", "database"), [
    ("mongodb://localhost", "mongodb://localhost/", DEFAULT_DATABASE),
    ("mongodb://localhost:27017/", "mongodb://localhost:27017/", DEFAULT_DATABASE),
    ("mongodb://u:p@h1:1,h2:2/exp?replicaSet=rs&authSource=admin&tls=true",
     "mongodb://u:p@h1:1,h2:2/exp?replicaSet=rs&authSource=admin&tls=true", "exp"),
    ("mongodb://h/?replicaSet=rs", "mongodb://h/?replicaSet=rs", DEFAULT_DATABASE),
    ("mongodb+srv://u:p@cluster0.example.net/exp?retryWrites=true",
     "mongodb+srv://u:p@cluster0.example.net/exp?retryWrites=true", "exp"),
    ("mongo://localhost:1234/hyper/jobs", "mongodb://localhost:1234/hyper", "hyper"),
    ("mongo://u:p@localhost:1234/hyper/jobs", "mongodb://u:p@localhost:1234/hyper", "hyper"),
    ("mongo://localhost:1234/hyper", "mongodb://localhost:1234/hyper", "hyper"),
])
def test_url_forms(url: str, uri: str, database: str) -> None:
    parsed = parse_mongo_url(url)
    assert (parsed.uri, parsed.database) == (uri, database)
    assert ":p@" not in parsed.redacted


def test_url_options_are_collected_case_insensitively() -> None:
    parsed = parse_mongo_url("mongodb://h/db?serverSelectionTimeoutMS=10&authSource=admin")
    assert parsed.options == {"serverselectiontimeoutms", "authsource"}


@pytest.mark.parametrize("url", ["redis://:secret@h:6379/0", "mongodb://u:secret@/db",
                                 "mongodb://u:secret@h/a/b", "mongodb://u:secret@h/a.b",
                                 "u:secret@localhost",
                                 # passwords that were not percent-encoded (issue 15)
                                 "mongodb://u:secret/?x#y@h:27017/db", "mongodb://u:secret@@h/db",
                                 "mongodb://u:secret:x@h/db", "mongodb://u:secret%@h/db",
                                 "mongo://u:secret/x@h:1/db/jobs"])
def test_bad_urls_are_refused_without_leaking_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_mongo_url(url)
    assert "secret" not in str(err.value)


@pytest.mark.parametrize(("url", "redacted"), [
    ("mongodb://user:pass@host/db", "mongodb://user:***@host/db"),
    ("mongodb+srv://user:pass@cluster/db?tls=true", "mongodb+srv://user:***@cluster/db?tls=true"),
    ("redis://:pass@host:6379/0", "redis://:***@host:6379/0"),
    ("rediss://user:pass@host", "rediss://user:***@host"),
    ("redis://host:6379/0?password=pass", "redis://host:6379/0?password=***"),
    ("mongodb://u:p@ss/w@rd@h1,h2/db", "mongodb://u:***@h1,h2/db"),
    ("mongodb://h/db?tlsCertificateKeyFilePassword=x&authMechanismProperties=AWS_SESSION_TOKEN:t",
     "mongodb://h/db?tlsCertificateKeyFilePassword=***&authMechanismProperties=***"),
    ("mongodb://host/db", "mongodb://host/db"),
    ("mongodb://user@host/db", "mongodb://user@host/db"),
    ("not a url", "not a url"),
    # Passwords that were not percent-encoded: everything up to the last '@' goes (issue 15).
    ("mongodb://bob:Sup3r/?Secr#t@h:27017/db", "mongodb://bob:***@h:27017/db"),
    ("redis://:p?w#d@h:6379/0?password=x", "redis://:***@h:6379/0?password=***"),
    ("mongodb://bob:it's a secret@h/db", "mongodb://bob:***@h/db"),
    ("u:p/?w@h", "u:***@h"),
    ("u:p w@h", "u:***@h"),
])
def test_redact(url: str, redacted: str) -> None:
    assert redact(url) == redacted


def test_redact_text_redacts_every_url() -> None:
    text = "tried redis://:a@h1:6379/0 then mongodb://u:b@h2/db, both failed"
    assert redact_text(text) == \
        "tried redis://:***@h1:6379/0 then mongodb://u:***@h2/db, both failed"


def test_redact_text_redacts_a_password_cut_by_a_space_or_a_quote() -> None:
    text = "tried mongodb://u:it's a secret@h2:1/db and redis://:p w@h1:6379/0\nnext line"
    assert redact_text(text) == \
        "tried mongodb://u:***@h2:1/db and redis://:***@h1:6379/0\nnext line"
    # A URL without a password, followed by an address: left alone.
    text = "mongodb://h:27017/db is down; mail ops@example.com"
    assert redact_text(text) == text


def test_unreachable_server_is_store_unavailable_fast() -> None:
    start = time.monotonic()
    with pytest.raises(StoreUnavailable) as err:
        MongoTrialStore.from_url("mongodb://user:secret@127.0.0.1:1/db", connect_timeout_s=0.3)
    assert time.monotonic() - start < 3
    message = str(err.value)
    assert "mongodb://user:***@127.0.0.1:1/db" in message and "0.3 s" in message
    assert "secret" not in message


def test_unresolvable_srv_host_is_store_unavailable() -> None:
    with pytest.raises(StoreUnavailable) as err:
        MongoTrialStore.from_url("mongodb+srv://user:secret@nowhere.invalid/db",
                                 connect_timeout_s=0.5)
    assert "user:***@nowhere.invalid" in str(err.value) and "secret" not in str(err.value)


def test_connect_timeout_must_be_positive() -> None:
    with pytest.raises(ConfigError):
        MongoTrialStore.from_url("mongodb://localhost", connect_timeout_s=0)


def test_from_url_against_the_wire_server(wire_server: mf.WireServer) -> None:
    port = wire_server.port
    defaults = MongoTrialStore.from_url(f"mongodb://127.0.0.1:{port}/", connect_timeout_s=2)
    explicit = MongoTrialStore.from_url(
        f"mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=1234&socketTimeoutMS=5000")
    hyperopt = MongoTrialStore.from_url(f"mongo://127.0.0.1:{port}/hyperdb/jobs")
    try:
        assert defaults._db.name == DEFAULT_DATABASE
        options = defaults._db.client.options
        assert (options.server_selection_timeout, options.pool_options.socket_timeout) == \
            (2.0, 60.0)
        options = explicit._db.client.options
        assert (options.server_selection_timeout, options.pool_options.socket_timeout) == \
            (1.234, 5.0)
        assert hyperopt._db.name == "hyperdb"
        assert hyperopt.allocate_tids("e", 2) == [0, 1]
    finally:
        for store in (defaults, explicit, hyperopt):
            store._db.client.drop_database(store._db.name)
            store.close()
