"""A tiny pool of long-lived ``_worker.py`` subprocesses speaking JSON lines.

Long-lived workers matter: importing optuna/hyperopt costs about a second,
which would dominate 100-evaluation runs if paid per job.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

WORKER = Path(__file__).resolve().parent / "_worker.py"


class JobFailed(RuntimeError):
    pass


class Worker:
    """One subprocess running ``_worker.py`` under a given interpreter."""

    def __init__(self, python: str | Path, script: Path = WORKER) -> None:
        self.proc = subprocess.Popen(
            [str(python), str(script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def call(self, job: Mapping[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise JobFailed(f"worker died (exit {self.proc.poll()}) on job {dict(job)}")
        reply = json.loads(line)
        if not reply["ok"]:
            raise JobFailed(f"{reply['error']} on job {dict(job)}\n{reply['traceback']}")
        return reply["result"]

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self.proc.stdout is not None:
            self.proc.stdout.close()  # else an unclosed-file ResourceWarning per worker


def run_jobs(
    python: str | Path,
    jobs: Iterable[Mapping[str, Any]],
    n_workers: int,
    on_result: Callable[[Mapping[str, Any], dict[str, Any]], None],
    script: Path = WORKER,
) -> None:
    """Run jobs on ``n_workers`` workers of ``python`` (each running ``script``, a JSON-lines
    worker); call on_result as each finishes.

    on_result runs on the calling thread (via as_completed), so callers need
    no locking.  The first failure cancels the rest and is re-raised.
    """
    job_list = list(jobs)
    if not job_list:
        return
    local = threading.local()
    workers: list[Worker] = []
    lock = threading.Lock()

    def execute(job: Mapping[str, Any]) -> dict[str, Any]:
        w = getattr(local, "worker", None)
        if w is None:
            w = Worker(python, script)
            local.worker = w
            with lock:
                workers.append(w)
        return w.call(job)

    try:
        with ThreadPoolExecutor(max_workers=max(1, n_workers)) as ex:
            futures = {ex.submit(execute, job): job for job in job_list}
            try:
                for fut in as_completed(futures):
                    on_result(futures[fut], fut.result())
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
    finally:
        for w in workers:
            w.close()


def current_python() -> str:
    return sys.executable
