"""``rediss://`` against a plain Redis port (scenario 29, issue 15, item 6).

A TLS client talking to a plain Redis port waits for a handshake reply that never comes, and
kombu's connect timeout does not bound the handshake: the coordinator blocked in
``ssl.do_handshake`` for more than 60 s, and a worker sat silent after its banner (even
SIGTERM did not end it). Both now refuse such a broker with a ``ConfigError`` naming the URL
(password redacted) within the connect timeout; a real TLS port still works end to end.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from parzen import fmin, tpe
from parzen.exceptions import ConfigError
from parzen.mongoexp import MongoTrials
from parzen.worker.celery_app import BROKER_CONNECT_TIMEOUT_S, refuse_tls_to_a_plain_port
from tests.support.cluster import PARZEN
from tests.support.fault_objectives import sleepy, space
from tests.support.faults import (
    FaultCluster,
    PrivateRedis,
    assert_clean_end,
    free_port,
    make_cluster,
    wait_for,
)

pytestmark = [pytest.mark.integration]

PASSWORD = "s29-broker-pw-" + "9" * 8
# The connect timeout, plus room for a loaded machine to start a process and import parzen.
REFUSED_WITHIN_S = BROKER_CONNECT_TIMEOUT_S + 10


@pytest.fixture
def plain_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A plain (no TLS) Redis with a password: the URL carries a secret to redact."""
    redis = PrivateRedis(tmp_path / "plain", password=PASSWORD)
    redis.start()
    try:
        yield redis
    finally:
        redis.kill()


def rediss(redis: PrivateRedis) -> str:
    return f"rediss://:{PASSWORD}@127.0.0.1:{redis.port}/0"


def assert_names_the_url_and_the_fix(text: str, redis: PrivateRedis) -> None:
    assert f"rediss://:***@127.0.0.1:{redis.port}/0" in text, text
    assert "plain Redis port" in text and "Use redis:// instead of rediss://" in text, text
    assert PASSWORD not in text, "the broker password leaked"


@pytest.mark.timeout(60)
def test_s29_coordinator_refuses_a_plain_port_within_the_connect_timeout(
        cluster: FaultCluster, plain_redis: PrivateRedis) -> None:
    trials = MongoTrials(cluster.mongo_url, exp_key="s29", parallelism=2,
                         **cluster.kwargs(broker=rediss(plain_redis)))
    started = time.monotonic()
    try:
        with pytest.raises(ConfigError) as info:
            fmin(sleepy, space(0.0), algo=tpe.suggest, max_evals=2, trials=trials,
                 show_progressbar=False, rstate=np.random.default_rng(0))
    finally:
        trials.close()
    assert time.monotonic() - started < REFUSED_WITHIN_S
    assert_names_the_url_and_the_fix(str(info.value), plain_redis)
    assert "'-NOAUTH" in str(info.value)  # what the plain PING got back
    assert cluster.store.get_experiment("s29") is None, "a refused run wrote the experiment"


@pytest.mark.timeout(60)
def test_s29_worker_exits_2_naming_the_url(cluster: FaultCluster,
                                           plain_redis: PrivateRedis, tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            # The URL comes from the environment: a password has no place on a command line.
            [*PARZEN, "worker", "--mongo", cluster.mongo_url, "--queue", cluster.queue,
             "--concurrency", "1"],
            env=cluster.env(PARZEN_BROKER_URL=rediss(plain_redis)), stdout=out,
            stderr=subprocess.STDOUT)
    try:
        code = proc.wait(REFUSED_WITHIN_S + 15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    text = log.read_text(errors="replace")
    assert code == 2, text
    assert time.monotonic() - started < REFUSED_WITHIN_S + 15
    assert text.startswith("parzen worker: broker "), text
    assert_names_the_url_and_the_fix(text, plain_redis)


def test_s29_a_port_that_never_answers_is_refused_and_an_absent_one_is_waited_for() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)  # accepts connections (the kernel does) and never says a word
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(ConfigError) as info:
            refuse_tls_to_a_plain_port(f"rediss://u:pw@127.0.0.1:{port}/0", timeout_s=1.0)
        assert time.monotonic() - started < 5
    msg = str(info.value)
    assert f"broker rediss://u:***@127.0.0.1:{port}/0: 127.0.0.1:{port} sent no TLS " \
           "handshake reply within 1 s" in msg and "tls-port" in msg, msg
    # Nothing listening: a worker started before its Redis waits for it, as with redis://.
    refuse_tls_to_a_plain_port(f"rediss://127.0.0.1:{free_port()}/0", timeout_s=1.0)
    refuse_tls_to_a_plain_port("redis://127.0.0.1:1/0")  # not TLS: nothing to probe


# ---- a real TLS port still works --------------------------------------------------------


class TlsRedis(PrivateRedis):
    """A ``redis-server`` on a TLS port only, with a self-signed certificate."""

    def __init__(self, workdir: Path, auth_clients: bool = False) -> None:
        super().__init__(workdir)
        self.auth_clients = auth_clients
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", str(workdir / "key.pem"), "-out", str(workdir / "cert.pem"),
                        "-days", "1", "-subj", "/CN=127.0.0.1"],
                       check=True, capture_output=True, timeout=60)

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.port}/0?ssl_cert_reqs=none"

    def client(self) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, ssl=True, ssl_cert_reqs="none",
                           socket_connect_timeout=2, socket_timeout=5)

    def start(self) -> str:
        d = self.workdir
        cmd = ["redis-server", "--port", "0", "--tls-port", str(self.port), "--bind",
               "127.0.0.1", "--tls-cert-file", str(d / "cert.pem"), "--tls-key-file",
               str(d / "key.pem"), "--tls-ca-cert-file", str(d / "cert.pem"),
               "--tls-auth-clients", "yes" if self.auth_clients else "no", "--save", "",
               "--appendonly", "no", "--dir", str(d)]
        with open(d / "redis.log", "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=d)

        def listening() -> bool:
            # Not a PING: with auth_clients this client has no certificate to offer.
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited {self.proc.returncode}: "
                                     f"{(d / 'redis.log').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_for(listening, 30, f"TLS redis-server on port {self.port}")
        return self.url


def require_tls_tools() -> None:
    if shutil.which("openssl") is None or shutil.which("redis-server") is None:
        pytest.skip("needs openssl and redis-server")


@pytest.mark.timeout(60)
def test_s29_a_tls_port_passes_the_probe_even_when_it_wants_client_certificates(
        tmp_path: Path) -> None:
    require_tls_tools()
    for auth_clients in (False, True):
        tls = TlsRedis(tmp_path / f"tls-{auth_clients}", auth_clients=auth_clients)
        tls.start()
        try:
            refuse_tls_to_a_plain_port(tls.url, timeout_s=BROKER_CONNECT_TIMEOUT_S)
        finally:
            tls.kill()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_s29_a_run_over_a_tls_broker_finishes(wire_server: Any, tmp_path: Path) -> None:
    require_tls_tools()
    tls = TlsRedis(tmp_path / "tls")
    tls.start()
    cluster = make_cluster(wire_server.url, tls, tmp_path)
    try:
        cluster.start_ready(1)
        trials = MongoTrials(cluster.mongo_url, exp_key="s29-tls", parallelism=2,
                             **cluster.kwargs())
        try:
            fmin(sleepy, space(0.0), algo=tpe.suggest, max_evals=4, trials=trials,
                 show_progressbar=False, rstate=np.random.default_rng(0))
        finally:
            trials.close()
        assert_clean_end(cluster, "s29-tls", done=4)
    finally:
        cluster.stop()
        tls.kill()
