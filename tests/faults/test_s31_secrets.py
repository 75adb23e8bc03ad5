"""Secrets that leaked (scenario 31, issue 15 item 8).

(a) ``redact()`` split a URL at its first ``?`` before looking for the password, so a password
holding an unencoded ``?`` was printed whole: ``mongodb://bob:Sup3r/?Secr#t@host``. The same
password in ``parzen worker --broker`` killed the worker with a raw ``ValueError`` (exit 1);
in ``--mongo`` the worker started and logged the password in a ``ConfigError``. Redaction now
hides everything up to the last ``@``; such URLs are refused at start with exit status 2,
redacted, with how to percent-encode the password.

(b) ``parzen worker --mongo URL --broker URL`` shows both passwords to every local user in
``ps``. ``--mongo-file`` and ``--broker-file`` read them from files (as the environment
variables already did), and a password given on the command line is warned about.

(c) The objective's process inherited the worker's environment: ``PARZEN_SECRET`` and both
URLs. An objective that logged its environment wrote the signing key into its trial
document, and anyone who can read the database could then sign payloads that every worker
runs. The sandbox now scrubs parzen's credentials from the child's environment.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pytest

from parzen import fmin, hp, tpe
from parzen.exceptions import ConfigError
from parzen.execution.messages import ObjectiveRef
from parzen.execution.sandbox import Sandbox, scrubbed_environ
from parzen.mongoexp import MongoTrials
from parzen.parallel import ParallelTrials
from parzen.store.uri import check_broker_url, parse_mongo_url, redact, redact_text
from tests.support.cluster import PARZEN, REPO, SECRET
from tests.support.faults import (
    FaultCluster,
    PrivateRedis,
    assert_clean_end,
    free_port,
    make_cluster,
)
from tests.support.leaky import logs_its_environment
from tests.support.services import require_redis_server

pytestmark = [pytest.mark.integration]

# Fragments of the passwords below; none may appear in any output.
FRAGMENTS = ("Sup3r", "Secr", "hunter", "s3cret", "it's", "pa ss")
DEAD = free_port()  # nothing listens here: a worker that got past its checks would hang


def leaks(text: str) -> list[str]:
    return [f for f in FRAGMENTS if f in text]


# ---- (a) redaction and refusal ---------------------------------------------------------------

@pytest.mark.parametrize(("url", "redacted"), [
    ("mongodb://bob:Sup3r/?Secr#t@db:27017/exp", "mongodb://bob:***@db:27017/exp"),
    ("mongodb://bob:Sup3r?Secr@db/exp?authSource=admin",
     "mongodb://bob:***@db/exp?authSource=admin"),
    ("redis://:Sup3r/?Secr#t@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
    ("mongodb://bob:it's s3cret@db/exp", "mongodb://bob:***@db/exp"),
    ("mongodb://bob:pa ss#hunter@db1,db2/exp", "mongodb://bob:***@db1,db2/exp"),
    ("bob:Sup3r/?Secr#t@db", "bob:***@db"),
    ("bob:pa ss@db", "bob:***@db"),
])
def test_s31_redact_hides_any_password(url: str, redacted: str) -> None:
    assert redact(url) == redacted
    assert not leaks(redact(url))


@pytest.mark.parametrize("text", [
    "auth failed for mongodb://bob:it's s3cret@db/exp (code 18)",
    "tried mongodb://bob:pa ss@db:27017/exp, then redis://:Sup3r Secr@q:6379/0, both down",
    "tried 'mongodb://bob:Sup3r/?Secr#t@db/exp'",
])
def test_s31_redact_text_hides_a_password_cut_by_a_space_or_a_quote(text: str) -> None:
    out = redact_text(text)
    assert not leaks(out), out
    assert "***@" in out and "db" in out


@pytest.mark.parametrize(("check", "url"), [
    (parse_mongo_url, "mongodb://bob:Sup3r/?Secr#t@db:27017/exp"),
    (parse_mongo_url, "mongodb://bob:Sup3r@Secr@db/exp"),
    (parse_mongo_url, "mongodb://bob:Sup3r:Secr@db/exp"),
    (parse_mongo_url, "mongodb://bob:Sup3r%Secr@db/exp"),
    (parse_mongo_url, "mongo://bob:Sup3r/Secr@db:27017/exp/jobs"),
    (check_broker_url, "redis://:Sup3r/?Secr#t@127.0.0.1:6379/0"),
    (check_broker_url, "redis://:Sup3r#Secr@127.0.0.1:6379/0"),
])
def test_s31_an_unencoded_password_is_refused_redacted_naming_the_fix(check: Any,
                                                                      url: str) -> None:
    with pytest.raises(ConfigError) as err:
        check(url)
    message = str(err.value)
    assert not leaks(message), message
    assert ":***@" in message and "percent-encode" in message and "getpass" in message


def test_s31_encoded_passwords_and_broker_urls_still_pass() -> None:
    assert parse_mongo_url("mongodb://bob:Sup3r%2F%3FSecr%23t@db/exp").database == "exp"
    check_broker_url("redis://:Sup3r%2F%3FSecr%23t@127.0.0.1:6379/0")
    check_broker_url("rediss://user:p@ss@cache:6380/1?ssl_cert_reqs=required")
    check_broker_url("amqp://guest:guest@rabbit:5672//")
    with pytest.raises(ConfigError, match="the port 'x' is not a number"):
        check_broker_url("redis://cache:x/0")


def run_worker(args: list[str], env: dict[str, str | None], cwd: Path,
               timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ)
    for name in [n for n in full if n.startswith("PARZEN_")]:
        del full[name]
    full.update(PARZEN_SECRET=SECRET)
    for name, value in env.items():
        if value is None:
            full.pop(name, None)
        else:
            full[name] = value
    try:
        return subprocess.run([*PARZEN, "worker", "--queue", "s31", *args], env=full,
                              capture_output=True, text=True, timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) \
            else (exc.stdout or "")
        err = (exc.stderr or b"").decode(errors="replace") if isinstance(exc.stderr, bytes) \
            else (exc.stderr or "")
        raise AssertionError(f"the worker did not refuse its configuration; it ran for "
                             f"{timeout:g} s. Leaked: {leaks(out + err)}\n{err[-3000:]}") from None


@pytest.mark.timeout(150)
@pytest.mark.parametrize(("args", "fragment"), [
    (["--mongo", f"mongodb://bob:Sup3r/?Secr#t@127.0.0.1:{DEAD}/exp",
      "--broker", f"redis://127.0.0.1:{DEAD}/0"],
     f"--mongo: store URL 'mongodb://bob:***@127.0.0.1:{DEAD}/exp': the user name or password "
     "holds an unencoded"),
    (["--mongo", f"mongodb://127.0.0.1:{DEAD}/exp",
      "--broker", f"redis://:Sup3r/?Secr#t@127.0.0.1:{DEAD}/0"],
     f"--broker redis://:***@127.0.0.1:{DEAD}/0: the user name or password holds an unencoded"),
], ids=["mongo", "broker"])
def test_s31_a_worker_given_an_unencoded_password_exits_2_without_leaking_it(
        args: list[str], fragment: str, tmp_path: Path) -> None:
    proc = run_worker(args, {}, tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-3000:]
    assert fragment in proc.stderr, proc.stderr
    assert "Traceback" not in out and not leaks(out), out[-3000:]


# ---- (b) URLs off the command line -----------------------------------------------------------

@pytest.mark.timeout(60)
def test_s31_a_password_on_the_command_line_is_warned_about(tmp_path: Path) -> None:
    # No signing key: the worker stops at start, after it read (and warned about) its URLs.
    proc = run_worker(["--broker", f"redis://:hunter2@127.0.0.1:{DEAD}/0"],
                      {"PARZEN_MONGO_URL": f"mongodb://127.0.0.1:{DEAD}/exp",
                       "PARZEN_SECRET": None}, tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "the broker URL given to --broker holds a password, which every user of this " \
           "machine can read on the command line (ps); set PARZEN_BROKER_URL or pass " \
           "--broker-file FILE instead" in proc.stderr
    assert "no signing key" in proc.stderr and not leaks(proc.stdout + proc.stderr)


MONGO_ENV = {"PARZEN_MONGO_URL": f"mongodb://127.0.0.1:{DEAD}/exp"}
BROKER_ENV = {"PARZEN_BROKER_URL": f"redis://127.0.0.1:{DEAD}/0"}


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("args", "env", "fragment"), [
    (["--mongo-file", "/nonexistent/mongo-url"], BROKER_ENV,
     "--mongo-file '/nonexistent/mongo-url' cannot be read: [Errno 2]"),
    (["--broker-file", "EMPTY"], MONGO_ENV,
     "--broker-file 'EMPTY' is empty; it must hold the broker URL"),
    (["--mongo-file", "EMPTY", "--mongo", "mongodb://db/exp"], BROKER_ENV,
     "both --mongo and --mongo-file are given; keep one"),
    ([], BROKER_ENV, "--mongo (or $PARZEN_MONGO_URL) is required: set PARZEN_MONGO_URL, or "
                     "pass --mongo-file FILE"),
    ([], MONGO_ENV, "--broker (or $PARZEN_BROKER_URL) is required: set PARZEN_BROKER_URL, or "
                    "pass --broker-file FILE"),
], ids=["missing", "empty", "both", "no-mongo", "no-broker"])
def test_s31_url_file_mistakes_exit_2_naming_the_file(args: list[str], env: dict[str, str],
                                                      fragment: str, tmp_path: Path) -> None:
    (tmp_path / "EMPTY").write_text("\n")
    proc = run_worker(args, dict(env), tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert fragment in proc.stderr, proc.stderr


# ---- (c) the objective's environment ---------------------------------------------------------

CREDENTIALS = {
    "PARZEN_SECRET": SECRET,
    "PARZEN_SECRET_FILE": "/run/secrets/parzen-key",
    "PARZEN_MONGO_URL": "mongodb://bob:s3cret-mongo@db/exp",
    "PARZEN_BROKER_URL": "redis://:s3cret-redis@q:6379/0",
    "PARZEN_MONGO_URL_FILE": "/run/secrets/mongo-url",
    "PARZEN_BROKER_URL_FILE": "/run/secrets/broker-url",
    "PARZEN_TEST_MONGO_URL": "mongodb://bob:s3cret-test@db/x",
}
KEPT = {"PARZEN_QUEUE": "gpu", "PARZEN_WORKER_NAME": "gpu-1", "PARZEN_CONCURRENCY": "2",
        "PARZEN_VISIBILITY_TIMEOUT": "600", "MY_DATASET_TOKEN": "the user's own"}


def test_s31_scrubbed_environ_drops_parzens_credentials_only() -> None:
    env = scrubbed_environ({**CREDENTIALS, **KEPT, "PATH": "/usr/bin"})
    assert env == {**KEPT, "PATH": "/usr/bin"}


@pytest.mark.timeout(60)
def test_s31_the_objectives_process_sees_no_parzen_credential(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**CREDENTIALS, **KEPT}.items():
        monkeypatch.setenv(name, value)
    ref = ObjectiveRef(key="leaky", import_path="tests.support.leaky:logs_its_environment",
                       space_pickle=cloudpickle.dumps({"x": 0.5}))
    sandbox = Sandbox(sys_path=[str(REPO)])
    try:
        environ = sandbox.evaluate(ref, {"x": 0.5}, 0)["environ"]
    finally:
        sandbox.close()
    assert not set(CREDENTIALS) & set(environ), sorted(set(CREDENTIALS) & set(environ))
    assert {k: environ.get(k) for k in KEPT} == KEPT
    text = json.dumps(environ)
    assert SECRET not in text and "s3cret" not in text


@pytest.mark.timeout(90)
def test_s31_parallel_trials_store_no_secret_from_the_coordinators_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    trials = ParallelTrials(parallelism=1)
    fmin(logs_its_environment, {"x": hp.uniform("x", -1, 1)}, algo=tpe.suggest, max_evals=1,
         trials=trials, show_progressbar=False, rstate=np.random.default_rng(0))
    text = json.dumps([t.result for t in trials.all_trials()], default=str)
    assert "PATH" in text  # the objective did log its environment
    assert SECRET not in text and "s3cret" not in text
    assert not [n for n in CREDENTIALS if n in text]


@pytest.mark.timeout(150)
def test_s31_a_worker_with_urls_in_files_stores_no_secret_and_shows_no_password(
        wire_server: Any, tmp_path: Path) -> None:
    """A real worker: its URLs come from files (so ``ps`` shows no password) and its
    objective logs its environment into the trial document, which must hold neither the
    signing key nor a URL."""
    require_redis_server()
    password = "hunter-" + "7" * 12
    redis = PrivateRedis(tmp_path / "redis", password=password)
    redis.start()
    cluster: FaultCluster = make_cluster(wire_server.url, redis, tmp_path)
    try:
        mongo_file, broker_file = tmp_path / "mongo-url", tmp_path / "broker-url"
        mongo_file.write_text(cluster.mongo_url + "\n")
        broker_file.write_text(cluster.redis_url + "\n")
        for f in (mongo_file, broker_file):
            f.chmod(0o600)
        log = tmp_path / "worker-files.log"
        env = cluster.env()
        for name in ("PARZEN_MONGO_URL", "PARZEN_BROKER_URL"):
            env.pop(name, None)
        with open(log, "wb") as out:
            worker = subprocess.Popen(
                [*PARZEN, "worker", "--mongo-file", str(mongo_file), "--broker-file",
                 str(broker_file), "--queue", cluster.queue, "--concurrency", "1"],
                env=env, stdout=out, stderr=subprocess.STDOUT)
        cluster.workers.append(worker)
        cluster.logs.append(log)
        cluster.wait_ready(worker, 60)
        cmdline = Path(f"/proc/{worker.pid}/cmdline").read_bytes().decode(errors="replace")
        assert password not in cmdline and "redis://" not in cmdline, cmdline

        trials = MongoTrials(cluster.mongo_url, exp_key="s31", parallelism=1,
                             **cluster.kwargs())
        try:
            fmin(logs_its_environment, {"x": hp.uniform("x", -1, 1)}, algo=tpe.suggest,
                 max_evals=2, trials=trials, show_progressbar=False,
                 rstate=np.random.default_rng(0))
        finally:
            trials.close()
        assert_clean_end(cluster, "s31", done=2)
        docs = list(cluster.store._trials.find({"exp_key": "s31"}))
        text = json.dumps(docs, default=str)
        assert "PATH" in text  # the objective did log its environment
        assert SECRET not in text and password not in text
        assert cluster.mongo_url not in text
        assert not [n for n in ("PARZEN_SECRET", "PARZEN_MONGO_URL", "PARZEN_BROKER_URL")
                    if n in text]
        assert password not in cluster.log_text(worker)
    finally:
        cluster.stop()
        redis.kill()
