"""``parzen worker``: start a Celery worker that evaluates parzen trials."""

from __future__ import annotations

import argparse
import os

from parzen.cli._registry import command
from parzen.exceptions import ConfigError
from parzen.store.uri import parse_mongo_url, redact
from parzen.worker import app as worker_app


@command("worker", "start a worker that evaluates trials (a Celery worker, threads pool)")
def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mongo", default=os.environ.get("PARZEN_MONGO_URL"),
                   help="MongoDB URL (default $PARZEN_MONGO_URL)")
    p.add_argument("--broker", default=os.environ.get("PARZEN_BROKER_URL"),
                   help="Celery broker URL, e.g. redis://host:6379/0 (default "
                        "$PARZEN_BROKER_URL)")
    p.add_argument("--concurrency", type=int, default=None,
                   help="trials evaluated at once (default $PARZEN_CONCURRENCY, else the "
                        "number of CPUs this process may use)")
    p.add_argument("--queue", default=os.environ.get("PARZEN_QUEUE", "parzen"),
                   help="the Celery queue to take trials from; the same as the coordinator's "
                        "MongoTrials(queue=...) (default $PARZEN_QUEUE, else parzen)")
    p.add_argument("--name", default=os.environ.get("PARZEN_WORKER_NAME", ""),
                   help="worker name shown in trial owners (default: host-pid)")
    p.add_argument("--secret-file", default=os.environ.get("PARZEN_SECRET_FILE"),
                   help="file holding the signing key (or set $PARZEN_SECRET)")
    p.add_argument("--loglevel", default="INFO",
                   help="DEBUG, INFO (default), WARNING or ERROR: the worker's and Celery's "
                        "log level")
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = (
        "examples:\n"
        "  export PARZEN_SECRET_FILE=/etc/parzen/key   # the coordinator's signing key\n"
        "  parzen worker --mongo mongodb://db:27017/parzen --broker redis://redis:6379/0\n"
        "  parzen worker --mongo mongodb://db:27017/parzen --broker redis://redis:6379/0 \\\n"
        "      --queue gpu --concurrency 1 --name gpu-node-3\n"
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


def run(args: argparse.Namespace) -> int:
    if args.concurrency is None:
        args.concurrency = _default_concurrency()
    if args.concurrency < 1:
        raise ConfigError(f"--concurrency must be >= 1, got {args.concurrency}")
    if not args.mongo:
        raise ConfigError("--mongo (or $PARZEN_MONGO_URL) is required")
    if not args.broker:
        raise ConfigError("--broker (or $PARZEN_BROKER_URL) is required")
    parse_mongo_url(args.mongo)  # malformed URLs fail here, before Celery starts
    if not args.broker.startswith(("redis://", "rediss://", "amqp://", "amqps://")):
        raise ConfigError(
            f"--broker {redact(args.broker)} is not a redis:// (or amqp://) URL"
        )
    os.environ["PARZEN_MONGO_URL"] = args.mongo
    os.environ["PARZEN_BROKER_URL"] = args.broker
    os.environ["PARZEN_CONCURRENCY"] = str(args.concurrency)
    os.environ["PARZEN_QUEUE"] = args.queue
    if args.name:
        os.environ["PARZEN_WORKER_NAME"] = args.name
    if args.secret_file:
        os.environ["PARZEN_SECRET_FILE"] = args.secret_file
    if os.environ.get("PARZEN_SECRET") and os.environ.get("PARZEN_SECRET_FILE"):
        raise ConfigError("both PARZEN_SECRET and a secret file (--secret-file or "
                          "PARZEN_SECRET_FILE) are set; keep one so there is no doubt which "
                          "key the worker uses")
    app = worker_app.build().celery  # reads and validates the environment
    app.worker_main([
        "worker", "--pool=threads", f"--concurrency={args.concurrency}",
        f"--queues={args.queue}", f"--loglevel={args.loglevel}",
        # Gossip, mingle and worker heartbeats are Celery's cluster chatter; parzen's
        # liveness is the trial lease, so they only cost broker traffic.
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ])
    return 0
