"""The Celery application shared by the coordinator (to publish) and the workers (to consume).

Messages carry ids only, as JSON: ``parzen.evaluate_trial(exp_key, tid)``. The store decides
who runs a trial, so a redelivered or duplicated message is harmless.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

TASK_NAME = "parzen.evaluate_trial"
DEFAULT_QUEUE = "parzen"
# Redis redelivers an unacknowledged message after this long. It must exceed the longest
# trial; if it does not, the redelivered message finds the trial claimed and is a no-op.
DEFAULT_VISIBILITY_TIMEOUT_S = 12 * 3600


def make_app(broker_url: str, *, queue: str = DEFAULT_QUEUE, concurrency: int | None = None,
             visibility_timeout_s: float = DEFAULT_VISIBILITY_TIMEOUT_S) -> Celery:
    """A Celery app configured for parzen.

    Args:
        broker_url: ``redis://[:password@]host:port/db`` (``rediss://`` for TLS).
        queue: the queue trials are published to and consumed from.
        concurrency: worker slots (trials evaluated at once).
        visibility_timeout_s: see ``DEFAULT_VISIBILITY_TIMEOUT_S``.
    """
    app = Celery("parzen", broker=broker_url, set_as_current=False)
    conf: dict[str, Any] = {
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "result_backend": None,
        # Ack after the task ran, so a worker that dies mid-trial does not lose the message;
        # the lease, not the broker, decides what happens to the trial itself.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": queue,
        "broker_transport_options": {"visibility_timeout": int(visibility_timeout_s)},
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,  # a worker waits for Redis instead of exiting
        "broker_connection_timeout": 5,
        # Threads supervise one objective child process each (see parzen.execution.sandbox): the
        # objective never runs in the worker process, so threads cost no parallelism, and
        # SIGTERM reaches the code that releases running trials.
        "worker_pool": "threads",
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "task_send_sent_event": False,
    }
    if concurrency is not None:
        conf["worker_concurrency"] = concurrency
    app.conf.update(conf)
    return app
