"""The store the dashboard reads, opened through the tools' own ``_source`` and reopened when
needed: a MongoDB that is down when the dashboard starts is tried again on the next request,
and a local run's file is read again when ``fmin`` writes it anew."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

from parzen.cli._source import Source, experiment, open_file, open_mongo
from parzen.exceptions import ConfigError, StoreUnavailable
from parzen.store import Experiment, TrialStore
from parzen.store.uri import parse_mongo_url

# How often a local run's file is checked for a newer version.
FILE_CHECK_S = 0.5


@dataclass(frozen=True)
class Opened:
    """The current store, and a number that changes when the store object is replaced."""

    store: TrialStore
    generation: int
    source: Source


class StoreSource:
    """``--mongo URL`` or ``--file PATH``, as the other tools take them.

    Args:
        mongo_url: the MongoDB URL (kept in memory only; ``where`` is what pages see).
        file: a local run's ``trials_save_file``.
        connect_timeout_s: how long to wait for MongoDB per attempt.
        opened: instead, a source already open (no action can reach it: it has no URL).
    """

    def __init__(self, mongo_url: str | None, file: str | None,
                 connect_timeout_s: float, opened: Source | None = None) -> None:
        if not mongo_url and not file and opened is None:
            raise ConfigError("no store given: pass --mongo URL (or set PARZEN_MONGO_URL), or "
                              "--file PATH for a local run saved with fmin(trials_save_file=PATH)")
        self._url = mongo_url
        self._file = file
        self._timeout_s = connect_timeout_s
        self.where = opened.where if opened is not None else file if file else \
            parse_mongo_url(mongo_url or "").redacted
        self._lock = threading.Lock()
        # An already open store (the benchmark's in-memory one) is served as it is.
        self._opened: Opened | None = None if opened is None else Opened(opened.store, 0, opened)
        self._stamp: tuple[int, int] | None = None
        self._checked = -float("inf")
        self._closed = False

    @property
    def is_file(self) -> bool:
        return self._file is not None

    def cli_arguments(self) -> list[str]:
        """The arguments that name this store to another ``parzen`` command (in memory only:
        the URL may hold a password, and is never shown)."""
        return ["--file", self._file] if self._file else ["--mongo", self._url or ""]

    def current(self) -> Opened:
        """The store to read now.

        Raises:
            StoreUnavailable: MongoDB did not answer (tried again on the next call).
            ConfigError: the file is missing or not a saved run.
        """
        with self._lock:
            if self._closed:
                raise StoreUnavailable("the dashboard is stopping")
            if self._file is not None:
                return self._current_file(self._file)
            if self._opened is None:
                src = open_mongo(self._url, self._timeout_s)
                self._opened = Opened(src.store, 0, src)
            return self._opened

    def _current_file(self, path: str) -> Opened:
        now = time.monotonic()
        if self._opened is not None and now - self._checked < FILE_CHECK_S:
            return self._opened
        self._checked = now
        try:
            st = os.stat(path)
            stamp = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            raise ConfigError(f"--file {path}: no such file (moved or deleted since the "
                              "dashboard started?)") from None
        if self._opened is None or stamp != self._stamp:
            src = open_file(path)  # fmin replaces the file atomically: never half written
            generation = 0 if self._opened is None else self._opened.generation + 1
            if self._opened is not None:
                self._opened.source.close()
            self._opened = Opened(src.store, generation, src)
            self._stamp = stamp
        return self._opened

    def invalidate(self) -> None:
        """Look at the file again on the next read (an action has just written it)."""
        with self._lock:
            self._checked = -float("inf")

    def experiments(self, opened: Opened) -> list[Experiment]:
        """Every experiment: the file's one, or those of the database."""
        if opened.source.trials is not None:
            return [experiment(opened.source, None)]
        return opened.store.list_experiments()

    def close(self) -> None:
        """Close the store; a request still being answered gets "stopping", and opens none."""
        with self._lock:
            self._closed = True
            if self._opened is not None:
                self._opened.source.close()
                self._opened = None
