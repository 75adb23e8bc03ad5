"""``parzen worker``: start a Celery worker that evaluates parzen trials.

The MongoDB and broker URLs carry passwords, and a process's command line is readable by
every local user (``ps``, ``/proc/PID/cmdline``): they come from the environment
(``PARZEN_MONGO_URL``, ``PARZEN_BROKER_URL``) or from files (``--mongo-file``,
``--broker-file``). ``--mongo`` and ``--broker`` still work, with a warning when the URL
holds a password.
"""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import dataclass

from parzen.cli._registry import command
from parzen.exceptions import ConfigError
from parzen.store.uri import check_broker_url, parse_mongo_url, redact
from parzen.worker import app as worker_app

log = logging.getLogger("parzen.cli.worker")


@dataclass(frozen=True)
class _URLOption:
    """One URL the worker needs: its option, its file option and its variable."""

    what: str  # "MongoDB", "broker"
    option: str  # --mongo
    file_option: str  # --mongo-file
    env: str  # PARZEN_MONGO_URL


_MONGO = _URLOption("MongoDB", "--mongo", "--mongo-file", "PARZEN_MONGO_URL")
_BROKER = _URLOption("broker", "--broker", "--broker-file", "PARZEN_BROKER_URL")


@command("worker")
def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mongo-file", metavar="FILE",
                   help="file holding the MongoDB URL (keeps its password out of `ps`)")
    p.add_argument("--broker-file", metavar="FILE",
                   help="file holding the Celery broker URL, e.g. redis://:PASSWORD@host:6379/0")
    p.add_argument("--mongo", metavar="URL",
                   help="MongoDB URL (default $PARZEN_MONGO_URL). Every local user can read a "
                        "command line: pass a URL with a password as $PARZEN_MONGO_URL or "
                        "--mongo-file")
    p.add_argument("--broker", metavar="URL",
                   help="Celery broker URL (default $PARZEN_BROKER_URL); with a password, "
                        "prefer $PARZEN_BROKER_URL or --broker-file")
    p.add_argument("--concurrency", type=int, default=None,
                   help="trials evaluated at once (default $PARZEN_CONCURRENCY, else the "
                        "number of CPUs this process may use)")
    p.add_argument("--queue", default=os.environ.get("PARZEN_QUEUE", "parzen"),
                   help="the Celery queue to take trials from; the same as the coordinator's "
                        "MongoTrials(queue=...) (default $PARZEN_QUEUE, else parzen)")
    p.add_argument("--name", default=os.environ.get("PARZEN_WORKER_NAME", ""),
                   help="worker name shown in trial owners (default: host-pid)")
    p.add_argument("--secret-file", metavar="FILE",
                   help="file holding the signing key (default $PARZEN_SECRET_FILE; or set "
                        "$PARZEN_SECRET)")
    p.add_argument("--health-file", metavar="FILE",
                   default=os.environ.get("PARZEN_HEALTH_FILE", ""),
                   help="keep FILE fresh while connected to the broker, for container probes "
                        "(parzen health FILE); default $PARZEN_HEALTH_FILE")
    p.add_argument("--loglevel", default="INFO",
                   help="DEBUG, INFO (default), WARNING or ERROR: the worker's and Celery's "
                        "log level")
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = (
        "examples:\n"
        "  export PARZEN_SECRET_FILE=/etc/parzen/key   # the coordinator's signing key\n"
        "  export PARZEN_MONGO_URL=mongodb://parzen:PASSWORD@db:27017/parzen\n"
        "  export PARZEN_BROKER_URL=redis://:PASSWORD@redis:6379/0\n"
        "  parzen worker\n"
        "  parzen worker --mongo-file /etc/parzen/mongo-url --broker-file /etc/parzen/broker-url "
        "\\\n"
        "      --queue gpu --concurrency 1 --name gpu-node-3\n"
        "URLs with passwords belong in the environment or in files (chmod 600), not on the\n"
        "command line, which every local user can read with `ps`.\n"
        "the worker runs until stopped; SIGTERM (or Ctrl-C) releases its running trials to\n"
        "NEW, so other workers restart them at once: give it 10 s before SIGKILL")
    p.set_defaults(run=run)


def _default_concurrency() -> int:
    raw = os.environ.get("PARZEN_CONCURRENCY", "")
    if raw:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"PARZEN_CONCURRENCY={raw!r} must be an integer") from None
    # The CPUs this process may run on (a container's cpuset), not the host's count.
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
        else (os.cpu_count() or 1)


def _read_url_file(opt: _URLOption, path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            url = f.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{opt.file_option} {path!r} cannot be read: {exc}") from None
    if not url:
        raise ConfigError(f"{opt.file_option} {path!r} is empty; it must hold the {opt.what} "
                          "URL on one line")
    return url


def _check_secret_file(path: str) -> None:
    """Refuse an unreadable or empty ``--secret-file`` in the option's own name (the worker
    reads the key from ``$PARZEN_SECRET_FILE``, which the person did not type)."""
    try:
        with open(path, "rb") as f:
            empty = not f.read().strip()
    except OSError as exc:
        raise ConfigError(f"--secret-file {path!r} cannot be read: {exc}") from None
    if empty:
        raise ConfigError(f"--secret-file {path!r} is empty; it must hold the signing key, "
                          "the same as the coordinator's")


def _url(opt: _URLOption, given: str | None, path: str | None) -> tuple[str, str]:
    """The URL from its option, its file option or its variable, in that order (one of the
    two options only), and where it came from, for messages."""
    if given and path:
        raise ConfigError(f"both {opt.option} and {opt.file_option} are given; keep one so "
                          f"there is no doubt which {opt.what} the worker uses")
    if path:
        return _read_url_file(opt, path), f"the URL in {opt.file_option} {path!r}"
    if given:
        if redact(given) != given:
            log.warning("the %s URL given to %s holds a password, which every user of this "
                        "machine can read on the command line (ps); set %s or pass %s FILE "
                        "instead", opt.what, opt.option, opt.env, opt.file_option)
        return given, opt.option
    url = os.environ.get(opt.env, "")
    if not url:
        raise ConfigError(f"{opt.option} (or ${opt.env}) is required: set {opt.env}, or pass "
                          f"{opt.file_option} FILE (a password in {opt.option} URL is readable "
                          "by every local user)")
    return url, f"${opt.env}"


def run(args: argparse.Namespace) -> int:
    if args.concurrency is None:
        args.concurrency = _default_concurrency()
    if args.concurrency < 1:
        raise ConfigError(f"--concurrency must be >= 1, got {args.concurrency}")
    mongo, mongo_source = _url(_MONGO, args.mongo, args.mongo_file)
    broker, broker_source = _url(_BROKER, args.broker, args.broker_file)
    # Malformed URLs (an unencoded password, a bad port) fail here, before Celery starts,
    # with exit status 2 and the URL redacted.
    try:
        parse_mongo_url(mongo)
    except ConfigError as exc:
        raise ConfigError(f"{mongo_source}: {exc}") from None
    check_broker_url(broker, broker_source)
    # The worker app and `celery -A parzen.worker.app` read the environment; the objective's
    # process does not see these (the sandbox scrubs them).
    os.environ["PARZEN_MONGO_URL"] = mongo
    os.environ["PARZEN_BROKER_URL"] = broker
    os.environ["PARZEN_CONCURRENCY"] = str(args.concurrency)
    os.environ["PARZEN_QUEUE"] = args.queue
    if args.name:
        os.environ["PARZEN_WORKER_NAME"] = args.name
    if args.health_file:
        os.environ["PARZEN_HEALTH_FILE"] = args.health_file
    if os.environ.get("PARZEN_SECRET") and (args.secret_file
                                            or os.environ.get("PARZEN_SECRET_FILE")):
        raise ConfigError("both PARZEN_SECRET and a secret file (--secret-file or "
                          "PARZEN_SECRET_FILE) are set; keep one so there is no doubt which "
                          "key the worker uses")
    if args.secret_file:
        _check_secret_file(args.secret_file)
        os.environ["PARZEN_SECRET_FILE"] = args.secret_file
    built = worker_app.build()  # reads and validates the environment
    built.celery.worker_main([
        "worker", "--pool=threads", f"--concurrency={args.concurrency}",
        f"--queues={args.queue}", f"--loglevel={args.loglevel}",
        f"--hostname={built.node_name}",
        # Gossip, mingle and worker heartbeats are Celery's cluster chatter; parzen's
        # liveness is the trial lease, so they only cost broker traffic.
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ])
    # Non-zero after an unrecoverable error, so that a supervisor restarts the worker.
    return built.exit_status
